import Errors
import Foundation
import HTTP

/// A failed registry operation: what was attempted, what the registry answered, and
/// the spec's error codes from the body (OCI distribution spec, "Error Codes":
/// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes).
public struct RegistryError: SlipwayError {
    /// The class of failure (callers branch on it, the message is for people).
    public typealias Kind = ErrorKind<RegistryError>

    /// One entry of the spec's `{"errors":[…]}` body.
    public struct Detail: Sendable, Codable, Hashable {
        public var code: String
        public var message: String?
    }

    public let kind: Kind
    /// What was attempted, e.g. `GET manifest team/app:latest from 127.0.0.1:5000`.
    public let operation: String
    /// The HTTP status, when the registry answered.
    public let status: Int?
    /// The registry's own error codes, decoded from the body.
    public let details: [Detail]
    /// Extra explanation and what to do; never a secret.
    public let hint: String?

    public init(_ kind: Kind, operation: String, status: Int? = nil, details: [Detail] = [], hint: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.status = status
        self.details = details
        self.hint = hint
    }

    /// Whether the registry's body named `code` (e.g. `MANIFEST_UNKNOWN`).
    public func has(code: String) -> Bool { details.contains { $0.code == code } }

    /// Transient failures: connection trouble, throttling and server errors.
    public var isRetryable: Bool {
        if kind == .transport { return true }
        guard let status else { return false }
        return Self.retryableStatuses.contains(status)
    }

    static let retryableStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// One line: the operation, the kind, the status, the registry's error codes and the hint.
    public var message: String {
        var text = operation + ": " + kind.description
        if let status { text += " (HTTP \(status))" }
        if !details.isEmpty {
            text +=
                ": "
                + details.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: " ") }
                .joined(separator: "; ")
        }
        if let hint { text += ": " + hint }
        return text
    }

    /// Builds the error for an unexpected response, decoding the spec's error body if present.
    static func from(_ response: HTTPResponse, operation: String) -> RegistryError {
        struct Body: Decodable { var errors: [Detail]? }
        let details = (try? JSONDecoder().decode(Body.self, from: response.body))?.errors ?? []
        let kind: Kind =
            switch response.status {
            case 401: .unauthorized
            case 403: .denied
            case 404: .notFound
            default: .unexpectedStatus
            }
        return RegistryError(
            kind, operation: operation, status: response.status,
            details: details.map {
                Detail(code: $0.code, message: $0.message.map { String($0.prefix(300)) })
            })
    }
}

extension ErrorKind where Owner == RegistryError {
    public static var unauthorized: Self { Self("unauthorized") }
    public static var denied: Self { Self("denied") }
    public static var notFound: Self { Self("not found") }
    public static var digestMismatch: Self { Self("digest mismatch") }
    public static var sizeMismatch: Self { Self("size mismatch") }
    public static var unexpectedStatus: Self { Self("unexpected status") }
    public static var invalidResponse: Self { Self("invalid response") }
    public static var transport: Self { Self("transport") }
    public static var tls: Self { Self("tls") }
    public static var redirect: Self { Self("redirect") }
    public static var credentials: Self { Self("credentials") }
    /// A request passed its deadline (`RegistryLimits.requestTimeout`).
    public static var deadline: Self { Self("deadline") }
    /// An answer passed one of `RegistryLimits`' caps, or a pagination loop.
    public static var limit: Self { Self("limit") }
    /// A limit's environment variable is not usable.
    public static var configuration: Self { Self("configuration") }
}
