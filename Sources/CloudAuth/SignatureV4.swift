import Crypto
import Foundation
import HTTP

/// An AWS access key, optionally temporary (with a session token). Its description shows
/// the access key id only: the id names a key, the secret and the token are the key.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var description: String { "access key \(accessKeyID)" }

    /// The strings that must never appear in output.
    public var secrets: [String] { [secretAccessKey] + (sessionToken.map { [$0] } ?? []) }
}

/// AWS Signature Version 4 for one region and service
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
///
/// Each step is its own function so tests compare the canonical request and the string to
/// sign with AWS's published test suite byte for byte, not only the final signature.
public struct SignatureV4: Sendable {
    public var region: String
    public var service: String

    public init(region: String, service: String) {
        self.region = region
        self.service = service
    }

    public static let algorithm = "AWS4-HMAC-SHA256"

    /// Adds `Host`, `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials) and
    /// `Authorization` to `request`. Every header present is signed, so add content headers first.
    public func sign(_ request: inout HTTPRequest, credentials: AWSCredentials, date: Date = Date()) {
        request.headers["Host"] = Self.hostHeader(request.url)
        request.headers["X-Amz-Date"] = Self.timestamp(date)
        if let token = credentials.sessionToken { request.headers["X-Amz-Security-Token"] = token }
        request.headers["Authorization"] = nil
        let payload: Data
        switch request.body {
        case .data(let data): payload = data
        default: payload = Data()
        }
        request.headers["Authorization"] = authorization(
            method: request.method.rawValue, url: request.url,
            headers: request.headers.map { ($0.name, $0.value) },
            payload: payload, credentials: credentials, date: date)
    }

    /// The `Authorization` header value for a request with exactly these headers.
    public func authorization(
        method: String, url: URL, headers: [(String, String)], payload: Data,
        credentials: AWSCredentials, date: Date
    ) -> String {
        let (canonical, signedHeaders) = canonicalRequest(
            method: method, url: url, headers: headers, payloadHash: Self.hexSHA256(payload))
        let signature = signature(
            stringToSign: stringToSign(canonicalRequest: canonical, date: date),
            secretAccessKey: credentials.secretAccessKey, date: date)
        return
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(date)), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// Task 1: the canonical request, and the `SignedHeaders` list it names.
    public func canonicalRequest(method: String, url: URL, headers: [(String, String)], payloadHash: String) -> (
        String, String
    ) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(Self.trimmed(value))
        }
        let names = merged.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let text = [
            method, Self.canonicalPath(url), Self.canonicalQuery(url), canonicalHeaders, signedHeaders, payloadHash,
        ]
        .joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// Task 2: the string to sign.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        [Self.algorithm, Self.timestamp(date), credentialScope(date), Self.hexSHA256(Data(canonicalRequest.utf8))]
            .joined(separator: "\n")
    }

    /// Task 3: the signature, from the key derived for this day, region and service.
    public func signature(stringToSign: String, secretAccessKey: String, date: Date) -> String {
        var key = SymmetricKey(data: Data("AWS4\(secretAccessKey)".utf8))
        for part in [Self.day(date), region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return Self.hex(Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)))
    }

    public func credentialScope(_ date: Date) -> String { "\(Self.day(date))/\(region)/\(service)/aws4_request" }

    // MARK: - Pieces

    /// `20150830T123600Z`.
    public static func timestamp(_ date: Date) -> String {
        let c = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    static func day(_ date: Date) -> String { String(timestamp(date).prefix(8)) }

    /// `host` or `host:port` when the port is not the scheme's default, as curl sends it.
    static func hostHeader(_ url: URL) -> String {
        let host = url.host ?? ""
        let bracketed = host.contains(":") ? "[\(host)]" : host
        guard let port = url.port else { return bracketed }
        let defaultPort = url.scheme?.lowercased() == "https" ? 443 : 80
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    /// Leading and trailing spaces removed, runs of spaces made one (outside quotes too: the suite's get-header-value-trim).
    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// The path with dot segments removed and each segment URI-encoded once.
    static func canonicalPath(_ url: URL) -> String {
        let raw = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? "/"
        var segments: [String] = []
        for segment in raw.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(uriEncode(String(segment).removingPercentEncoding ?? String(segment)))
            }
        }
        var path = "/" + segments.filter { !$0.isEmpty }.joined(separator: "/")
        if raw.count > 1, raw.hasSuffix("/"), path != "/" { path += "/" }
        return path
    }

    /// Parameters decoded, re-encoded, sorted by name then value.
    static func canonicalQuery(_ url: URL) -> String {
        guard let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery, !query.isEmpty
        else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).removingPercentEncoding ?? String(text) }
            return (uriEncode(decode(parts[0])), parts.count > 1 ? uriEncode(decode(parts[1])) : "")
        }
        return pairs.sorted { a, b in
            a.0 == b.0
                ? Array(a.1.utf8).lexicographicallyPrecedes(Array(b.1.utf8))
                : Array(a.0.utf8).lexicographicallyPrecedes(Array(b.0.utf8))
        }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 unreserved characters stay; every other byte becomes `%XX` (upper case).
    public static func uriEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    public static func hexSHA256(_ data: Data) -> String { hex(Data(SHA256.hash(data: data))) }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}

extension Calendar {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
