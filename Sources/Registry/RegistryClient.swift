import Console
import Foundation
import HTTP
import OCI

/// A client for one OCI distribution registry
/// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md).
///
/// Endpoint groups live in extensions: `+Manifests`, `+Blobs`, `+Tags`. Every request goes
/// through `send`, which authenticates (anonymous, basic, or bearer tokens cached per scope
/// and refreshed once on 401), retries transient failures with `retry`, follows redirects
/// without carrying `Authorization` to another host, and turns failures into `RegistryError`.
///
/// Copies share what they have learnt (scheme, challenge, tokens).
public struct RegistryClient: Sendable {
    /// The registry, e.g. `ghcr.io`, `127.0.0.1:5000`, or `docker.io`.
    public let host: RegistryHost
    /// Nil means anonymous.
    public let credentials: Credentials?
    /// Plain HTTP (or unverified TLS) was asked for; never assumed.
    public let insecure: Bool
    let trust: TLSTrust
    let transport: any HTTPTransport
    let retry: RetryPolicy
    /// Caps and deadlines on the registry's answers.
    public let limits: RegistryLimits
    let log: Log
    let session = Session()

    /// - Parameters:
    ///   - credentials: explicit credentials; nil falls back to `credentialLookup` (a Docker config), then anonymous.
    ///   - insecure: try https without verifying the certificate, then plain http. Off unless asked for.
    ///   - caCertificates: PEM certificates trusted in addition to the system's.
    ///   - transport: nil is libcurl with the low-speed bound of `SLIPWAY_HTTP_LOW_SPEED_*`.
    ///   - limits: nil reads them from `SLIPWAY_REGISTRY_*` (``RegistryLimits/fromEnvironment(_:)``).
    public init(
        host: RegistryHost,
        credentials: Credentials? = nil,
        credentialLookup: DockerConfigCredentials? = DockerConfigCredentials(),
        insecure: Bool = false,
        caCertificates: [String] = [],
        transport: (any HTTPTransport)? = nil,
        retry: RetryPolicy = .standard,
        limits: RegistryLimits? = nil,
        log: Log = .silent
    ) throws {
        self.host = host
        self.credentials = try credentials ?? credentialLookup?.credentials(for: host)
        self.insecure = insecure
        self.trust = TLSTrust(additionalCertificates: caCertificates, verifyPeer: !insecure)
        if let transport {
            self.transport = transport
        } else {
            do { self.transport = CurlTransport(timeouts: try .fromEnvironment()) } catch {
                throw RegistryError(.configuration, operation: "read the HTTP low-speed bound", hint: error.message)
            }
        }
        self.retry = retry
        self.limits = try limits ?? RegistryLimits.fromEnvironment()
        self.log = log
    }

    // MARK: - The one path every request takes

    /// Where a request goes: a path under the registry's base URL, or an absolute URL the
    /// registry handed us (an upload `Location`).
    enum Target {
        case path(String, query: [URLQueryItem] = [])
        case url(URL)
    }

    /// Sends one request with authentication, retries and redirects.
    /// - Parameters:
    ///   - bodySent: as `HTTPRequest.bodySent`: body bytes sent so far, from zero on every attempt.
    ///   - stream: as in `HTTPTransport.perform`; called anew on every attempt, so a
    ///     sink starts from zero when a transfer is retried.
    func send(
        _ method: HTTPMethod,
        _ target: Target,
        scope: Scope,
        operation: String,
        headers: HTTPHeaders = [:],
        body: HTTPRequestBody = .empty,
        retry: RetryPolicy? = nil,
        bufferLimit: Int = 1 << 20,
        stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)? = nil,
        bodySent: (@Sendable (Int64) -> Void)? = nil
    ) throws -> HTTPResponse {
        let url = try resolve(target)
        // Credentials go only to the registry itself: a URL it hands us (a `Link` to the
        // next page, an upload `Location`) on another origin gets the request without them,
        // as go-containerregistry's transport does.
        let ownOrigin = try Self.sameOrigin(url, baseURL())
        // A small answer has a deadline; a streamed blob or a file sent has the low-speed bound.
        var small = stream == nil
        if case .file = body { small = false }
        var learned = false
        var refreshed = false
        while true {
            var request = HTTPRequest(
                method: method, url: url, headers: headers, body: body, bodySent: bodySent,
                timeout: small ? limits.requestTimeout : nil)
            request.headers["User-Agent"] = "slipway"
            let authorization = ownOrigin ? try authorization(for: scope) : nil
            if let authorization { request.headers["Authorization"] = authorization }
            let response = try withRetries(operation: operation, policy: retry ?? self.retry) {
                try followingRedirects(request, operation: operation, bufferLimit: bufferLimit, stream: stream)
            }
            // Another origin's challenge is not the registry's: never learn a realm from it.
            guard response.status == 401, ownOrigin else { return response }
            let challenge = Challenge.parse(response.headers.values("WWW-Authenticate"))
            if authorization == nil, !learned, let challenge, challenge.scheme == "bearer" || credentials != nil {
                // First contact: learn how this registry wants us to authenticate (another
                // thread may have learnt it meanwhile; either way, try once more with it).
                log.debug("\(host) asks for \(challenge.scheme) authentication")
                session.learn(challenge)
                learned = true
                continue
            }
            if authorization != nil, !refreshed, let challenge, challenge.scheme == "bearer" {
                // A token we hold was refused (expired or revoked early): fetch a new one, once.
                log.debug("\(host) refused a cached token for \(scope); fetching a new one")
                session.learn(challenge)
                session.forget(scope)
                refreshed = true
                continue
            }
            let refusal = RegistryError.from(response, operation: operation)
            throw RegistryError(
                .unauthorized, operation: operation, status: 401, details: refusal.details,
                hint: credentials.map { "the registry rejected \($0)" } ?? "no credentials are configured for \(host)")
        }
    }

    /// Runs `exchange`, retrying transport failures and retryable statuses per `policy`.
    func withRetries(operation: String, policy: RetryPolicy? = nil, _ exchange: () throws -> HTTPResponse) throws
        -> HTTPResponse
    {
        let policy = policy ?? retry
        var attempt = 0
        while true {
            attempt += 1
            let retryAfter: String?
            do {
                let response = try exchange()
                guard RegistryError.retryableStatuses.contains(response.status), attempt < policy.maxAttempts else {
                    return response
                }
                retryAfter = response.headers["Retry-After"]
                log.info(
                    "\(operation): HTTP \(response.status), trying again (attempt \(attempt + 1) of \(policy.maxAttempts))"
                )
            } catch let error as HTTPError {
                if error.kind == .deadline {
                    throw RegistryError(
                        .deadline, operation: operation,
                        hint: error.message
                            + "; \(RegistryLimits.Variable.requestTimeout) sets this deadline for a manifest, tag page, token or referrers list"
                    )
                }
                guard error.isRetryable, attempt < policy.maxAttempts else {
                    throw RegistryError(
                        error.kind == .tls ? .tls : .transport, operation: operation,
                        hint: error.message + (attempt > 1 ? " (after \(attempt) attempts)" : ""))
                }
                retryAfter = nil
                log.info(
                    "\(operation): \(error.message), trying again (attempt \(attempt + 1) of \(policy.maxAttempts))")
            } catch let error as RegistryError where error.isRetryable && attempt < policy.maxAttempts {
                retryAfter = nil
                log.info("\(operation): \(error), trying again (attempt \(attempt + 1) of \(policy.maxAttempts))")
            }
            policy.sleep(policy.delay(afterAttempt: attempt, retryAfter: retryAfter))
        }
    }

    /// Follows up to five redirects. `Authorization` is dropped once the request leaves the
    /// registry's host, and an https request is never redirected to plain http unless insecure.
    private func followingRedirects(
        _ request: HTTPRequest, operation: String, bufferLimit: Int,
        stream: ((HTTPResponseHead) -> (any HTTPBodySink)?)?
    ) throws -> HTTPResponse {
        var request = request
        let origin = request.url
        for _ in 0..<6 {
            let response = try transport.perform(request, trust: trust, stream: stream, bufferLimit: bufferLimit)
            guard [301, 302, 303, 307, 308].contains(response.status) else { return response }
            guard let location = response.headers["Location"],
                let next = URL(string: location, relativeTo: request.url)?.absoluteURL
            else {
                throw RegistryError(
                    .redirect, operation: operation, status: response.status, hint: "redirect without a usable Location"
                )
            }
            if request.url.scheme == "https" && next.scheme != "https" && !insecure {
                throw RegistryError(
                    .redirect, operation: operation, status: response.status,
                    hint: "refusing a redirect from https to \(next.scheme ?? "?")")
            }
            if next.host?.lowercased() != origin.host?.lowercased() || next.port != origin.port {
                request.headers["Authorization"] = nil
            }
            if response.status == 303 {
                request.method = .get
                request.body = .empty
            }
            log.debug("\(operation): redirected to \(redacted(next))")
            request.url = next
        }
        throw RegistryError(.redirect, operation: operation, hint: "more than 5 redirects")
    }

    /// The absolute URL of `target`, deciding the scheme on first use.
    private func resolve(_ target: Target) throws -> URL {
        switch target {
        case .url(let url):
            return url
        case .path(let path, let query):
            var components = URLComponents(url: try baseURL(), resolvingAgainstBaseURL: false)!
            components.percentEncodedPath = path
            if !query.isEmpty { components.queryItems = query }
            guard let url = components.url else {
                throw RegistryError(.invalidResponse, operation: "build a URL for \(path)", hint: "invalid path")
            }
            return url
        }
    }

    /// https, unless `insecure`: then https without verification if the registry speaks TLS,
    /// else http. A registry that looks local (``RegistryHost/mayUsePlainHTTP``) gets verified
    /// https when it answers it, else plain http, as registry-image does without `insecure`;
    /// one that speaks TLS with a certificate we do not trust stays on https, so the error
    /// names the certificate (plain http to a TLS port could only fail, less clearly).
    func baseURL() throws -> URL {
        if let known = session.state.withLock({ $0.baseURL }) { return known }
        let secure = URL(string: "https://\(host.apiHost)")!
        var chosen = secure
        if insecure || host.mayUsePlainHTTP {
            let probe = HTTPRequest(
                method: .get, url: secure.appendingPathComponent("v2/"), timeout: limits.requestTimeout)
            do {
                _ = try transport.perform(probe, trust: trust, stream: nil, bufferLimit: 1 << 16)
            } catch let error as HTTPError
                where !insecure && error.kind == .tls && error.message.lowercased().contains("certificate")
            {
                log.debug("\(host) speaks TLS with a certificate that is not trusted; staying on https")
            } catch {
                chosen = URL(string: "http://\(host.apiHost)")!
                log.debug(
                    "\(host) does not answer TLS; using plain http as \(insecure ? "insecure allows" : "it is a local address")"
                )
            }
        }
        session.state.withLock { $0.baseURL = chosen }
        return chosen
    }

    /// Whether `url` is on the registry at `base`: the same host and port, over the same
    /// scheme or https (never plain http when the registry is https).
    static func sameOrigin(_ url: URL, _ base: URL) -> Bool {
        let scheme = url.scheme?.lowercased()
        let baseScheme = base.scheme?.lowercased()
        func port(_ url: URL, _ scheme: String?) -> Int? {
            url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : nil)
        }
        guard scheme == baseScheme || scheme == "https" else { return false }
        return url.host?.lowercased() == base.host?.lowercased() && port(url, scheme) == port(base, baseScheme)
    }

    // MARK: - Ping

    /// Checks that the registry answers the distribution API and accepts our credentials.
    public func ping() throws {
        let operation = "ping \(host)"
        let response = try send(.get, .path("/v2/"), scope: .registry, operation: operation)
        guard (200..<300).contains(response.status) else { throw RegistryError.from(response, operation: operation) }
    }
}

extension Repository {
    /// The path prefix of this repository's endpoints: `/v2/<name>`.
    var apiPath: String { "/v2/\(rawValue)" }
}
