import ArgumentParser

/// `build-task`'s command line. Every flag has an environment variable of the same meaning
/// (oci-build-task's names, so its users can switch); a flag wins over its variable.
public struct BuildFlags: ParsableArguments, Sendable {
    public init() {}

    @Option(help: "The build context directory. Env: CONTEXT (default: .)")
    public var context: String?

    @Option(help: "The Dockerfile. Env: DOCKERFILE (default: <context>/Dockerfile)")
    public var dockerfile: String?

    @Option(help: "The stage to build. Env: TARGET, or TARGET_FILE (a file holding it)")
    public var target: String?

    @Option(name: .customLong("build-arg"), help: "NAME=VALUE, repeatable. Env: BUILD_ARG_<NAME>=VALUE, BUILD_ARGS_FILE (key=value lines, or a YAML map)")
    public var buildArgs: [String] = []

    @Option(name: .customLong("label"), help: "NAME=VALUE, repeatable. Env: LABEL_<NAME>=VALUE, LABELS_FILE (key=value lines)")
    public var labels: [String] = []

    @Option(help: "Comma-separated platforms, e.g. linux/amd64,linux/arm64 (several give an index). Env: IMAGE_PLATFORM")
    public var platform: String?

    @Option(name: .customLong("image-arg"), help: "NAME=DIR, repeatable: a base image from a get directory, as build arg NAME. Env: IMAGE_ARG_<NAME>=DIR")
    public var imageArgs: [String] = []

    @Option(name: .customLong("base-digests-file"), help: "Pin FROM images to these digests (a get's base_digests.json, track_base). Env: BASE_DIGESTS_FILE")
    public var baseDigestsFile: String?

    @Option(name: .customLong("skip-if-published"), help: "Reuse an image of this repository built from the same inputs. Env: SKIP_IF_PUBLISHED")
    public var skipIfPublished: String?

    @Option(help: "Serialise builds: file:<dir> or git:<uri>. Env: LOCK")
    public var lock: String?

    @Option(name: .customLong("lock-key"), help: "What the lock serialises. Env: LOCK_KEY (default: the repository plus the inputs digest)")
    public var lockKey: String?

    @Option(name: .customLong("lock-timeout"), help: "How long to wait for the lock: 90s, 10m, 1h. Env: LOCK_TIMEOUT (default: 30m)")
    public var lockTimeout: String?

    @Option(name: .customLong("lock-ttl"), help: "After how long a dead holder's lock may be taken over. Env: LOCK_TTL (default: 2h)")
    public var lockTTL: String?

    @Option(help: "The image reference to name the result, e.g. registry.example/team/app:my-changes. Env: TAG")
    public var tag: String?

    @Flag(help: "Push the result to --tag's registry. Env: PUSH=true")
    public var push: Bool = false

    @Option(help: "Where image/ outputs go. Env: OUTPUT (default: image)")
    public var output: String?

    @Option(help: "The branch for the dev.slipway.branch label. Env: BRANCH (default: the context's .git/branch, else its checked-out branch)")
    public var branch: String?

    @Option(help: "buildah's storage, for a Concourse task's caches: entry. Env: CACHE (default: cache)")
    public var cache: String?

    @Option(name: .customLong("registry-username"), help: "Env: REGISTRY_USERNAME (else DOCKER_CONFIG's config.json)")
    public var registryUsername: String?

    @Option(name: .customLong("registry-password"), help: "Env: REGISTRY_PASSWORD")
    public var registryPassword: String?

    @Flag(name: .customLong("registry-insecure"), help: "Plain HTTP or unverified TLS. Env: REGISTRY_INSECURE=true")
    public var registryInsecure: Bool = false

    @Option(name: .customLong("registry-ca-certs"), help: "A PEM file of CA certificates to trust. Env: REGISTRY_CA_CERTS")
    public var registryCACerts: String?
}

/// The command line as `build-task` presents it (`--help` says `build-task`, not the
/// flags type's name).
public struct BuildTaskCommandLine: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "build-task",
        abstract: "Builds a container image with buildah, as a Concourse task (params in the environment) or by hand (flags).")

    @OptionGroup public var flags: BuildFlags

    public init() {}
}
