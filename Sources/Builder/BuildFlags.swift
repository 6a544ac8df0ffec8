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

    @Option(
        name: .customLong("build-arg"),
        help: "NAME=VALUE, repeatable. Env: BUILD_ARG_<NAME>=VALUE, BUILD_ARGS_FILE (key=value lines, or a YAML map)")
    public var buildArgs: [String] = []

    @Option(
        name: .customLong("label"),
        help: "NAME=VALUE, repeatable. Env: LABEL_<NAME>=VALUE, LABELS_FILE (key=value lines)")
    public var labels: [String] = []

    @Option(
        help: "Comma-separated platforms, e.g. linux/amd64,linux/arm64 (several give an index). Env: IMAGE_PLATFORM")
    public var platform: String?

    @Option(
        name: .customLong("image-arg"),
        help: "NAME=DIR, repeatable: a base image from a get directory, as build arg NAME. Env: IMAGE_ARG_<NAME>=DIR")
    public var imageArgs: [String] = []

    @Option(
        name: .customLong("base-digests-file"),
        help: "Pin FROM images to these digests (a get's base_digests.json, track_base). Env: BASE_DIGESTS_FILE")
    public var baseDigestsFile: String?

    @Option(
        name: .customLong("skip-if-published"),
        help: "Reuse an image of this repository built from the same inputs. Env: SKIP_IF_PUBLISHED")
    public var skipIfPublished: String?

    @Option(help: "Serialise builds: file:<dir> or git:<uri>. Env: LOCK")
    public var lock: String?

    @Option(
        name: .customLong("lock-key"),
        help: "What the lock serialises. Env: LOCK_KEY (default: the repository plus the inputs digest)")
    public var lockKey: String?

    @Option(
        name: .customLong("lock-timeout"),
        help: "How long to wait for the lock: 90s, 10m, 1h. Env: LOCK_TIMEOUT (default: 30m)")
    public var lockTimeout: String?

    @Option(
        name: .customLong("lock-ttl"),
        help: "After how long a dead holder's lock may be taken over. Env: LOCK_TTL (default: 2h)")
    public var lockTTL: String?

    @Option(
        name: .customLong("lock-private-key-file"),
        help: "A file holding the ssh private key for a git: lock repository. Env: LOCK_PRIVATE_KEY (the key's text)")
    public var lockPrivateKeyFile: String?

    @Option(
        name: .customLong("lock-username"), help: "The https username for a git: lock repository. Env: LOCK_USERNAME")
    public var lockUsername: String?

    @Option(
        name: .customLong("lock-password"),
        help:
            "The https password or token for a git: lock repository. Env: LOCK_PASSWORD (preferred: a flag is visible to other users)"
    )
    public var lockPassword: String?

    @Option(help: "The image reference to name the result, e.g. registry.example/team/app:my-changes. Env: TAG")
    public var tag: String?

    @Flag(help: "Push the result to --tag's registry. Env: PUSH=true")
    public var push: Bool = false

    @Option(help: "Where image/ outputs go. Env: OUTPUT (default: image)")
    public var output: String?

    @Option(
        help:
            "The branch for the dev.slipway.branch label. Env: BRANCH (default: the context's .git/branch, else its checked-out branch)"
    )
    public var branch: String?

    @Option(
        help:
            "Who builds: auto (assemble a Dockerfile that executes nothing, else buildah), assemble, buildah. Env: BUILDER (default: auto)"
    )
    public var builder: String?

    @Option(
        help:
            "buildah's storage and RUN --mount=type=cache directories, for a Concourse task's caches: entry. Env: CACHE (default: cache); CACHE_REPOSITORY and CACHE_TTL (variables only) share layers between workers through a registry"
    )
    public var cache: String?

    @Option(name: .customLong("registry-username"), help: "Env: REGISTRY_USERNAME (else DOCKER_CONFIG's config.json)")
    public var registryUsername: String?

    @Option(
        name: .customLong("registry-password"),
        help: "Env: REGISTRY_PASSWORD (preferred: a flag is visible to other users in ps)")
    public var registryPassword: String?

    @Flag(name: .customLong("registry-insecure"), help: "Plain HTTP or unverified TLS. Env: REGISTRY_INSECURE=true")
    public var registryInsecure: Bool = false

    @Option(
        name: .customLong("registry-ca-certs"), help: "A PEM file of CA certificates to trust. Env: REGISTRY_CA_CERTS")
    public var registryCACerts: String?
}

/// The flags of `build-task plan` and `build-all`: a root of image directories and where
/// its images go.
public struct GraphFlags: ParsableArguments, Sendable {
    public init() {}

    @Option(
        help:
            "The directory whose subdirectories holding a Dockerfile are the images (hidden ones skipped). Env: ROOT (default: .)"
    )
    public var root: String?

    @Option(
        help:
            "Where the images go: each is <repository>/<directory>, e.g. registry.example/fornax; also the build arg REPOSITORY. Env: REPOSITORY"
    )
    public var repository: String?

    @Option(
        help:
            "A git revision: the images whose directory has a file changed in `git diff <since> HEAD` build (and their dependents), instead of those whose inputs are not published. Env: SINCE"
    )
    public var since: String?

    @Option(
        name: .customLong("image-tag"),
        help:
            "The tag build-all pushes each image as (--push), and the tag --since reuses. Env: IMAGE_TAG (default: latest)"
    )
    public var imageTag: String?
}

/// What the command line asks `build-task` to do.
public enum BuildTaskRequest: Sendable {
    /// One image: `build-task [flags]` (or `build-task build [flags]`).
    case build(BuildFlags)
    /// `build-task plan`: the build order of a root's images, or (`emitPipeline`) a pipeline.
    case plan(BuildFlags, GraphFlags, emitPipeline: String?)
    /// `build-task build-all`: a root's images built in that order.
    case buildAll(BuildFlags, GraphFlags)
}

/// The command line as `build-task` presents it (`--help` says `build-task`, not the
/// flags type's name). Building one image is the default subcommand, so `build-task
/// [flags]` works as it always has, and `--help` lists the flags with their variables.
public struct BuildTaskCommandLine: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "build-task",
        abstract:
            "Builds a container image with buildah, as a Concourse task (params in the environment) or by hand (flags).",
        discussion:
            "`build-task plan` and `build-task build-all` do the same for a root of image directories, in the order their FROM lines give.",
        subcommands: [Build.self, Plan.self, BuildAll.self],
        defaultSubcommand: Build.self)

    @OptionGroup public var flags: BuildFlags

    public init() {}

    /// Parses `CommandLine.arguments`; prints help or a usage error and exits as
    /// ArgumentParser does.
    public static func parseRequest(_ arguments: [String]? = nil) -> BuildTaskRequest {
        do {
            switch try parseAsRoot(arguments) {
            case let command as Plan: return .plan(command.flags, command.graph, emitPipeline: command.emitPipeline)
            case let command as BuildAll: return .buildAll(command.flags, command.graph)
            case let command as Build: return .build(command.flags)
            case let command as BuildTaskCommandLine: return .build(command.flags)
            case var command:  // ArgumentParser's own: `build-task help plan` prints help
                try command.run()
                exit()
            }
        } catch {
            exit(withError: error)
        }
    }

    public struct Build: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "build",
            abstract: "Builds one image (the default: `build-task [flags]`).")

        @OptionGroup public var flags: BuildFlags

        public init() {}
    }

    public struct Plan: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract:
                "Prints the build order of a root's images: `build <name>` or `reuse <name> <digest>`, with the reason.",
            discussion: """
                Images depend on each other by their FROM lines (build args applied, REPOSITORY among them). An image \
                builds when no image is published under its inputs digest (or, with --since, when a file of its \
                directory changed), and so does every image built on it.
                """)

        @OptionGroup(title: "Image graph") public var graph: GraphFlags

        @Option(
            name: .customLong("emit-pipeline"),
            help:
                "Write a Concourse pipeline instead (- for stdout): a source-keyed resource and a job per image, dependents wired with passed:"
        )
        public var emitPipeline: String?

        @OptionGroup(title: "Build flags (as for one image)") public var flags: BuildFlags

        public init() {}
    }

    public struct BuildAll: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "build-all",
            abstract:
                "Builds a root's images in plan order, each as build-task builds one, outputs in <output>/<name>/.",
            discussion: """
                Each image is built with SKIP_IF_PUBLISHED=<repository>/<name>, so an unchanged one is reused without \
                buildah, and with --push it is pushed as <repository>/<name>:<image tag>, which the images built on it then \
                find (their FROM tag must be that tag).
                """)

        @OptionGroup(title: "Image graph") public var graph: GraphFlags

        @OptionGroup(title: "Build flags (as for one image)") public var flags: BuildFlags

        public init() {}
    }
}
