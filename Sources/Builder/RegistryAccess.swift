import Console
import Foundation
import HTTP
import OCI
import Registry

/// How build-task reaches registries: for `SKIP_IF_PUBLISHED`, `--push` and
/// resolving base images, with one set of settings.
///
/// Credentials follow one rule, since the Dockerfile is the repository's and may name any
/// registry: `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` go only to the registries the pipeline
/// named (``credentialHosts``: those of `--tag`, `SKIP_IF_PUBLISHED` and `CACHE_REPOSITORY`),
/// also when a `FROM` names one of them; every other host gets its own entry in
/// `$DOCKER_CONFIG/config.json` (credential helpers included), else nothing. buildah, which
/// pulls the bases itself, is handed an auth file built by the same rule.
/// `REGISTRY_INSECURE` allows plain HTTP; `REGISTRY_CA_CERTS` adds a PEM file of CAs.
struct RegistryAccess {
    let configuration: BuildConfiguration
    let environment: [String: String]
    let log: Log

    /// The registries `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` are for.
    var credentialHosts: [RegistryHost] {
        configuration.credentialHostsOverride
            ?? [configuration.tag, configuration.skipIfPublished, configuration.cacheRepository].compactMap {
                $0?.registry
            }
    }

    /// `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` when `host` is one of ``credentialHosts``, else nil.
    func configuredCredentials(for host: RegistryHost) -> Credentials? {
        guard let username = configuration.registryUsername, let password = configuration.registryPassword,
            credentialHosts.contains(where: { $0 == host || ($0.isDockerHub && host.isDockerHub) })
        else { return nil }
        return .basic(username: username, password: password)
    }

    /// The credentials `host` gets: ``configuredCredentials(for:)``, else its own Docker config entry, else none.
    func credentials(for host: RegistryHost) throws -> Credentials? {
        try configuredCredentials(for: host) ?? DockerConfigCredentials(environment: environment).credentials(for: host)
    }

    /// - Parameter retry: how hard to try; a mirror gets ``mirrorRetry``, since docker.io stands behind it.
    func client(for host: RegistryHost, retry: RetryPolicy = .standard) throws -> RegistryClient {
        try RegistryClient(
            host: host, credentials: try credentials(for: host), credentialLookup: nil,
            insecure: configuration.registryInsecure, caCertificates: try caCertificates(), retry: retry, log: log)
    }

    /// Two attempts: a mirror that is down is skipped in a second, not after the standard policy's half minute.
    static let mirrorRetry = RetryPolicy(maxAttempts: 2)

    func caCertificates() throws -> [String] {
        guard let file = configuration.registryCACerts else { return [] }
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw BuildError(.unreadableFile, "REGISTRY_CA_CERTS=\(file.path): cannot read it")
        }
        return [text]
    }

    /// The same access for buildah, which pulls the bases itself: an auth file, TLS
    /// verification and a certificate directory, written under `scratch` (the run's private
    /// directory; mode 0600, never on the command line). The auth file holds an entry for
    /// each of `hosts` that has credentials by the rule above, and no other host.
    /// See containers-auth.json(5).
    func buildahOptions(hosts: [RegistryHost], scratch: URL) throws -> [String] {
        var options: [String] = []
        if configuration.registryInsecure { options += ["--tls-verify=false"] }
        var auths: [String: [String: String]] = [:]
        for host in hosts {
            let key = host.isDockerHub ? "docker.io" : host.rawValue
            guard auths[key] == nil, let credentials = try credentials(for: host) else { continue }
            switch credentials {
            case .basic(let username, let password):
                auths[key] = ["auth": Data("\(username):\(password)".utf8).base64EncodedString()]
            case .identityToken(let token):
                auths[key] = ["identitytoken": token]
            case .registryToken:
                log.info(
                    "\(host): buildah cannot use a registrytoken from the Docker config; it reaches \(host) without credentials"
                )
            }
        }
        // Always a file of ours, even an empty one: buildah would otherwise read
        // $DOCKER_CONFIG or ~/.docker itself, whole.
        let file = scratch.appendingPathComponent("auth.json")
        try writePrivate(try JSONSerialization.data(withJSONObject: ["auths": auths], options: [.sortedKeys]), to: file)
        options += ["--authfile", file.path]
        if let file = configuration.registryCACerts {
            let directory = scratch.appendingPathComponent("certs")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try Data(contentsOf: file).write(to: directory.appendingPathComponent("ca.crt"))
            options += ["--cert-dir", directory.path]
        }
        return options
    }

    /// A registries.conf giving docker.io its mirrors (`REGISTRY_MIRRORS`), in `scratch`, as
    /// the environment buildah reads it from: buildah then pulls docker.io bases from the
    /// first mirror that has them, else from docker.io, as BuildKit does. Empty without mirrors.
    /// See containers-registries.conf(5).
    func buildahEnvironment(scratch: URL) throws -> [String: String?] {
        guard !configuration.registryMirrors.isEmpty else { return [:] }
        var text =
            "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n"
        let insecureLine = configuration.registryInsecure ? "insecure = true\n" : ""
        for mirror in configuration.registryMirrors {
            text += "\n[[registry.mirror]]\nlocation = \"\(mirror.rawValue)\"\n" + insecureLine
        }
        let file = scratch.appendingPathComponent("registries.conf")
        try Data(text.utf8).write(to: file)
        return ["CONTAINERS_REGISTRIES_CONF": file.path]
    }

    /// Where a docker.io base is read from: the first mirror (`REGISTRY_MIRRORS`) that has it
    /// (by `digest` when the build is pinned to one), else docker.io itself. A mirror that
    /// fails or lacks it is logged and skipped, as BuildKit falls back to the origin.
    func located(_ reference: ImageReference, digest: Digest?) -> ImageReference {
        guard reference.registry == .dockerHub, !configuration.registryMirrors.isEmpty else { return reference }
        let wanted: Reference = (digest ?? reference.digest).map { .digest($0) } ?? reference.reference
        for mirror in configuration.registryMirrors {
            do {
                if try client(for: mirror, retry: Self.mirrorRetry).manifestDescriptor(reference.repository, wanted)
                    != nil
                {
                    log.info("base \(reference): from the mirror \(mirror)")
                    return ImageReference(
                        registry: mirror, repository: reference.repository, tag: reference.tag, digest: reference.digest
                    )
                }
                log.info(
                    "base \(reference): the mirror \(mirror) does not have it; trying the next mirror or docker.io")
            } catch {
                log.info(
                    "base \(reference): the mirror \(mirror) failed (\(error)); trying the next mirror or docker.io")
            }
        }
        return reference
    }

    private func writePrivate(_ data: Data, to file: URL) throws {
        FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.write(contentsOf: data)
    }
}
