import Foundation

/// How the token server behind a token-auth ``TestRegistry`` behaves.
///
/// The server (`Tests/Fixtures/servers/token_server.py`) implements the distribution token
/// protocol: `GET /token?service=…&scope=…` with optional basic credentials, and the OAuth2
/// password/refresh grant by `POST /token`. Tokens are RS256 JWTs whose header carries the
/// signing certificate in `x5c`; the registry trusts that certificate through
/// `auth.token.rootcertbundle`.
public struct TokenServerOptions: Sendable {
    /// The only user the server knows.
    public var username: String
    /// That user's password; any other password gets 401 from the token server.
    public var password: String
    /// The `expires_in` the server reports, and the lifetime of good tokens, in seconds.
    public var expiresIn: Int
    /// The first this-many tokens issued (to anyone, counted across requests) are already expired (an `exp` an hour in the
    /// past, beyond the registry's 60 s leeway) while the answer still says
    /// `expires_in: expiresIn`; the registry rejects them with 401 `invalid_token`.
    /// Use it to test that a client fetches a new token after a 401.
    public var rejectFirst: Int
    /// The actions granted to the valid user, intersected with what was asked for;
    /// nil grants everything requested. `["pull"]` makes pushes fail with
    /// `insufficient_scope`.
    public var grantedActions: [String]?
    /// The actions granted to a request without credentials (none by default, so the
    /// registry answers 401 `insufficient_scope`).
    public var anonymousActions: [String]
    /// The registry's `auth.token.service` (the token's audience).
    public var service: String
    /// The registry's `auth.token.issuer` (the token's `iss`).
    public var issuer: String

    /// Creates options with the defaults of ``TestRegistry``'s user and password.
    public init(
        username: String = TestRegistry.defaultUsername,
        password: String = TestRegistry.defaultPassword,
        expiresIn: Int = 300,
        rejectFirst: Int = 0,
        grantedActions: [String]? = nil,
        anonymousActions: [String] = [],
        service: String = "slipway-test-registry",
        issuer: String = "slipway-test-token-issuer"
    ) {
        self.username = username
        self.password = password
        self.expiresIn = expiresIn
        self.rejectFirst = rejectFirst
        self.grantedActions = grantedActions
        self.anonymousActions = anonymousActions
        self.service = service
        self.issuer = issuer
    }
}

/// One request the token server answered, as it logged it.
public struct TokenRequest: Sendable, Decodable, Equatable {
    /// What the request carried for credentials.
    public enum Credentials: String, Sendable, Decodable {
        /// No credentials: an anonymous request.
        case none
        /// The right user name and password (or a refresh token the server issued).
        case valid
        /// Wrong credentials; the server answered 401.
        case invalid
    }

    /// Seconds since 1970 when the server logged the request.
    public let time: Double
    /// `GET` or `POST`.
    public let method: String
    /// The request path, e.g. `/token`.
    public let path: String
    /// The `service` parameter, if sent.
    public let service: String?
    /// Every requested scope, e.g. `repository:app:pull,push`, in order; repeated `scope`
    /// parameters and space-separated ones are both split out.
    public let scopes: [String]
    /// Whether credentials were absent, valid or invalid.
    public let credentials: Credentials
    /// The user name sent, if any.
    public let username: String?
    /// `password` or `refresh_token` for OAuth2 POSTs, nil for GET.
    public let grantType: String?
    /// The HTTP status the server answered (200 or 401).
    public let status: Int
    /// The granted scopes, `type:name:actions`, one per requested scope.
    public let granted: [String]
    /// True when the server deliberately issued an already-expired token
    /// (``TokenServerOptions/rejectFirst``).
    public let expired: Bool
}

/// The running token server of a token-auth registry (internal: tests reach it through
/// ``TestRegistry``).
final class TestTokenServer: Sendable {
    let options: TokenServerOptions
    let realm: URL
    let logFile: URL
    let signingCertificateFile: URL
    private let process: SupervisedProcess

    private init(
        options: TokenServerOptions, realm: URL, logFile: URL, signingCertificateFile: URL, process: SupervisedProcess
    ) {
        self.options = options
        self.realm = realm
        self.logFile = logFile
        self.signingCertificateFile = signingCertificateFile
        self.process = process
    }

    static func start(_ options: TokenServerOptions, in directory: TemporaryDirectory, certificates: TestCertificates?)
        async throws -> TestTokenServer
    {
        let signerKey = directory.appending("token-signer.key")
        let signerCertificate = directory.appending("token-signer.pem")
        try runProcess(
            "openssl",
            [
                "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048",
                "-keyout", signerKey.path, "-out", signerCertificate.path,
                "-days", "2", "-subj", "/CN=slipway-token-signer",
            ]
        ).checked()

        let readyFile = directory.appending("token-server.port")
        let logFile = directory.appending("token-requests.jsonl")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        struct Configuration: Encodable {
            let readyFile, logFile, keyFile, certificateFile: String
            let issuer, service, username, password: String
            let expiresIn, rejectFirst: Int
            let grantedActions: [String]?
            let anonymousActions: [String]
            let tlsCertificateFile, tlsKeyFile: String?
        }
        let configuration = Configuration(
            readyFile: readyFile.path, logFile: logFile.path,
            keyFile: signerKey.path, certificateFile: signerCertificate.path,
            issuer: options.issuer, service: options.service,
            username: options.username, password: options.password,
            expiresIn: options.expiresIn, rejectFirst: options.rejectFirst,
            grantedActions: options.grantedActions, anonymousActions: options.anonymousActions,
            tlsCertificateFile: certificates?.serverCertificateFile.path,
            tlsKeyFile: certificates?.serverKeyFile.path
        )
        let configurationFile = directory.appending("token-server.json")
        try JSONEncoder().encode(configuration).write(to: configurationFile)

        let (process, port) = try await startFixtureServer(
            "token_server.py", configurationFile: configurationFile, readyFile: readyFile, in: directory)
        let scheme = certificates == nil ? "http" : "https"
        return TestTokenServer(
            options: options, realm: URL(string: "\(scheme)://127.0.0.1:\(port)/token")!,
            logFile: logFile, signingCertificateFile: signerCertificate, process: process
        )
    }

    func stop() async {
        await process.stop()
    }
}
