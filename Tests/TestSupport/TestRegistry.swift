import Foundation

/// A real CNCF distribution registry (Debian's `docker-registry`, 2.8.2) on a free
/// 127.0.0.1 port, with its own storage directory, for one test.
///
/// Start it with ``withTestRegistry(_:_:)``, which stops it afterwards. The registry runs
/// under a `/bin/sh` watchdog, so it also goes away when the test process dies.
///
/// Variants (see ``Options``): open, htpasswd basic auth, bearer-token auth backed by a
/// small token server, each over plain HTTP or TLS with a throwaway CA.
public final class TestRegistry: Sendable {
    /// How to run the registry.
    public struct Options: Sendable {
        /// How clients prove who they are.
        public enum Authentication: Sendable {
            /// No authentication: everyone may pull, push and delete.
            case none
            /// HTTP basic authentication against an htpasswd file (bcrypt).
            case basic(username: String, password: String)
            /// Bearer tokens from a token server (distribution's `auth.token`).
            case token(TokenServerOptions)
        }

        /// How clients prove who they are; `.none` by default.
        public var authentication: Authentication
        /// Serve HTTPS with a certificate from a throwaway CA (also for the token server).
        public var tls: Bool
        /// Extra environment for the registry, e.g. `REGISTRY_CATALOG_MAXENTRIES=2`:
        /// distribution maps `REGISTRY_<SECTION>_<KEY>` onto the configuration file.
        public var environment: [String: String]

        /// Creates options; the defaults give an open plain-HTTP registry.
        public init(authentication: Authentication = .none, tls: Bool = false, environment: [String: String] = [:]) {
            self.authentication = authentication
            self.tls = tls
            self.environment = environment
        }

        /// An open registry over plain HTTP.
        public static var open: Options { Options() }

        /// An open registry, over TLS when `tls` is true.
        public static func open(tls: Bool) -> Options { Options(tls: tls) }

        /// A registry with htpasswd basic authentication.
        public static func basic(
            username: String = TestRegistry.defaultUsername,
            password: String = TestRegistry.defaultPassword,
            tls: Bool = false
        ) -> Options {
            Options(authentication: .basic(username: username, password: password), tls: tls)
        }

        /// A registry with bearer-token authentication.
        public static func token(_ token: TokenServerOptions = TokenServerOptions(), tls: Bool = false) -> Options {
            Options(authentication: .token(token), tls: tls)
        }
    }

    /// The user name used when a test does not choose one.
    public static let defaultUsername = "slipway"
    /// The password used when a test does not choose one.
    public static let defaultPassword = "slipway-test-password"

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    public let host: String
    /// The port the registry listens on.
    public let port: Int
    /// `http` or `https`.
    public let scheme: String
    /// `http(s)://127.0.0.1:PORT`, without a trailing slash.
    public let baseURL: URL
    /// The registry's `storage.filesystem.rootdirectory`. Blob contents are at
    /// `docker/registry/v2/blobs/sha256/<first two hex>/<hex>/data` (see ``blobDataFile(digest:)``).
    public let storageDirectory: URL
    /// The user name clients must send, or nil for an open registry.
    public let username: String?
    /// The password clients must send, or nil for an open registry.
    public let password: String?
    /// The CA certificate (PEM) that signed the registry's certificate, or nil without TLS.
    public let caCertificatePEM: String?
    /// The file holding ``caCertificatePEM``, or nil without TLS.
    public let caCertificateFile: URL?
    /// The registry's log (its standard output and error).
    public let logFile: URL
    /// The registry's configuration file.
    public let configurationFile: URL
    /// The token server's realm URL (what the registry's challenge names), or nil unless
    /// the registry uses token authentication.
    public let tokenRealm: URL?
    /// The `service` the registry names in its challenge and expects as the audience.
    public let tokenService: String?
    /// The token server's request log (JSON lines), or nil without token authentication.
    public let tokenLogFile: URL?

    private let directory: TemporaryDirectory
    private let registryProcess: SupervisedProcess
    private let tokenServer: TestTokenServer?

    private init(
        host: String, port: Int, scheme: String, storageDirectory: URL, username: String?, password: String?,
        certificates: TestCertificates?, logFile: URL, configurationFile: URL, tokenServer: TestTokenServer?,
        directory: TemporaryDirectory, process: SupervisedProcess
    ) {
        self.host = host
        self.port = port
        self.scheme = scheme
        self.baseURL = URL(string: "\(scheme)://\(host)")!
        self.storageDirectory = storageDirectory
        self.username = username
        self.password = password
        self.caCertificatePEM = certificates?.caCertificatePEM
        self.caCertificateFile = certificates?.caCertificateFile
        self.logFile = logFile
        self.configurationFile = configurationFile
        self.tokenRealm = tokenServer?.realm
        self.tokenService = tokenServer?.options.service
        self.tokenLogFile = tokenServer?.logFile
        self.tokenServer = tokenServer
        self.directory = directory
        self.registryProcess = process
    }

    /// The file that holds a blob's bytes in the registry's storage, e.g. to corrupt it.
    /// - Parameter digest: `sha256:<64 hex>`.
    public func blobDataFile(digest: String) -> URL {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
        return
            storageDirectory
            .appendingPathComponent("docker/registry/v2/blobs/sha256")
            .appendingPathComponent(String(hex.prefix(2)))
            .appendingPathComponent(hex)
            .appendingPathComponent("data")
    }

    /// Every request the token server has answered so far, oldest first (empty unless the
    /// registry uses token authentication).
    public func tokenRequests() throws -> [TokenRequest] {
        guard let tokenLogFile else { return [] }
        return try readJSONLines(tokenLogFile, as: TokenRequest.self)
    }

    /// Starts a registry. Prefer ``withTestRegistry(_:_:)``; whoever calls this must call
    /// ``stop()``.
    public static func start(_ options: Options = .open) async throws -> TestRegistry {
        let directory = try TemporaryDirectory(prefix: "slipway-registry")
        do {
            return try await start(options, in: directory)
        } catch {
            directory.remove()
            throw error
        }
    }

    private static func start(_ options: Options, in directory: TemporaryDirectory) async throws -> TestRegistry {
        let storage = directory.appending("storage")
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        let certificates = options.tls ? try TestCertificates.generate(in: directory.url) : nil
        let scheme = options.tls ? "https" : "http"

        var username: String?
        var password: String?
        var authSection = ""
        var tokenServer: TestTokenServer?
        switch options.authentication {
        case .none:
            break
        case .basic(let user, let secret):
            username = user
            password = secret
            // -i: the password goes on stdin, so it never shows in an error's command line.
            let entry = try runProcess("htpasswd", ["-Bin", user], stdin: Data(secret.utf8)).checked().stdoutString
            let file = directory.appending("htpasswd")
            try Data((entry.trimmingCharacters(in: .whitespacesAndNewlines) + "\n").utf8).write(to: file)
            authSection = """
                auth:
                  htpasswd:
                    realm: \(yaml("slipway-test-registry"))
                    path: \(yaml(file.path))

                """
        case .token(let tokenOptions):
            username = tokenOptions.username
            password = tokenOptions.password
            let server = try await TestTokenServer.start(tokenOptions, in: directory, certificates: certificates)
            tokenServer = server
            authSection = """
                auth:
                  token:
                    realm: \(yaml(server.realm.absoluteString))
                    service: \(yaml(tokenOptions.service))
                    issuer: \(yaml(tokenOptions.issuer))
                    rootcertbundle: \(yaml(server.signingCertificateFile.path))

                """
        }

        let logFile = directory.appending("registry.log")
        let configurationFile = directory.appending("config.yml")
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("REGISTRY_") }
        environment.merge(options.environment) { _, new in new }

        var lastError: Error?
        // The free port may be taken between finding and binding it; then try another.
        for _ in 0..<4 {
            let port = try freeLoopbackPort()
            let host = "127.0.0.1:\(port)"
            var tlsSection = ""
            if let certificates {
                tlsSection = """
                      tls:
                        certificate: \(yaml(certificates.serverCertificateFile.path))
                        key: \(yaml(certificates.serverKeyFile.path))

                    """
            }
            let configuration = """
                version: 0.1
                log:
                  level: info
                  formatter: text
                  accesslog:
                    disabled: false
                storage:
                  filesystem:
                    rootdirectory: \(yaml(storage.path))
                  delete:
                    enabled: true
                  maintenance:
                    uploadpurging:
                      enabled: false
                http:
                  addr: \(yaml(host))
                  secret: \(yaml(UUID().uuidString))
                \(tlsSection)health:
                  storagedriver:
                    enabled: false
                \(authSection)
                """
            try Data(configuration.utf8).write(to: configurationFile)

            let process = try SupervisedProcess(
                executable: try resolveExecutable("docker-registry"),
                arguments: ["serve", configurationFile.path],
                environment: environment,
                logFile: logFile,
                pidFile: directory.appending("registry.pid")
            )
            do {
                try await waitUntilAnswering(
                    URL(string: "\(scheme)://\(host)/v2/")!, process: process, caFile: certificates?.caCertificateFile
                )
            } catch {
                await process.stop()
                lastError = error
                if process.logTail().contains("address already in use") { continue }
                await tokenServer?.stop()
                throw error
            }
            return TestRegistry(
                host: host, port: port, scheme: scheme, storageDirectory: storage, username: username,
                password: password, certificates: certificates, logFile: logFile,
                configurationFile: configurationFile, tokenServer: tokenServer, directory: directory,
                process: process
            )
        }
        await tokenServer?.stop()
        throw lastError ?? TestSupportError("could not start docker-registry")
    }

    /// Waits until `GET /v2/` gets any HTTP answer (401 counts: the server is up).
    private static func waitUntilAnswering(_ url: URL, process: SupervisedProcess, caFile: URL?, timeout: Double = 60)
        async throws
    {
        let deadline = Date().addingTimeInterval(timeout)
        var arguments = [
            "--silent", "--output", "/dev/null", "--write-out", "%{http_code}",
            "--max-time", "2", "--noproxy", "*",
        ]
        if let caFile { arguments += ["--cacert", caFile.path] }
        arguments.append(url.absoluteString)
        while Date() < deadline {
            if !process.isRunning {
                throw TestSupportError(
                    "docker-registry exited during start-up; log \(process.logFile.path):\n\(process.logTail())")
            }
            let probe = try runProcess("curl", arguments)
            if let code = Int(probe.stdoutString), code > 0 { return }
            // A blocking pause on purpose: after Task.sleep this loop would queue behind tests
            // that block the 2-thread cooperative pool, and miss its deadline while the
            // registry is long up.
            usleep(50_000)
        }
        throw TestSupportError(
            "docker-registry did not answer \(url) within \(Int(timeout)) s; log \(process.logFile.path):\n\(process.logTail())"
        )
    }

    /// Stops the registry (and its token server) and removes its files. Safe to call twice.
    public func stop() async {
        await registryProcess.stop()
        await tokenServer?.stop()
        directory.remove()
    }
}

/// Runs `body` with a fresh registry and stops it afterwards, also when `body` throws or
/// the task is cancelled. Storage, certificates and logs are deleted with it; read what
/// you need (``TestRegistry/logFile``, ``TestRegistry/tokenRequests()``) inside `body`.
///
/// ```swift
/// try await withTestRegistry(.basic(tls: true)) { registry in
///     // registry.baseURL, registry.caCertificatePEM, registry.username, …
/// }
/// ```
public func withTestRegistry<R>(
    _ options: TestRegistry.Options = .open,
    _ body: (TestRegistry) async throws -> R
) async throws -> R {
    try await withStarted({ try await TestRegistry.start(options) }, stop: { await $0.stop() }, body)
}

/// Quotes a string for YAML (a JSON string is a valid YAML flow scalar).
func yaml(_ value: String) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    let data = try! encoder.encode(value)
    return String(decoding: data, as: UTF8.self)
}
