import Foundation

/// What a ``FaultRule`` does to a request it fires on.
public enum FaultAction: Sendable, Equatable {
    /// Answer with `status` and a registry-style error body
    /// `{"errors":[{"code":…,"message":…}]}`, without asking the upstream.
    /// - Parameters:
    ///   - retryAfter: The `Retry-After` header value (seconds or an HTTP date), if any.
    ///   - code: The error code; nil picks one from the status (429 `TOOMANYREQUESTS`,
    ///     503 `UNAVAILABLE`, 401 `UNAUTHORIZED`, 403 `DENIED`, else `UNKNOWN`).
    ///   - message: The error message; nil says it was injected.
    ///   - headers: More headers to send, e.g. a `WWW-Authenticate` challenge.
    case status(
        Int, retryAfter: String? = nil, code: String? = nil, message: String? = nil, headers: [String: String] = [:])
    /// Close the connection without an answer (with SO_LINGER 0, so the client sees a reset).
    case reset
    /// Pass the request through, send the upstream's status and headers (including its
    /// `Content-Length`), then only the first `afterBytes` bytes of the body, then close.
    case truncate(afterBytes: Int)
    /// Answer `status` (307 by default) with `Location: <baseURL><same path and query>`.
    case redirect(to: URL, status: Int = 307)
    /// Wait, then pass the request through.
    case delay(seconds: Double)
    /// Pass the request through, moving its body and the response's body each at most
    /// `bytesPerSecond` (a slow link, so a transfer lasts long enough to watch its progress).
    case throttle(bytesPerSecond: Int)
    /// Pass the request through but remove these response headers, e.g.
    /// `Docker-Content-Digest`, as some registries omit it on HEAD.
    case dropHeaders([String])
    /// Answer `GET …/tags/list` one sorted page at a time (`n` from the query, else
    /// `pageSize`, after `last`) with a `Link: <…>; rel="next"` header, from the upstream's
    /// full list. distribution 2.8.2 ignores `n`, so this is how pagination gets tested.
    case paginate(pageSize: Int)
}

/// One fault to inject: which requests it matches, how often it fires, and what it does.
///
/// Rules are consulted in order; the first one that fires decides. A rule matches when the
/// method is equal (any method when nil) and the path regex (Python `re.search`, on the
/// path without the query) finds a match. A matching rule fires on its first `times`
/// matches (always when nil), or, with `rate`, on each match with that probability from a
/// seeded random source, at most `times` times. A request no rule fires on passes through.
public struct FaultRule: Sendable, Equatable {
    /// A name for the request log; the rule's index when nil.
    public var name: String?
    /// The HTTP method to match, e.g. `GET`; nil matches any.
    public var method: String?
    /// A Python regular expression searched in the request path, e.g. `/manifests/`.
    public var path: String
    /// How many times the rule fires at most; nil for no limit.
    public var times: Int?
    /// The probability (0…1) of firing on a matching request; nil for always.
    public var rate: Double?
    /// What to do when the rule fires.
    public var action: FaultAction

    /// Creates a rule.
    public init(
        name: String? = nil,
        method: String? = nil,
        path: String = "",
        times: Int? = nil,
        rate: Double? = nil,
        action: FaultAction
    ) {
        self.name = name
        self.method = method
        self.path = path
        self.times = times
        self.rate = rate
        self.action = action
    }

    var json: [String: Any] {
        var rule: [String: Any] = ["path": path]
        if let name { rule["name"] = name }
        if let method { rule["method"] = method }
        if let times { rule["times"] = times }
        if let rate { rule["rate"] = rate }
        switch action {
        case .status(let status, let retryAfter, let code, let message, let headers):
            var a: [String: Any] = ["type": "status", "status": status, "headers": headers]
            if let retryAfter { a["retryAfter"] = retryAfter }
            if let code { a["code"] = code }
            if let message { a["message"] = message }
            rule["action"] = a
        case .reset:
            rule["action"] = ["type": "reset"]
        case .truncate(let bytes):
            rule["action"] = ["type": "truncate", "bytes": bytes]
        case .redirect(let url, let status):
            rule["action"] = ["type": "redirect", "baseURL": url.absoluteString, "status": status]
        case .delay(let seconds):
            rule["action"] = ["type": "delay", "seconds": seconds]
        case .throttle(let rate):
            rule["action"] = ["type": "throttle", "bytesPerSecond": rate]
        case .dropHeaders(let names):
            rule["action"] = ["type": "dropHeaders", "names": names]
        case .paginate(let pageSize):
            rule["action"] = ["type": "paginate", "pageSize": pageSize]
        }
        return rule
    }
}

/// One request the proxy handled, as it logged it (before answering).
public struct ProxyRequest: Sendable, Decodable, Equatable {
    /// Seconds since 1970 when the proxy logged the request.
    public let time: Double
    /// The HTTP method.
    public let method: String
    /// The path, without the query.
    public let path: String
    /// The raw query string, without `?` (empty when none).
    public let query: String
    /// The `Host` header the client sent.
    public let host: String?
    /// Whether the request carried an `Authorization` header.
    public let authorization: Bool
    /// The status sent to the client; nil when the connection was reset.
    public let status: Int?
    /// The rule that fired (its name, or its index as a string); nil when none did.
    public let rule: String?
    /// `pass`, `record` (a proxy without upstream), `status`, `reset`, `truncate`,
    /// `redirect`, `delay` or `throttle`.
    public let action: String
    /// The redirect target, for `redirect`.
    public let location: String?
    /// The byte count the body was cut at, for `truncate`.
    public let truncatedAfter: Int?
    /// Why the upstream could not be reached, when the proxy answered 502.
    public let error: String?
}

/// A fault-injecting HTTP/1.1 reverse proxy on a free 127.0.0.1 port
/// (`Tests/Fixtures/servers/fault_proxy.py`).
///
/// It streams bodies both ways and rewrites upstream `Location` headers to point at
/// itself. Without an upstream it is a recorder: it answers every request no rule fires
/// on with 200 and a small fixed body, which makes it "the other host" that a redirect
/// points to, so a test can check that no `Authorization` header reached it.
public final class FaultProxy: Sendable {
    /// The port the proxy listens on.
    public let port: Int
    /// `127.0.0.1:PORT`, the registry part of an image reference through the proxy.
    public let host: String
    /// `http://127.0.0.1:PORT`.
    public let baseURL: URL
    /// `http://localhost:PORT`: the same proxy under another host name, a redirect target
    /// that is a different origin for credential rules.
    public let localhostURL: URL
    /// The upstream base URL, or nil for a recorder.
    public let upstream: URL?
    /// The request log (JSON lines).
    public let logFile: URL

    private let rulesFile: URL
    private let server: FixtureServer

    private init(server: FixtureServer, upstream: URL?) {
        self.port = server.port
        self.host = "127.0.0.1:\(server.port)"
        self.baseURL = URL(string: "http://127.0.0.1:\(server.port)")!
        self.localhostURL = URL(string: "http://localhost:\(server.port)")!
        self.upstream = upstream
        self.logFile = server.directory.appending("requests.jsonl")
        self.rulesFile = server.directory.appending("rules.json")
        self.server = server
    }

    /// Every request handled so far, oldest first.
    public func requests() throws -> [ProxyRequest] {
        try readJSONLines(logFile, as: ProxyRequest.self)
    }

    /// Replaces the rules; the fire counts start again from zero. Requests that arrive
    /// after this returns see the new rules.
    public func setRules(_ rules: [FaultRule]) throws {
        try Self.writeRules(rules, to: rulesFile)
    }

    private static func writeRules(_ rules: [FaultRule], to file: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: ["rules": rules.map(\.json)], options: [.sortedKeys])
        // Atomic replace: a new inode, which is how the proxy notices the change.
        try data.write(to: file, options: .atomic)
    }

    /// Starts a proxy. Prefer ``withFaultProxy(upstream:rules:seed:fixedBody:_:)``; whoever
    /// calls this must call ``stop()``.
    public static func start(upstream: URL?, rules: [FaultRule] = [], seed: Int = 0, fixedBody: String = "ok")
        async throws -> FaultProxy
    {
        if let upstream, upstream.scheme != "http" {
            throw TestSupportError("FaultProxy forwards to plain HTTP only; upstream was \(upstream)")
        }
        let server = try await FixtureServer.start("fault_proxy.py", prefix: "slipway-proxy") { directory in
            let rulesFile = directory.appending("rules.json")
            try writeRules(rules, to: rulesFile)
            var configuration: [String: Any] = [
                "logFile": emptyLog(in: directory).path, "rulesFile": rulesFile.path, "seed": seed,
                "fixedBody": fixedBody,
            ]
            if let upstream { configuration["upstream"] = upstream.originText }
            return configuration
        }
        return FaultProxy(server: server, upstream: upstream)
    }

    /// Stops the proxy and removes its files. Safe to call twice.
    public func stop() async { await server.stop() }
}

/// Runs `body` with a fault proxy in front of `upstream` and stops it afterwards, also
/// when `body` throws.
///
/// ```swift
/// try await withTestRegistry { registry in
///     try await withFaultProxy(upstream: registry.baseURL, rules: [
///         FaultRule(method: "GET", path: "/manifests/", times: 2, action: .status(429, retryAfter: "0")),
///     ]) { proxy in
///         // talk to proxy.baseURL; then check proxy.requests()
///     }
/// }
/// ```
///
/// - Parameters:
///   - upstream: A plain-HTTP base URL to forward to, or nil for a recorder that answers
///     200 with `fixedBody`.
///   - rules: The faults, in order (see ``FaultRule``).
///   - seed: Seed of the random source for rules with a `rate`.
///   - fixedBody: The recorder's answer body.
public func withFaultProxy<R>(
    upstream: URL?,
    rules: [FaultRule] = [],
    seed: Int = 0,
    fixedBody: String = "ok",
    _ body: (FaultProxy) async throws -> R
) async throws -> R {
    try await withStarted(
        { try await FaultProxy.start(upstream: upstream, rules: rules, seed: seed, fixedBody: fixedBody) },
        stop: { await $0.stop() }, body)
}
