import Foundation
import HTTP
import OCI
import Synchronization

/// The access a request needs, in the token spec's form
/// (https://distribution.github.io/distribution/spec/auth/scope/): `repository:team/app:pull,push`.
public struct Scope: Hashable, Sendable, CustomStringConvertible {
    /// Each entry is one `type:name:actions` string; kept sorted so equal scopes share a token.
    public let entries: [String]

    public init(entries: [String]) { self.entries = Array(Set(entries)).sorted() }

    /// Access to one repository.
    public static func repository(_ repository: Repository, _ actions: String...) -> Scope {
        Scope(entries: ["repository:\(repository.rawValue):\(actions.joined(separator: ","))"])
    }

    /// No repository: pinging `/v2/`.
    public static let registry = Scope(entries: [])

    /// Both scopes at once (a mount needs push on the target and pull on the source).
    public func union(_ other: Scope) -> Scope { Scope(entries: entries + other.entries) }

    public var description: String { entries.isEmpty ? "registry" : entries.joined(separator: " ") }
}

/// One `WWW-Authenticate` challenge (RFC 9110 §11.6.1).
struct Challenge: Sendable, Hashable {
    var scheme: String
    var parameters: [String: String]

    /// Whether both challenges send us to the same place; `scope` and `error` differ per request.
    func sameRealm(as other: Challenge) -> Bool {
        scheme == other.scheme && parameters["realm"] == other.parameters["realm"]
            && parameters["service"] == other.parameters["service"]
    }

    /// The first Bearer challenge among the headers, else the first Basic one.
    static func parse(_ headers: [String]) -> Challenge? {
        let challenges = headers.compactMap(parseOne)
        return challenges.first { $0.scheme == "bearer" } ?? challenges.first { $0.scheme == "basic" }
    }

    static func parseOne(_ header: String) -> Challenge? {
        var rest = Substring(header).drop { $0 == " " }
        guard let space = rest.firstIndex(of: " ") ?? (rest.isEmpty ? nil : rest.endIndex) else { return nil }
        let scheme = rest[..<space].lowercased()
        rest = rest[space...]
        var parameters: [String: String] = [:]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        value.append(character)
                    }
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            parameters[key] = value
        }
        return Challenge(scheme: scheme, parameters: parameters)
    }
}

/// What a client has learnt about one registry: how to reach it, how it challenges,
/// and the tokens it handed out. Shared by copies of a client, hence a lock.
final class Session: Sendable {
    struct Token {
        var header: String
        var expires: Date
    }
    struct State {
        var baseURL: URL?
        var challenge: Challenge?
        var tokens: [Scope: Token] = [:]
    }

    let state = Mutex(State())

    var challenge: Challenge? { state.withLock { $0.challenge } }

    func token(for scope: Scope, now: Date = Date()) -> String? {
        state.withLock { state in
            guard let token = state.tokens[scope] else { return nil }
            // A little early, so that a token does not expire in flight.
            guard token.expires.timeIntervalSince(now) > 5 else {
                state.tokens[scope] = nil
                return nil
            }
            return token.header
        }
    }

    func store(_ header: String, for scope: Scope, expires: Date) {
        state.withLock { $0.tokens[scope] = Token(header: header, expires: expires) }
    }

    func forget(_ scope: Scope) { state.withLock { _ = $0.tokens.removeValue(forKey: scope) } }

    func learn(_ challenge: Challenge) {
        state.withLock { state in
            if state.challenge.map({ !$0.sameRealm(as: challenge) }) ?? true {
                state.challenge = challenge
                state.tokens.removeAll()
            }
        }
    }
}

extension RegistryClient {
    /// The `Authorization` header for `scope`, fetching a token if the registry wants one
    /// and none is cached. Nil before the registry has challenged us.
    func authorization(for scope: Scope) throws -> String? {
        if case .registryToken(let token) = credentials { return "Bearer \(token)" }
        guard let challenge = session.challenge else { return nil }
        switch challenge.scheme {
        case "basic":
            guard case .basic(let username, let password) = credentials else { return nil }
            return "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        case "bearer":
            if let cached = session.token(for: scope) { return cached }
            return try fetchToken(challenge, scope: scope)
        default:
            return nil
        }
    }

    /// Refuses to send credentials to a realm over plain http, unless `insecure` allows plain
    /// http or the realm's own host is one the go-containerregistry rule calls local
    /// (``RegistryHost/mayUsePlainHTTP``, as for a registry). The registry's own scheme does
    /// not matter: an https registry may name any realm, and what travels is the password.
    /// Without credentials nothing secret is sent, so any realm is asked.
    func refusePlainHTTP(realm: URLComponents, operation: String) throws {
        guard realm.scheme?.lowercased() == "http", !insecure else { return }
        switch credentials {
        case .basic?, .identityToken?: break
        default: return
        }
        let hostText = (realm.host ?? "?").contains(":") ? "[\(realm.host ?? "?")]" : (realm.host ?? "?")
        let realmHost = realm.port.map { "\(hostText):\($0)" } ?? hostText
        if let local = try? RegistryHost(realmHost), local.mayUsePlainHTTP { return }
        throw RegistryError(
            .credentials, operation: operation,
            hint:
                "the registry's token realm \(realmHost) is plain http, and credentials are never sent in clear text; "
                + "the registry's operator should serve the realm over https (or set insecure to allow plain http)")
    }

    /// Token endpoint: https://distribution.github.io/distribution/spec/auth/token/ (GET with
    /// basic auth) and …/spec/auth/oauth/ (POST with a refresh token).
    private func fetchToken(_ challenge: Challenge, scope: Scope) throws -> String {
        let operation = "get a token for \(scope) from \(host)"
        guard let realm = challenge.parameters["realm"], let components = URLComponents(string: realm),
            let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http"
        else {
            throw RegistryError(
                .invalidResponse, operation: operation, hint: "the registry's Bearer challenge has no usable realm")
        }
        try refusePlainHTTP(realm: components, operation: operation)
        let request = tokenRequest(realm: components, service: challenge.parameters["service"], scope: scope)

        let response = try withRetries(operation: operation) {
            try transport.perform(request, trust: trust, stream: nil, bufferLimit: 1 << 20)
        }
        switch response.status {
        case 200..<300: break
        case 401, 403:
            throw RegistryError(
                response.status == 401 ? .unauthorized : .denied, operation: operation, status: response.status,
                hint: credentials == nil
                    ? "no credentials are configured for \(host)" : "the registry rejected \(credentials!)")
        default:
            throw RegistryError.from(response, operation: operation)
        }
        guard let answer = TokenAnswer(response.body) else {
            throw RegistryError(
                .invalidResponse, operation: operation, hint: "the token endpoint's answer has no token")
        }
        let header = "Bearer \(answer.token)"
        session.store(header, for: scope, expires: answer.expiry(now: Date()))
        return header
    }

    /// The request for a token from `realm`: a POST of the refresh token for an identity
    /// token, else a GET with `service` and `scope` in the query (and basic auth when the
    /// credentials are a user name and password).
    private func tokenRequest(realm: URLComponents, service: String?, scope: Scope) -> HTTPRequest {
        var components = realm
        var request = HTTPRequest(method: .get, url: components.url!, timeout: limits.requestTimeout)
        switch credentials {
        case .identityToken(let refreshToken):
            var form = URLComponents()
            form.queryItems =
                [
                    URLQueryItem(name: "grant_type", value: "refresh_token"),
                    URLQueryItem(name: "refresh_token", value: refreshToken),
                    URLQueryItem(name: "client_id", value: "slipway"),
                ] + (service.map { [URLQueryItem(name: "service", value: $0)] } ?? [])
                + scope.entries.map { URLQueryItem(name: "scope", value: $0) }
            request.method = .post
            request.headers["Content-Type"] = "application/x-www-form-urlencoded"
            request.body = .data(Data((form.percentEncodedQuery ?? "").utf8))
        case .basic(let username, let password):
            request.headers["Authorization"] = "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
            fallthrough
        default:
            var items = components.queryItems ?? []
            if let service { items.append(URLQueryItem(name: "service", value: service)) }
            items += scope.entries.map { URLQueryItem(name: "scope", value: $0) }
            components.queryItems = items
            // `+` is legal in a query but means space to many servers; scopes never contain one, actions may not either.
            request.url = components.url!
        }
        return request
    }
}

/// A token endpoint's answer: its token (`token`, or OAuth's `access_token`) and lifetime.
private struct TokenAnswer {
    private struct Body: Decodable {
        var token: String?
        var access_token: String?
        var expires_in: Int?
        var issued_at: String?
    }

    let token: String
    private let body: Body

    /// Nil when `data` is not JSON or holds no non-empty token.
    init?(_ data: Data) {
        guard let body = try? JSONDecoder().decode(Body.self, from: data),
            let token = body.token ?? body.access_token, !token.isEmpty
        else { return nil }
        self.token = token
        self.body = body
    }

    /// When the token stops being used, given the time `now`.
    func expiry(now: Date) -> Date {
        // The spec's default lifetime is 60 s; issued_at anchors it when the server sends it.
        let lifetime = TimeInterval(max(body.expires_in ?? 60, 60))
        let issued = body.issued_at.flatMap { ISO8601DateFormatter.lenient($0) } ?? now
        return min(issued, now).addingTimeInterval(lifetime)
    }
}

extension ISO8601DateFormatter {
    /// RFC 3339 with or without fractional seconds.
    static func lenient(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
