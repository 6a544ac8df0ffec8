import Foundation
import OCI

/// A build secret, `RUN --mount=type=secret,id=<id>` in the Dockerfile: buildah mounts it
/// at `/run/secrets/<id>` for that step only, so it never reaches a layer.
public struct BuildSecret: Sendable, Equatable, CustomStringConvertible {
    public enum Source: Sendable, Equatable {
        /// `BUILDKIT_SECRET_<id>=<path>`: a file the task already has.
        case file(URL)
        /// `BUILDKIT_SECRETTEXT_<id>=<value>`: the value itself (a credential manager's `((var))`).
        case text(SecretText)
    }

    public var id: String
    public var source: Source

    public var description: String {
        switch source {
        case .file(let file): "secret \(id) from \(file.path)"
        case .text: "secret \(id) (text)"
        }
    }
}

/// A secret's text: held, never printed (not by `description`, `debugDescription` or a mirror).
public struct SecretText: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable
{
    let value: String
    init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// One `BUILDKIT_ADD_HOSTS` entry: `/etc/hosts` in RUN steps maps `host` to `address`.
public struct HostEntry: Sendable, Equatable {
    public var host: String
    public var address: String

    public init(host: String, address: String) {
        self.host = host
        self.address = address
    }
}

extension BuildConfiguration {
    /// The BuildKit settings oci-build-task users set, honoured with buildah's equivalents,
    /// and the ones that have none refused (``refusedBuildKitVariable(_:)``).
    mutating func readBuildKitSettings(_ environment: [String: String], path: (String) -> URL) throws(ValidationError) {
        func given(_ variable: String) -> String? { environment[variable].flatMap { $0.isEmpty ? nil : $0 } }
        unpackRootFS = try Self.flag(environment, "UNPACK_ROOTFS")
        // oci-build-task: several platforms cannot be a docker archive, so they imply OUTPUT_OCI.
        outputOCI = try Self.flag(environment, "OUTPUT_OCI") || platforms.count > 1
        debug = try Self.flag(environment, "DEBUG")
        if unpackRootFS && platforms.count > 1 {
            throw ValidationError(
                "UNPACK_ROOTFS=true with several platforms (IMAGE_PLATFORM): rootfs/ holds one platform's files; build one platform for a task's image:, or drop UNPACK_ROOTFS"
            )
        }

        additionalTargets = (given("ADDITIONAL_TARGETS") ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        for stage in additionalTargets where !Self.isPlainName(stage) || stage.hasPrefix(".") {
            throw ValidationError(
                "ADDITIONAL_TARGETS: \"\(stage.prefix(60))\" is not a stage name (letters, digits, -, _ and .; it names the target's output directory)"
            )
        }
        if additionalTargets.contains(output.lastPathComponent) {
            throw ValidationError(
                "ADDITIONAL_TARGETS: the stage \(output.lastPathComponent)'s outputs would go to \(output.path), the image's own output; rename the output (OUTPUT)"
            )
        }
        if !additionalTargets.isEmpty, skipIfPublished != nil {
            throw ValidationError(
                "ADDITIONAL_TARGETS with SKIP_IF_PUBLISHED: a reused image would leave the additional targets unbuilt; build them in a task without SKIP_IF_PUBLISHED"
            )
        }

        secrets = try Self.secrets(environment, path: path)

        ssh = try given("BUILDKIT_SSH").map { text throws(ValidationError) in
            try Self.ssh(text, environment: environment, path: path)
        }

        addHosts = try Self.addHosts(given("BUILDKIT_ADD_HOSTS"))
        registryMirrors = try Self.registryMirrors(
            given("REGISTRY_MIRRORS"), extraConfig: given("BUILDKIT_EXTRA_CONFIG"))

        if let refused = environment.keys.sorted().lazy.compactMap(Self.refusedBuildKitVariable).first {
            throw ValidationError(refused)
        }
    }

    /// `BUILDKIT_SECRET_<id>` (a readable file) and `BUILDKIT_SECRETTEXT_<id>` (the value), by
    /// variable name; each id given once.
    static func secrets(_ environment: [String: String], path: (String) -> URL) throws(ValidationError) -> [BuildSecret]
    {
        var secrets: [BuildSecret] = []
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            let text = key.hasPrefix("BUILDKIT_SECRETTEXT_")
            let file = !text && key.hasPrefix("BUILDKIT_SECRET_")
            guard text || file else { continue }
            let id = String(key.dropFirst(text ? "BUILDKIT_SECRETTEXT_".count : "BUILDKIT_SECRET_".count))
            if id.isEmpty, let refused = Self.refusedBuildKitVariable(key) { throw ValidationError(refused) }
            guard Self.isPlainName(id) else {
                throw ValidationError(
                    "\(key): the secret's id (after the prefix) must be letters, digits, -, _ or . (it is RUN --mount=type=secret,id=<id>)"
                )
            }
            if secrets.contains(where: { $0.id == id }) {
                throw ValidationError(
                    "BUILDKIT_SECRET_\(id) and BUILDKIT_SECRETTEXT_\(id) are both set: give the secret \(id) once")
            }
            if text {
                secrets.append(BuildSecret(id: id, source: .text(SecretText(value))))
            } else {
                guard !value.isEmpty else {
                    throw ValidationError("\(key) is empty: give the path of the file holding the secret")
                }
                let source = path(value)
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory),
                    !isDirectory.boolValue,
                    FileManager.default.isReadableFile(atPath: source.path)
                else {
                    throw ValidationError(
                        "\(key)=\(source.path): no readable file there (the value is the path of the file holding the secret; for the secret itself use BUILDKIT_SECRETTEXT_\(id))"
                    )
                }
                secrets.append(BuildSecret(id: id, source: .file(source)))
            }
        }
        return secrets
    }

    /// `BUILDKIT_ADD_HOSTS`: `host=ip` entries separated by commas.
    static func addHosts(_ text: String?) throws(ValidationError) -> [HostEntry] {
        var addHosts: [HostEntry] = []
        for item in (text ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty,
                parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }),
                Self.isAddress(parts[1])
            else {
                throw ValidationError(
                    "BUILDKIT_ADD_HOSTS: \"\(item.prefix(80))\" is not hostname=ip-address (entries are separated by commas)"
                )
            }
            addHosts.append(HostEntry(host: parts[0], address: parts[1]))
        }
        return addHosts
    }

    /// `REGISTRY_MIRRORS` then `BUILDKIT_EXTRA_CONFIG`'s docker.io mirrors, each host once.
    static func registryMirrors(_ text: String?, extraConfig: String?) throws(ValidationError) -> [RegistryHost] {
        var mirrors: [String] = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        if let extra = extraConfig { mirrors += try Self.dockerHubMirrors(extraConfig: extra) }
        var registryMirrors: [RegistryHost] = []
        for text in mirrors {
            guard !text.contains("/") else {
                throw ValidationError(
                    "registry mirror \(text.prefix(80)): give host[:port] only, with no scheme or path (a plain-HTTP mirror needs REGISTRY_INSECURE=true)"
                )
            }
            let host: RegistryHost
            do { host = try RegistryHost(text) } catch {
                throw ValidationError("registry mirror \(text.prefix(80)): \(error)")
            }
            if !registryMirrors.contains(host) { registryMirrors.append(host) }
        }
        return registryMirrors
    }

    /// Why a `BUILDKIT_*` variable is refused; nil for the ones build-task honours.
    static func refusedBuildKitVariable(_ key: String) -> String? {
        guard key.hasPrefix("BUILDKIT_"), !variables.contains(key),
            !variablePrefixes.contains(where: { key.hasPrefix($0) && key.count > $0.count })
        else { return nil }
        if key == "BUILDKIT_SECRET_" || key == "BUILDKIT_SECRETTEXT_" {
            return "\(key) has no secret id: name it \(key)<id>, as RUN --mount=type=secret,id=<id> does"
        }
        return
            "\(key) is not honoured: build-task builds with buildah, not BuildKit; it reads BUILDKIT_SSH, BUILDKIT_ADD_HOSTS, BUILDKIT_SECRET_<id>, BUILDKIT_SECRETTEXT_<id> and BUILDKIT_EXTRA_CONFIG (docker.io mirrors only): remove \(key)"
    }

    /// `true`/`false` (and 1/0, yes/no); unset or empty is false.
    static func flag(_ environment: [String: String], _ variable: String) throws(ValidationError) -> Bool {
        guard let text = environment[variable], !text.isEmpty else { return false }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ValidationError("\(variable)=\(text.prefix(40)): expected true or false")
        }
    }

    static func isPlainName(_ text: String) -> Bool {
        !text.isEmpty
            && text.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// `BUILDKIT_SSH` as buildctl's `--ssh` (and buildah's) reads it:
    /// `default|<id>[=<socket>|<key>[,<key>]]`; relative paths made absolute, each checked.
    static func ssh(_ text: String, environment: [String: String], path: (String) -> URL) throws(ValidationError)
        -> String
    {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let id = parts[0]
        guard isPlainName(id) else {
            throw ValidationError(
                "BUILDKIT_SSH: \"\(id.prefix(40))\" is not an id; expected default or <id>, optionally =<agent socket or key file>[,<key file>]"
            )
        }
        guard parts.count == 2 else {
            guard let socket = environment["SSH_AUTH_SOCK"], !socket.isEmpty else {
                throw ValidationError(
                    "BUILDKIT_SSH=\(id) forwards the ssh agent of SSH_AUTH_SOCK, which is not set: give \(id)=<key file or agent socket>"
                )
            }
            return id
        }
        var files: [String] = []
        for item in parts[1].split(separator: ",").map(String.init) {
            let file = path(item)
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw ValidationError(
                    "BUILDKIT_SSH: \(file.path) does not exist (expected an ssh-agent socket or a private key file)")
            }
            files.append(file.path)
        }
        guard !files.isEmpty else {
            throw ValidationError("BUILDKIT_SSH=\(id)=: give a key file or an agent socket after =")
        }
        return "\(id)=\(files.joined(separator: ","))"
    }

    /// A TOML line without its comment (a `#` outside quotes and what follows) and the
    /// surrounding blanks.
    static func tomlUncommented(_ line: Substring) -> String {
        var quote: Character?
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" {
                return String(line[..<index]).trimmingCharacters(in: .whitespaces)
            }
        }
        return line.trimmingCharacters(in: .whitespaces)
    }

    /// The docker.io mirrors of a buildkitd.toml (`[registry."docker.io"] mirrors = [...]`),
    /// the one part of `BUILDKIT_EXTRA_CONFIG` buildah has an equivalent for; anything else
    /// in it is refused, named.
    static func dockerHubMirrors(extraConfig: String) throws(ValidationError) -> [String] {
        let unsupported =
            "build-task builds with buildah, not BuildKit, and reads only [registry.\"docker.io\"] mirrors = [...] from BUILDKIT_EXTRA_CONFIG"
        var lines = extraConfig.split(whereSeparator: \.isNewline).map(tomlUncommented).filter { !$0.isEmpty }[...]
        var table = ""
        var mirrors: [String] = []
        while let line = lines.popFirst() {
            if line.hasPrefix("[") {
                let name = line.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).replacingOccurrences(
                    of: " ", with: "")
                guard ["registry", "registry.\"docker.io\"", "registry.'docker.io'"].contains(name),
                    !line.hasPrefix("[[")
                else {
                    let hint =
                        name.hasPrefix("registry.")
                        ? " (a registry's http, insecure or ca: REGISTRY_INSECURE=true or REGISTRY_CA_CERTS)" : ""
                    throw ValidationError(
                        "BUILDKIT_EXTRA_CONFIG: the table \(line.prefix(60)) is not supported: \(unsupported)\(hint)")
                }
                table = name
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ValidationError("BUILDKIT_EXTRA_CONFIG: \"\(line.prefix(60))\" is not TOML key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard table != "registry", table != "", key == "mirrors" else {
                let full = table.isEmpty ? key : "[\(table)] \(key)"
                let hint =
                    ["http", "insecure"].contains(key)
                    ? " (for a plain-HTTP or unverified registry: REGISTRY_INSECURE=true)"
                    : ["ca", "keypair", "tlsconfigdir"].contains(key) ? " (for a registry's CA: REGISTRY_CA_CERTS)" : ""
                throw ValidationError(
                    "BUILDKIT_EXTRA_CONFIG: \(full.prefix(80)) is not supported: \(unsupported)\(hint)")
            }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            while !value.contains("]"), let next = lines.popFirst() { value += next }
            guard value.hasPrefix("["), value.hasSuffix("]") else {
                throw ValidationError(
                    "BUILDKIT_EXTRA_CONFIG: [registry.\"docker.io\"] mirrors must be a list of strings, as [\"mirror.example\"]"
                )
            }
            for item in value.dropFirst().dropLast().split(separator: ",").map({
                $0.trimmingCharacters(in: .whitespaces)
            }) where !item.isEmpty {
                guard item.count >= 2, let first = item.first, first == "\"" || first == "'", item.last == first else {
                    throw ValidationError(
                        "BUILDKIT_EXTRA_CONFIG: [registry.\"docker.io\"] mirrors must be a list of strings, as [\"mirror.example\"]"
                    )
                }
                mirrors.append(String(item.dropFirst().dropLast()))
            }
        }
        return mirrors
    }

    /// One warning line per environment variable that looks like one of build-task's but is
    /// not (a typo, a prefix without its underscore, a different case): it is ignored, and a
    /// silent ignore is how a build goes wrong unnoticed. Ordinary variables (PATH, HOME,
    /// Concourse's BUILD_* metadata) are never warned about. Never prints a value.
    public static func lookalikeWarnings(_ environment: [String: String]) -> [String] {
        environment.keys.sorted().compactMap { key in
            lookalike(key).map {
                "build-task: warning: \(key) is not a build-task variable and is ignored; did you mean \($0)?"
            }
        }
    }

    /// Variables any process or Concourse sets, whatever they resemble.
    static let ordinaryVariables: Set<String> = [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "PWD", "OLDPWD", "SHLVL", "HOSTNAME", "LANG", "LANGUAGE",
        "TZ", "TMPDIR",
        "MAIL", "_", "SSH_AUTH_SOCK", "SSH_AGENT_PID", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        "ATC_EXTERNAL_URL", "BUILD_ID", "BUILD_NAME", "BUILD_JOB_NAME", "BUILD_JOB_ID", "BUILD_PIPELINE_NAME",
        "BUILD_PIPELINE_ID",
        "BUILD_PIPELINE_INSTANCE_VARS", "BUILD_TEAM_NAME", "BUILD_TEAM_ID", "BUILD_CREATED_BY", "BUILD_URL",
    ]

    /// What `key` was probably meant to be, or nil when it is one of ours or nothing like one.
    static func lookalike(_ key: String) -> String? {
        if variables.contains(key) || variablePrefixes.contains(where: { key.hasPrefix($0) && key.count > $0.count }) {
            return nil
        }
        let upper = key.uppercased()
        if ordinaryVariables.contains(upper) || ["LC_", "XDG_"].contains(where: { upper.hasPrefix($0) }) { return nil }
        // BUILDKIT_* that is not ours is refused, not warned about (BuildKitSettings).
        if key.hasPrefix("BUILDKIT_") { return nil }
        for prefix in variablePrefixes {
            let bare = String(prefix.dropLast())  // BUILD_ARG
            let variants = [
                prefix, bare.replacingOccurrences(of: "_", with: "") + "_", bare + "S_",
                bare.replacingOccurrences(of: "_", with: "") + "S_",
            ]
            if upper == bare || upper == prefix || variants.contains(where: { upper.hasPrefix($0) }) {
                return "\(prefix)<name>"
            }
        }
        guard upper.count >= 3 else { return nil }
        let candidates = variables.map { ($0, editDistance(upper, $0)) }.filter { name, distance in
            distance <= (name.count <= 5 ? 1 : 2)
        }
        return candidates.min { ($0.1, $0.0) < ($1.1, $1.0) }?.0
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
