import Errors
import Foundation

/// An HTTP method. Only the ones the OCI distribution API uses.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    public static let put = HTTPMethod(rawValue: "PUT")
    public static let patch = HTTPMethod(rawValue: "PATCH")
    public static let delete = HTTPMethod(rawValue: "DELETE")
}

/// Header fields in arrival order, looked up case-insensitively (RFC 9110 §5.1).
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    private var fields: [(name: String, value: String)] = []

    public init() {}
    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name, value) }
    }

    /// The first value of `name`, or nil. Setting replaces every value of `name`.
    public subscript(name: String) -> String? {
        get { fields.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value }
        set {
            remove(name)
            if let newValue { add(name, newValue) }
        }
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    /// Header names only: values can hold credentials and never belong in a log line.
    public var description: String { fields.map(\.name).joined(separator: ", ") }
}

/// A request body that can be replayed: retries and re-authentication send it again,
/// so a body is a description of where the bytes are, never a one-shot stream.
public enum HTTPRequestBody: Sendable {
    case empty
    case data(Data)
    /// `length` bytes of the file at `path` starting at `offset`, read while sending.
    case file(path: String, offset: Int64, length: Int64)

    /// The exact number of bytes this body sends.
    public var length: Int64 {
        switch self {
        case .empty: 0
        case .data(let data): Int64(data.count)
        case .file(_, _, let length): length
        }
    }
}

/// One HTTP request.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var url: URL
    public var headers: HTTPHeaders
    public var body: HTTPRequestBody
    /// Called with the number of body bytes the peer has taken so far in this exchange (sent
    /// and no longer queued in the kernel), many times a second while they move and about
    /// once a second while they do not, so a long upload can report progress while it
    /// moves. Every exchange (a retry, a redirect) counts from zero again.
    public var bodySent: (@Sendable (Int64) -> Void)?
    /// Seconds the whole exchange may take, from connecting to the last byte of the answer;
    /// past it the exchange fails with `HTTPError.deadline`. Nil (a blob) sets no total
    /// limit: only the transport's low-speed bound ends a slow transfer.
    public var timeout: Int?

    public init(
        method: HTTPMethod, url: URL, headers: HTTPHeaders = [:], body: HTTPRequestBody = .empty,
        bodySent: (@Sendable (Int64) -> Void)? = nil, timeout: Int? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.bodySent = bodySent
        self.timeout = timeout
    }
}

/// The status line and headers of a response, available before its body.
public struct HTTPResponseHead: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public init(status: Int, headers: HTTPHeaders) {
        self.status = status
        self.headers = headers
    }
}

/// A whole response. `body` holds the buffered body; it is empty when the body was streamed to a sink.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: Data
    public init(status: Int, headers: HTTPHeaders, body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
    public var head: HTTPResponseHead { HTTPResponseHead(status: status, headers: headers) }
}

/// Receives a response body as it arrives. Throwing aborts the transfer and the error
/// is rethrown by `HTTPTransport.perform` unchanged (a digest mismatch stays a digest mismatch).
public protocol HTTPBodySink: AnyObject {
    func receive(_ bytes: UnsafeRawBufferPointer) throws
}

/// How to trust a server's certificate.
public struct TLSTrust: Sendable, Hashable {
    /// Extra PEM certificates trusted in addition to the system's roots.
    public var additionalCertificates: [String]
    /// When false, the peer's certificate is not verified at all. Only `insecure: true`
    /// in a configuration may set this; nothing defaults to it.
    public var verifyPeer: Bool

    public init(additionalCertificates: [String] = [], verifyPeer: Bool = true) {
        self.additionalCertificates = additionalCertificates
        self.verifyPeer = verifyPeer
    }

    /// The system roots only, verified.
    public static let system = TLSTrust()
}

/// The I/O seam between the registry client and the network.
///
/// An implementation performs exactly one exchange: it never follows redirects and never
/// retries, so the caller decides what crosses hosts and what is worth a second try.
public protocol HTTPTransport: Sendable {
    /// Sends `request` and returns its response.
    /// - Parameters:
    ///   - trust: how to verify the server's certificate for an https URL.
    ///   - stream: called once with the response head before the first body byte; a sink it
    ///     returns receives the body, nil buffers the body into `HTTPResponse.body`.
    ///   - bufferLimit: the most bytes buffered; a longer body fails with `HTTPError.bodyTooLarge`.
    func perform(
        _ request: HTTPRequest,
        trust: TLSTrust,
        stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)?,
        bufferLimit: Int
    ) throws -> HTTPResponse
}

/// A failure below HTTP: no response, or a response that could not be read whole. Its
/// message never holds a header value or a credential.
public typealias HTTPError = KindedError<HTTPErrorDomain>

/// Whose kinds ``HTTPError``'s are.
public enum HTTPErrorDomain {}

extension HTTPError {
    /// Connection failures and timeouts are transient; TLS and local problems are not.
    public var isRetryable: Bool { kind == .connection || kind == .timeout }
}

extension ErrorKind where Owner == HTTPErrorDomain {
    public static var connection: Self { Self("connection") }
    public static var timeout: Self { Self("timeout") }
    /// The request's own `timeout` passed: not transient, so not retried.
    public static var deadline: Self { Self("deadline") }
    public static var tls: Self { Self("tls") }
    public static var bodyTooLarge: Self { Self("body too large") }
    public static var invalidRequest: Self { Self("invalid request") }
    public static var localFile: Self { Self("local file") }
}
