import Foundation
import OCI
import Spawn

/// What proves who we are to a registry. Its description never shows the secret.
public enum Credentials: Sendable, Hashable, CustomStringConvertible {
    /// A username and password (or access token used as a password).
    case basic(username: String, password: String)
    /// An OAuth2 refresh token (`identitytoken` in a Docker config), exchanged at the token endpoint.
    case identityToken(String)
    /// A bearer token to send as it is (`registrytoken` in a Docker config).
    case registryToken(String)

    public var description: String {
        switch self {
        case .basic(let username, _): "user \(username)"
        case .identityToken: "an identity token"
        case .registryToken: "a registry token"
        }
    }

    /// Every secret string these credentials hold, for redaction.
    public var secrets: [String] {
        switch self {
        case .basic(_, let password): [password]
        case .identityToken(let token), .registryToken(let token): [token]
        }
    }
}

/// Finds credentials for a registry in a Docker `config.json`, as the docker CLI does:
/// `credHelpers[host]`, then `auths[host]`, then `credsStore`.
///
/// The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
/// Helpers are `docker-credential-<name>` programs on `PATH` speaking the
/// docker-credential-helpers protocol (`get` with the server URL on stdin).
public struct DockerConfigCredentials: Sendable {
    public let configFile: URL
    let environment: [String: String]

    /// Reads from `environment` (`DOCKER_CONFIG`, `HOME`, `PATH`).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        if let directory = environment["DOCKER_CONFIG"], !directory.isEmpty {
            configFile = URL(fileURLWithPath: directory).appendingPathComponent("config.json")
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            configFile = URL(fileURLWithPath: home).appendingPathComponent(".docker/config.json")
        }
    }

    struct File: Decodable {
        struct Auth: Decodable {
            var auth: String?
            var username: String?
            var password: String?
            var identitytoken: String?
            var registrytoken: String?
        }
        var auths: [String: Auth]?
        var credHelpers: [String: String]?
        var credsStore: String?
    }

    /// The credentials for `host`, or nil when the config has none (or there is no config).
    public func credentials(for host: RegistryHost) throws -> Credentials? {
        guard let data = FileManager.default.contents(atPath: configFile.path) else { return nil }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw RegistryError(
                .credentials, operation: "read \(configFile.path)", hint: "not a valid Docker config.json")
        }
        if let helper = file.credHelpers?.first(where: { Self.names(host, $0.key) })?.value {
            return try runHelper(helper, for: host)
        }
        if let entry = file.auths?.first(where: { Self.names(host, $0.key) })?.value {
            if let token = entry.registrytoken, !token.isEmpty { return .registryToken(token) }
            if let token = entry.identitytoken, !token.isEmpty { return .identityToken(token) }
            if let username = entry.username, let password = entry.password {
                return .basic(username: username, password: password)
            }
            if let encoded = entry.auth, !encoded.isEmpty {
                guard let decoded = Data(base64Encoded: encoded).flatMap({ String(data: $0, encoding: .utf8) }),
                    let colon = decoded.firstIndex(of: ":")
                else {
                    throw RegistryError(
                        .credentials, operation: "read \(configFile.path)",
                        hint: "the auth entry for \(host) is not base64 of user:password")
                }
                return .basic(
                    username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))
            }
        }
        if let store = file.credsStore, !store.isEmpty {
            return try runHelper(store, for: host)
        }
        return nil
    }

    /// Whether a config key (`https://index.docker.io/v1/`, `host:port`, `https://host/`) names `host`.
    static func names(_ host: RegistryHost, _ key: String) -> Bool {
        var name = key.lowercased()
        for scheme in ["https://", "http://"] where name.hasPrefix(scheme) { name.removeFirst(scheme.count) }
        if let slash = name.firstIndex(of: "/") { name = String(name[..<slash]) }
        if host.isDockerHub { return ["index.docker.io", "docker.io", "registry-1.docker.io"].contains(name) }
        return name == host.rawValue.lowercased()
    }

    /// How long a credential helper may make no progress (no output, no I/O) before it is stopped.
    static let helperIdleTimeout: Duration = .seconds(60)

    private func runHelper(_ name: String, for host: RegistryHost) throws -> Credentials? {
        let program = "docker-credential-\(name)"
        let operation = "ask \(program) for \(host)"
        let paths = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        guard
            let executable = paths.map({ "\($0)/\(program)" }).first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            throw RegistryError(.credentials, operation: operation, hint: "\(program) is not on PATH")
        }
        let server = host.isDockerHub ? "https://index.docker.io/v1/" : host.rawValue
        // Run as every program Slipway starts is: both outputs drained at once (a helper that
        // fills standard error first cannot stall its answer), ended with us on SIGTERM, and
        // stopped when it makes no progress for a minute.
        let result: CommandResult
        do {
            result = try SpawnCommandRunner(baseEnvironment: environment)
                .run(
                    Command(executable, ["get"], input: Data((server + "\n").utf8), idleTimeout: Self.helperIdleTimeout)
                )
        } catch {
            throw RegistryError(.credentials, operation: operation, hint: "could not start it: \(error)")
        }
        if result.timedOut {
            throw RegistryError(
                .credentials, operation: operation, hint: "it did nothing for \(Self.helperIdleTimeout) and was stopped"
            )
        }
        let stdout = result.standardOutput
        let said = String(decoding: stdout + result.standardError, as: UTF8.self)
        if !result.succeeded {
            // The protocol's answer for "nothing stored for this server".
            if said.lowercased().contains("credentials not found") { return nil }
            let firstLine = said.split(separator: "\n").first.map(String.init) ?? "exit \(result.status)"
            throw RegistryError(.credentials, operation: operation, hint: String(firstLine.prefix(200)))
        }
        struct Answer: Decodable {
            var Username: String
            var Secret: String
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: stdout) else {
            throw RegistryError(
                .credentials, operation: operation, hint: "its answer is not {\"Username\",\"Secret\"} JSON")
        }
        // docker-credential-helpers: the username "<token>" marks an identity token.
        if answer.Username == "<token>" { return .identityToken(answer.Secret) }
        return .basic(username: answer.Username, password: answer.Secret)
    }
}
