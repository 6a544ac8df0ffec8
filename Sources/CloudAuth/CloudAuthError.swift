import Errors
import Foundation
import HTTP

/// A failed cloud login: what was attempted and why it failed, in one line, never with a
/// secret (text from a server is cut to one line and stripped of every secret we hold).
public struct CloudAuthError: SlipwayError {
    /// The class of failure (callers branch on it, the message is for people).
    public typealias Kind = ErrorKind<CloudAuthError>

    /// What kind of failure this is.
    public let kind: Kind
    /// What was attempted, e.g. `assume role arn:aws:iam::123456789012:role/push`.
    public let operation: String
    /// Why it failed and, where it helps, what to do.
    public let reason: String

    public init(_ kind: Kind, _ operation: String, _ reason: String) {
        self.kind = kind
        self.operation = operation
        self.reason = reason
    }

    /// The operation and the reason, in one line.
    public var message: String { "\(operation): \(reason)" }

    /// `text` as one short line with each of `secrets` replaced by `***`.
    static func sanitized(_ text: String, hiding secrets: [String]) -> String {
        var line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(
            separator: " ")
        for secret in secrets where secret.count >= 4 { line = line.replacingOccurrences(of: secret, with: "***") }
        let printable = String(
            String.UnicodeScalarView(line.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
        return printable.count > 240 ? String(printable.prefix(240)) + "…" : printable
    }
}

/// One exchange with a cloud endpoint: a transient failure (a connection error, 429 or 5xx)
/// is tried again as the registry client does, by ``RetryPolicy``, up to `attempts` times in
/// all; every other failure becomes a ``CloudAuthError``.
struct CloudHTTP: Sendable {
    let transport: any HTTPTransport
    let trust: TLSTrust
    /// Secrets a server's answer must not carry into a message.
    let secrets: [String]
    var retry = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(200), maxDelay: .seconds(2))

    func send(_ request: HTTPRequest, operation: String, attempts: Int = 3) throws(CloudAuthError) -> HTTPResponse {
        var attempt = 0
        while true {
            attempt += 1
            let last = attempt >= min(attempts, retry.maxAttempts)
            do {
                let response = try transport.perform(request, trust: trust, stream: nil, bufferLimit: 1 << 20)
                if [429, 500, 502, 503, 504].contains(response.status), !last {
                    retry.sleep(retry.delay(afterAttempt: attempt, retryAfter: response.headers["Retry-After"]))
                    continue
                }
                return response
            } catch let error as HTTPError where error.isRetryable && !last {
                retry.sleep(retry.delay(afterAttempt: attempt, retryAfter: nil))
            } catch let error as HTTPError {
                throw CloudAuthError(
                    .unreachable, operation, "\(redacted(request.url)) did not answer: \(error.message)")
            } catch {
                throw CloudAuthError(.unreachable, operation, CloudAuthError.sanitized("\(error)", hiding: secrets))
            }
        }
    }
}

extension ErrorKind where Owner == CloudAuthError {
    /// A setting or an environment variable the login reads is not usable.
    public static var invalidSetting: Self { Self("invalid setting") }
    /// No credentials were found where the login looks for them.
    public static var noCredentials: Self { Self("no credentials") }
    /// The endpoint could not be reached, or did not answer in time.
    public static var unreachable: Self { Self("unreachable") }
    /// The endpoint answered with an error status.
    public static var refused: Self { Self("refused") }
    /// The endpoint's answer is not the form expected (bad JSON, a field missing or empty).
    public static var invalidAnswer: Self { Self("invalid answer") }
}

/// `data` decoded as `T`; an ill-formed answer is reported as `invalidAnswer`, not trapped.
func decodeJSON<T: Decodable>(_ type: T.Type, _ data: Data, operation: String, what: String) throws(CloudAuthError) -> T
{
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw CloudAuthError(.invalidAnswer, operation, "the answer is not the expected JSON (\(what))")
    }
}
