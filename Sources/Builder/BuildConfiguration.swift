import BuildContext
import BuildLock
import Errors
import Foundation
import GitSource
import OCI
import Yams

/// What one `build-task` run is asked to do, from its environment (a Concourse task's
/// params) and its flags (a developer's terminal), flags winning. Names follow
/// oci-build-task.
public struct BuildConfiguration: Sendable, Equatable {
    public var context: URL
    public var dockerfile: URL
    public var target: String?
    public var buildArgs: [String: String]
    public var labels: [String: String]
    public var platforms: [Platform]
    /// Build arg name → a get directory holding the base image.
    public var imageArgs: [String: URL]
    public var skipIfPublished: ImageReference?
    /// `BASE_DIGESTS_FILE`: FROM reference → the digest `check` saw (track_base).
    public var baseDigests: [String: Digest]?
    public var lock: String?
    /// nil: the repository plus the inputs digest.
    public var lockKey: String?
    public var lockTimeout: Duration
    public var lockTTL: Duration
    /// The `git:` lock repository's credentials: `LOCK_PRIVATE_KEY`, `LOCK_USERNAME`, `LOCK_PASSWORD`.
    public var lockCredentials: GitCredentials
    public var tag: ImageReference?
    public var push: Bool
    public var output: URL
    public var branch: String?
    public var cache: URL
    /// `BUILDER`: assemble the image in Swift, or build it with buildah (``BuilderSetting``).
    public var builder: BuilderSetting
    public var registryUsername: String?
    public var registryPassword: String?
    public var registryInsecure: Bool
    public var registryCACerts: URL?
    /// `UNPACK_ROOTFS`: also `rootfs/` and `metadata.json`, Concourse's image format (a task's `image:`).
    public var unpackRootFS: Bool = false
    /// `OUTPUT_OCI` (or several platforms): `image/` (an OCI layout directory) instead of `image.tar`.
    public var outputOCI: Bool = false
    /// `ADDITIONAL_TARGETS`: stages built before the image, each into `<output>/../<stage>/` when that directory exists.
    public var additionalTargets: [String] = []
    /// `BUILDKIT_SECRET_<id>` and `BUILDKIT_SECRETTEXT_<id>`: what `RUN --mount=type=secret,id=<id>` reads.
    public var secrets: [BuildSecret] = []
    /// `BUILDKIT_SSH`: buildah's `--ssh` (`default|<id>[=<socket>|<key>[,<key>]]`), paths made absolute.
    public var ssh: String?
    /// `BUILDKIT_ADD_HOSTS`: `host=ip` pairs, for `/etc/hosts` in RUN steps.
    public var addHosts: [HostEntry] = []
    /// `REGISTRY_MIRRORS` and the `[registry."docker.io"] mirrors` of `BUILDKIT_EXTRA_CONFIG`: mirrors of docker.io.
    public var registryMirrors: [RegistryHost] = []
    /// `DEBUG`: log buildah's command lines.
    public var debug: Bool = false
    /// `CACHE_REPOSITORY`: buildah's layer cache in a registry, shared by every worker (SharedCache.swift).
    public var cacheRepository: ImageReference?
    /// The registries `REGISTRY_USERNAME`/`REGISTRY_PASSWORD` go to when not those of
    /// `tag`, `skipIfPublished` and `cacheRepository`: an `ADDITIONAL_TARGETS` stage, built
    /// without a tag, keeps the image's.
    var credentialHostsOverride: [RegistryHost]?
    /// `CACHE_TTL`: how old a cached layer may be and still be reused.
    public var cacheTTL: Duration?

    /// Every environment variable build-task reads, and the prefixes of the families
    /// (`BUILD_ARG_<name>`, …): what a task's `params:` may set.
    public static let variables: Set<String> = [
        "CONTEXT", "DOCKERFILE", "TARGET", "TARGET_FILE", "BUILD_ARGS_FILE", "LABELS_FILE", "IMAGE_PLATFORM",
        "SKIP_IF_PUBLISHED", "BASE_DIGESTS_FILE", "TAG", "PUSH", "LOCK", "LOCK_KEY", "LOCK_TIMEOUT", "LOCK_TTL",
        "LOCK_PRIVATE_KEY", "LOCK_USERNAME", "LOCK_PASSWORD", "OUTPUT", "BRANCH", "CACHE", "BUILDER",
        "REGISTRY_USERNAME", "REGISTRY_PASSWORD", "REGISTRY_INSECURE", "REGISTRY_CA_CERTS", "DOCKER_CONFIG",
        // oci-build-task's outputs and BuildKit settings (BuildKitSettings.swift).
        "UNPACK_ROOTFS", "OUTPUT_OCI", "ADDITIONAL_TARGETS", "BUILDKIT_SSH", "BUILDKIT_ADD_HOSTS",
        "BUILDKIT_EXTRA_CONFIG",
        "REGISTRY_MIRRORS", "DEBUG", "CACHE_REPOSITORY", "CACHE_TTL",
        // oci-build-task's undocumented comma-separated lists (its envconfig reads every Config field).
        "BUILD_ARGS", "LABELS", "IMAGE_ARGS",
        // `build-task plan` and `build-all` (GraphFlags).
        "ROOT", "REPOSITORY", "SINCE", "IMAGE_TAG",
    ]
    public static let variablePrefixes = [
        "BUILD_ARG_", "LABEL_", "IMAGE_ARG_", "BUILDKIT_SECRET_", "BUILDKIT_SECRETTEXT_",
    ]

    public struct ValidationError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<BuildConfiguration.ValidationError>
        public var kind: Kind { .invalidSetting }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    /// Resolves flags over `environment`; relative paths are taken from `directory`. Each
    /// concern is read by its own ``SettingReader`` method, in the order their refusals are checked.
    public init(flags: BuildFlags, environment: [String: String], directory: URL) throws(ValidationError) {
        let read = SettingReader(flags: flags, environment: environment, directory: directory)
        let files = try read.contextAndDockerfile()
        context = files.context
        dockerfile = files.dockerfile
        target = try read.target()
        buildArgs = try read.layeredPairs(
            "BUILD_ARGS", file: "BUILD_ARGS_FILE", prefix: "BUILD_ARG_", flags: flags.buildArgs, option: "--build-arg")
        labels = try read.layeredPairs(
            "LABELS", file: "LABELS_FILE", prefix: "LABEL_", flags: flags.labels, option: "--label")
        platforms = try read.platforms()
        imageArgs = try read.imageArgs()
        baseDigests = try read.baseDigests()
        let publishing = try read.publishing()
        skipIfPublished = publishing.skipIfPublished
        tag = publishing.tag
        push = publishing.push
        let lockSettings = try read.lock()
        lock = lockSettings.lock
        lockKey = lockSettings.key
        lockTimeout = lockSettings.timeout
        lockTTL = lockSettings.ttl
        lockCredentials = lockSettings.credentials

        output = read.path(read.value(flags.output, "OUTPUT") ?? "image")
        branch = read.value(flags.branch, "BRANCH")
        cache = read.path(read.value(flags.cache, "CACHE") ?? "cache")
        builder = try read.builder()
        let credentials = try read.registryCredentials()
        registryUsername = credentials.username
        registryPassword = credentials.password
        // Inside the context they are left out of the build (contextExclusions); the context itself cannot be.
        for (variable, directory) in [("CACHE", cache), ("OUTPUT", output)]
        where Self.path(directory, within: context) == "" {
            throw ValidationError(
                "\(variable)=\(directory.path) is the context itself: give it a directory of its own (inside the context is fine, it is left out of the build)"
            )
        }
        registryInsecure = try read.truthy(flags.registryInsecure, "REGISTRY_INSECURE")
        registryCACerts = read.value(flags.registryCACerts, "REGISTRY_CA_CERTS").map(read.path)
        try readBuildKitSettings(environment, path: read.path)
        try readCacheSettings(environment)
    }

    /// The context's paths the build never sees: `CACHE` (buildah's storage, the shared
    /// cache) and `OUTPUT` (earlier images) when they lie inside the context, as they do
    /// with the defaults (`CONTEXT=.`, `CACHE=cache`, `OUTPUT=image`). Left out of buildah's
    /// view, of the assembler's and of the inputs digest alike.
    public var contextExclusions: [String] {
        var paths: [String] = []
        for directory in [cache, output] {
            if let relative = Self.path(directory, within: context), !relative.isEmpty, !paths.contains(relative) {
                paths.append(relative)
            }
        }
        return paths
    }

    /// `inner` relative to `outer` ("" when they are the same), nil when it is not inside;
    /// symbolic links resolved as far as the path exists.
    static func path(_ inner: URL, within outer: URL) -> String? {
        let innerPath = resolved(inner)
        let outerPath = resolved(outer)
        if innerPath == outerPath { return "" }
        let prefix = outerPath == "/" ? "/" : outerPath + "/"
        return innerPath.hasPrefix(prefix) ? String(innerPath.dropFirst(prefix.count)) : nil
    }

    /// The real path of `url`: its longest existing ancestor through realpath(3), then the rest.
    static func resolved(_ url: URL) -> String {
        var existing = url.standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        var base = existing.path
        if let real = realpath(existing.path, nil) {
            base = String(cString: real)
            free(real)
        }
        return rest.reduce(base) { $0 == "/" ? "/" + $1 : $0 + "/" + $1 }
    }

    /// Why lock credentials cannot be used with `lock` (nil when they can): they are only for
    /// a `git:` lock repository, and a username and a password go together. Names the
    /// setting, never its value.
    static func unusedLockCredential(lock: String?, credentials: GitCredentials) -> String? {
        let given = [
            ("LOCK_PRIVATE_KEY (--lock-private-key-file)", credentials.privateKey),
            ("LOCK_USERNAME (--lock-username)", credentials.username),
            ("LOCK_PASSWORD (--lock-password)", credentials.password),
        ].filter { $0.1 != nil }.map(\.0)
        guard let first = given.first else { return nil }
        guard let lock, lock.hasPrefix("git:") else {
            let now = lock == nil ? "LOCK is not set" : "LOCK is a file: lock"
            return
                "\(first) is set, but \(now); lock credentials are only for a git:<uri> lock repository: set LOCK=git:<uri>, or remove it"
        }
        if (credentials.username == nil) != (credentials.password == nil) {
            return "LOCK_USERNAME and LOCK_PASSWORD go together (https lock repository): set both, or neither"
        }
        return nil
    }

    /// A setting: the flag when given, else the environment variable; empty counts as unset.
    static func setting(_ flag: String?, _ variable: String, _ environment: [String: String]) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment[variable], !env.isEmpty { return env }
        return nil
    }

    /// `PREFIX<name>=value` variables, the name kept as written (oci-build-task keeps its case).
    static func prefixed(_ prefix: String, _ environment: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in environment where key.hasPrefix(prefix) && key.count > prefix.count {
            result[String(key.dropFirst(prefix.count))] = value
        }
        return result
    }

    static func pairs(_ items: [String], option: String) throws(ValidationError) -> [String: String] {
        var result: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("\(option) \(item): expected NAME=VALUE")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }

    /// oci-build-task's `BUILD_ARGS`, `LABELS`, `IMAGE_ARGS`: `NAME=VALUE` items separated by
    /// commas, as its configuration library reads a list from one variable.
    static func commaPairs(_ environment: [String: String], _ variable: String) throws(ValidationError) -> [String:
        String]
    {
        guard let text = environment[variable], !text.isEmpty else { return [:] }
        var result: [String: String] = [:]
        for (number, item) in text.split(separator: ",").enumerated() {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                // Not the item itself: a build arg's value may be a secret.
                throw ValidationError(
                    "\(variable): item \(number + 1) is not NAME=VALUE (items are separated by commas; use \(variable == "LABELS" ? "LABEL_<name>" : variable == "IMAGE_ARGS" ? "IMAGE_ARG_<name>" : "BUILD_ARG_<name>") for a value with a comma)"
                )
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }

    /// `key=value` lines (blank lines and `#` comments skipped), or a YAML map when the
    /// file's name ends in .yml/.yaml, as oci-build-task reads BUILD_ARGS_FILE.
    static func readPairs(_ file: URL, variable: String) throws(ValidationError) -> [String: String] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw ValidationError("\(variable)=\(file.path): cannot read it")
        }
        if ["yml", "yaml"].contains(file.pathExtension.lowercased()) {
            let loaded: Any?
            do { loaded = try DocumentNesting.load(text, what: "\(variable)=\(file.path)") } catch let refusal
                as DocumentNesting.Refusal
            {
                throw ValidationError(refusal.message)
            } catch { loaded = nil }
            guard let map = loaded as? [String: Any] else {
                throw ValidationError("\(variable)=\(file.path): expected a YAML map of names to values")
            }
            return map.mapValues { "\($0)" }
        }
        var result: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "="), equals != trimmed.startIndex else {
                throw ValidationError("\(variable)=\(file.path): the line \"\(trimmed.prefix(80))\" is not NAME=VALUE")
            }
            result[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
        }
        return result
    }

    /// `90`, `90s`, `10m`, `2h`: the lock's own parser, with this module's error.
    static func duration(_ text: String, _ what: String) throws(ValidationError) -> Duration {
        do { return try LockSpec.parseDuration(text, name: what) } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// Reads `build-task`'s settings, one concern per method: a flag over its environment
/// variable, paths relative to the working directory.
private struct SettingReader {
    typealias ValidationError = BuildConfiguration.ValidationError
    let flags: BuildFlags
    let environment: [String: String]
    let directory: URL

    func value(_ flag: String?, _ variable: String) -> String? {
        BuildConfiguration.setting(flag, variable, environment)
    }

    func path(_ text: String) -> URL {
        text.hasPrefix("/") ? URL(fileURLWithPath: text) : directory.appendingPathComponent(text)
    }

    func truthy(_ flag: Bool, _ variable: String) throws(ValidationError) -> Bool {
        if flag { return true }
        guard let text = environment[variable], !text.isEmpty else { return false }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ValidationError("\(variable)=\(text): expected true or false")
        }
    }

    /// `CONTEXT` (a directory) and `DOCKERFILE` (a file, by default the context's own).
    func contextAndDockerfile() throws(ValidationError) -> (context: URL, dockerfile: URL) {
        let context = path(value(flags.context, "CONTEXT") ?? ".")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: context.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw ValidationError("the context \(context.path) is not a directory (CONTEXT / --context)")
        }
        let dockerfile = value(flags.dockerfile, "DOCKERFILE").map(path) ?? context.appendingPathComponent("Dockerfile")
        guard FileManager.default.fileExists(atPath: dockerfile.path) else {
            throw ValidationError("the Dockerfile \(dockerfile.path) does not exist (DOCKERFILE / --dockerfile)")
        }
        return (context, dockerfile)
    }

    /// `TARGET`, or the contents of `TARGET_FILE` when no `--target` is given.
    func target() throws(ValidationError) -> String? {
        if flags.target == nil, let file = environment["TARGET_FILE"], !file.isEmpty {
            guard let text = try? String(contentsOf: path(file), encoding: .utf8) else {
                throw ValidationError("TARGET_FILE=\(file): cannot read it")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return value(flags.target, "TARGET")
    }

    /// Build args or labels: files first, then variables, then flags; the most specific wins.
    func layeredPairs(
        _ variable: String, file fileVariable: String, prefix: String, flags items: [String], option: String
    ) throws(ValidationError) -> [String: String] {
        var pairs = try BuildConfiguration.commaPairs(environment, variable)
        if let file = environment[fileVariable], !file.isEmpty {
            pairs.merge(try BuildConfiguration.readPairs(path(file), variable: fileVariable)) { $1 }
        }
        pairs.merge(BuildConfiguration.prefixed(prefix, environment)) { $1 }
        pairs.merge(try BuildConfiguration.pairs(items, option: option)) { $1 }
        return pairs
    }

    func platforms() throws(ValidationError) -> [Platform] {
        var platforms: [Platform] = []
        for text in (value(flags.platform, "IMAGE_PLATFORM") ?? "").split(separator: ",").map({
            $0.trimmingCharacters(in: .whitespaces)
        }) where !text.isEmpty {
            do { platforms.append(try Platform(text)) } catch {
                throw ValidationError("IMAGE_PLATFORM / --platform: \(error)")
            }
        }
        return platforms
    }

    /// Build arg name → an existing directory holding its base image.
    func imageArgs() throws(ValidationError) -> [String: URL] {
        var imageArgs = try BuildConfiguration.commaPairs(environment, "IMAGE_ARGS").mapValues(path)
        imageArgs.merge(BuildConfiguration.prefixed("IMAGE_ARG_", environment).mapValues(path)) { $1 }
        imageArgs.merge(try BuildConfiguration.pairs(flags.imageArgs, option: "--image-arg").mapValues(path)) { $1 }
        for (name, directory) in imageArgs where !FileManager.default.fileExists(atPath: directory.path) {
            throw ValidationError("image arg \(name): \(directory.path) does not exist")
        }
        return imageArgs
    }

    func baseDigests() throws(ValidationError) -> [String: Digest]? {
        guard let file = value(flags.baseDigestsFile, "BASE_DIGESTS_FILE") else { return nil }
        guard let data = try? Data(contentsOf: path(file)), let digests = try? BaseSummary.decode(data) else {
            throw ValidationError(
                "BASE_DIGESTS_FILE / --base-digests-file=\(file): cannot read a JSON map of FROM references to digests")
        }
        return digests
    }

    /// `SKIP_IF_PUBLISHED`, `TAG` and `PUSH`, which needs a tag.
    func publishing() throws(ValidationError) -> (skipIfPublished: ImageReference?, tag: ImageReference?, push: Bool) {
        func reference(_ text: String?, _ what: String) throws(ValidationError) -> ImageReference? {
            guard let text else { return nil }
            do { return try ImageReference(text) } catch { throw ValidationError("\(what): \(error)") }
        }
        let skipIfPublished = try reference(
            value(flags.skipIfPublished, "SKIP_IF_PUBLISHED"), "SKIP_IF_PUBLISHED / --skip-if-published")
        let tag = try reference(value(flags.tag, "TAG"), "TAG / --tag")
        let push = try truthy(flags.push, "PUSH")
        if push && tag == nil {
            throw ValidationError("--push / PUSH needs --tag / TAG: the image reference to push to")
        }
        return (skipIfPublished, tag, push)
    }

    /// `LOCK` and its key, timeouts and credentials.
    func lock() throws(ValidationError) -> (
        lock: String?, key: String?, timeout: Duration, ttl: Duration, credentials: GitCredentials
    ) {
        let lock = value(flags.lock, "LOCK")
        if let lock, !(lock.hasPrefix("file:") || lock.hasPrefix("git:")) {
            throw ValidationError("LOCK / --lock=\(lock): expected file:<dir> or git:<uri>")
        }
        let key = value(flags.lockKey, "LOCK_KEY")
        let timeout = try BuildConfiguration.duration(
            value(flags.lockTimeout, "LOCK_TIMEOUT") ?? "30m", "LOCK_TIMEOUT / --lock-timeout")
        let ttl = try BuildConfiguration.duration(value(flags.lockTTL, "LOCK_TTL") ?? "2h", "LOCK_TTL / --lock-ttl")
        var privateKey = environment["LOCK_PRIVATE_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let file = flags.lockPrivateKeyFile, !file.isEmpty {
            guard let text = try? String(contentsOf: path(file), encoding: .utf8) else {
                throw ValidationError("--lock-private-key-file=\(file): cannot read it")
            }
            privateKey = text
        }
        let credentials = GitCredentials(
            username: value(flags.lockUsername, "LOCK_USERNAME"), password: value(flags.lockPassword, "LOCK_PASSWORD"),
            privateKey: privateKey)
        if let unused = BuildConfiguration.unusedLockCredential(lock: lock, credentials: credentials) {
            throw ValidationError(unused)
        }
        return (lock, key, timeout, ttl, credentials)
    }

    func builder() throws(ValidationError) -> BuilderSetting {
        let builderText = value(flags.builder, "BUILDER") ?? "auto"
        guard let builder = BuilderSetting(rawValue: builderText.lowercased()) else {
            throw ValidationError("BUILDER / --builder: \(builderText) is not one of auto, assemble, buildah")
        }
        return builder
    }

    func registryCredentials() throws(ValidationError) -> (username: String?, password: String?) {
        let username = value(flags.registryUsername, "REGISTRY_USERNAME")
        let password = value(flags.registryPassword, "REGISTRY_PASSWORD")
        if (username == nil) != (password == nil) {
            throw ValidationError("REGISTRY_USERNAME and REGISTRY_PASSWORD go together")
        }
        return (username, password)
    }
}

extension ErrorKind where Owner == BuildConfiguration.ValidationError {
    /// A flag or environment variable of build-task is not usable.
    public static var invalidSetting: Self { Self("invalid setting") }
}
