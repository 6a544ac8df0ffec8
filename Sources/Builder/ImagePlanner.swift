import BuildContext
import Console
import Errors
import Foundation
import OCI
import Spawn

/// `build-task plan` and `build-task build-all`: the images of a
/// root, which of them change, building them in order, and the pipeline that does it on
/// Concourse workers.
///
/// Every directory under the root holding a `Dockerfile` (hidden directories skipped) is an
/// image, `<REPOSITORY>/<path under the root>`, built as `build-task` builds one: context
/// the directory, `SKIP_IF_PUBLISHED` its repository, the build args of the command line
/// plus `REPOSITORY` (so `FROM ${REPOSITORY}/base:${BASE_TAG}` names the graph's base).
public struct ImagePlanner {
    public struct Failure: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<ImagePlanner.Failure>
        public var kind: Kind { .invalidPlan }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    /// An image directory found under the root.
    struct Directory {
        var name: String
        var url: URL
    }

    let flags: BuildFlags
    let root: URL
    let rootLabel: String
    /// The repository prefix as given; a parsed check is `repositoryIsValid`.
    let repository: String
    let since: String?
    let imageTag: OCI.Tag
    let environment: [String: String]
    let directory: URL
    let log: Log
    let runner: any CommandRunner
    /// The root's path in its git checkout (`images/`, `""` at the top), nil outside one.
    let checkoutPrefix: String?
    let directories: [Directory]

    /// Reads the settings: flags over `environment`, relative paths from `directory`.
    public init(
        flags: BuildFlags, graph: GraphFlags, environment: [String: String], directory: URL,
        log: Log, runner: any CommandRunner = SpawnCommandRunner()
    ) throws(Failure) {
        func value(_ flag: String?, _ variable: String) -> String? {
            BuildConfiguration.setting(flag, variable, environment)
        }
        for (given, name) in [
            (flags.context, "--context"), (flags.dockerfile, "--dockerfile"), (flags.tag, "--tag"),
            (flags.skipIfPublished, "--skip-if-published"),
        ] where given != nil {
            throw Failure(
                "\(name) is set per image by plan and build-all (the image's directory, <repository>/<name>); leave it out"
            )
        }
        if flags.baseDigestsFile != nil || !(environment["BASE_DIGESTS_FILE"] ?? "").isEmpty {
            throw Failure(
                "BASE_DIGESTS_FILE / --base-digests-file pins one image's bases (track_base); plan and build-all resolve each image's bases themselves"
            )
        }
        self.flags = flags
        self.environment = environment
        self.directory = directory
        self.log = log
        self.runner = runner

        var label = value(graph.root, "ROOT") ?? "."
        while label.count > 1, label.hasSuffix("/") { label.removeLast() }
        rootLabel = label
        root = label.hasPrefix("/") ? URL(fileURLWithPath: label) : directory.appendingPathComponent(label)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Failure("the root \(root.path) is not a directory (ROOT / --root)")
        }
        guard var repository = value(graph.repository, "REPOSITORY") else {
            throw Failure(
                "REPOSITORY / --repository is required: where the images go, e.g. registry.example/team (each image is <repository>/<directory>)"
            )
        }
        while repository.hasSuffix("/") { repository.removeLast() }
        self.repository = repository
        since = value(graph.since, "SINCE")
        let tagText = value(graph.imageTag, "IMAGE_TAG") ?? "latest"
        do { imageTag = try OCI.Tag(tagText) } catch { throw Failure("IMAGE_TAG / --image-tag: \(error)") }

        let prefix = try? runner.run(Command("git", ["-C", root.path, "rev-parse", "--show-prefix"]))
        checkoutPrefix = prefix.flatMap {
            $0.succeeded ? $0.outputText.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        directories = Self.discover(root)
        guard !directories.isEmpty else {
            throw Failure("no image under \(root.path): no directory below it holds a Dockerfile")
        }
    }

    /// Every directory below `root` holding a regular file named `Dockerfile`, by name;
    /// hidden directories and symbolic links are not entered.
    static func discover(_ root: URL) -> [Directory] {
        var found: [Directory] = []
        func walk(_ relative: String) {
            let url = relative.isEmpty ? root : root.appendingPathComponent(relative)
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for name in names where !name.hasPrefix(".") {
                let child = url.appendingPathComponent(name)
                var status = stat()
                guard lstat(child.path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                var dockerfile = stat()
                if stat(child.appendingPathComponent("Dockerfile").path, &dockerfile) == 0,
                    dockerfile.st_mode & S_IFMT == S_IFREG
                {
                    found.append(Directory(name: path, url: child))
                }
                walk(path)
            }
        }
        walk("")
        return found.sorted { $0.name < $1.name }
    }

    /// `<REPOSITORY>/<name>`.
    func repository(of name: String) -> String { "\(repository)/\(name)" }

    /// Whether the repository is a real one (not a `((var))` left for Concourse, which only
    /// `--emit-pipeline` accepts).
    var repositoryIsValid: Bool { (try? ImageReference(repository(of: directories[0].name))) != nil }

    func requireValidRepository() throws(Failure) {
        do { _ = try ImageReference(repository(of: directories[0].name)) } catch {
            throw Failure(
                "REPOSITORY / --repository=\(repository) is not a repository: \(error.reason)"
                    + (repository.contains("((") ? " (only --emit-pipeline takes ((vars)))" : ""))
        }
    }

    /// The image's directory as git and people see it.
    func path(of name: String) -> String {
        if let checkoutPrefix { return checkoutPrefix + name }
        return rootLabel == "." ? name : rootLabel + "/" + name
    }

    /// The configuration `build-task` would have for the image: the command line's, with the
    /// image's context, Dockerfile, `SKIP_IF_PUBLISHED`, tag (`<repository>:<image tag>`) and
    /// output (`<output>/<name>`), and the build arg `REPOSITORY` unless one is given.
    func configuration(for name: String) throws(Failure) -> BuildConfiguration {
        var flags = self.flags
        let context = root.appendingPathComponent(name)
        flags.context = context.path
        flags.dockerfile = context.appendingPathComponent("Dockerfile").path
        let outputs = flags.output ?? environment["OUTPUT"].flatMap { $0.isEmpty ? nil : $0 } ?? "image"
        flags.output =
            (outputs.hasPrefix("/") ? URL(fileURLWithPath: outputs) : directory.appendingPathComponent(outputs))
            .appendingPathComponent(name).path
        var environment = self.environment
        for variable in ["CONTEXT", "DOCKERFILE", "TAG", "SKIP_IF_PUBLISHED", "OUTPUT"] { environment[variable] = nil }
        if repositoryIsValid {
            flags.skipIfPublished = repository(of: name)
            flags.tag = "\(repository(of: name)):\(imageTag)"
        } else {
            flags.push = false
            environment["PUSH"] = nil
        }
        // Stage names differ per image, and <output>/<stage> would be where another image's outputs go.
        if let stages = environment["ADDITIONAL_TARGETS"], !stages.isEmpty {
            throw Failure(
                "ADDITIONAL_TARGETS is for one image's build (build-task build), not plan or build-all: build an image's extra stages in a task of their own"
            )
        }
        var configuration: BuildConfiguration
        do {
            configuration = try BuildConfiguration(flags: flags, environment: environment, directory: directory)
        } catch {
            throw Failure(error.description)
        }
        if configuration.buildArgs["REPOSITORY"] == nil { configuration.buildArgs["REPOSITORY"] = repository }
        return configuration
    }

    /// The images and their `FROM` edges.
    public func graph() throws -> ImageGraph {
        var images: [GraphImage] = []
        for directory in directories {
            if repositoryIsValid {
                do { _ = try ImageReference(repository(of: directory.name)) } catch {
                    throw Failure(
                        "\(path(of: directory.name)): the image's repository \(repository(of: directory.name)) is not one: \(error.reason)"
                    )
                }
            }
            let configuration = try configuration(for: directory.name)
            let text: String
            do { text = try String(contentsOf: configuration.dockerfile, encoding: .utf8) } catch {
                throw Failure("cannot read \(path(of: directory.name))/Dockerfile")
            }
            images.append(
                try GraphImage(
                    name: directory.name, path: path(of: directory.name), repository: repository(of: directory.name),
                    dockerfile: text, buildArgs: configuration.buildArgs))
        }
        return try ImageGraph(images)
    }

    /// What happens to each image, in build order.
    ///
    /// By default an image changed when no image is published under its inputs digest
    /// (`<repository>:inputs-<hex>`, as `SKIP_IF_PUBLISHED` publishes it), computed as a
    /// build computes it: bases resolved in their registries, an in-graph base by the digest
    /// its tag has there now. With `since`, when `git diff --name-only <since> HEAD` names a
    /// file of its directory; an unchanged image is then reused as its `<image tag>`. Every
    /// image built on a changed one builds too.
    public func plan(_ graph: ImageGraph) throws -> [PlannedImage] {
        try requireValidRepository()
        let changedFiles = try since.map(changedFiles)
        return try withScratch { scratch in
            try graph.plan { image in
                try naming(image) {
                    if let changedFiles, let since {
                        return try decideByGit(image, changedFiles: changedFiles, since: since)
                    }
                    return try decideByInputs(image, graph: graph, scratch: scratch.appendingPathComponent(image.name))
                }
            }
        }
    }

    func decideByInputs(_ image: GraphImage, graph: ImageGraph, scratch: URL) throws -> Decision {
        let configuration = try configuration(for: image.name)
        let log = prefixed(image.name)
        let access = RegistryAccess(configuration: configuration, environment: environment, log: log)
        // An in-graph base's tag may not be there yet (its first build-all pushes it).
        for reference in (graph.references[image.name] ?? [:]).values.flatMap({ $0 }) {
            guard let parsed = try? ImageReference(reference), parsed.digest == nil else { continue }
            if try access.client(for: parsed.registry).manifestDescriptor(parsed.repository, parsed.reference) == nil {
                return .build(.missing(reference))
            }
        }
        try FileManager.default.createDirectory(
            at: scratch.appendingPathComponent("links"), withIntermediateDirectories: true)
        let bases = try BaseResolver(configuration: configuration, access: access, log: log)
            .resolve(scratch: scratch, links: scratch.appendingPathComponent("links"))
        let inputs = try ImageBuild.inputs(configuration, bases: bases).digest()
        let published = try PublishedImages(
            repository: ImageReference(image.repository),
            client: access.client(for: ImageReference(image.repository).registry), log: log)
        if let found = try published.find(inputs) { return .reuse(found.digest, .published(inputs)) }
        return .build(.notPublished(inputs))
    }

    func decideByGit(_ image: GraphImage, changedFiles: [String], since: String) throws -> Decision {
        let files = changedFiles.filter { $0.hasPrefix(image.path + "/") }
        if !files.isEmpty { return .build(.changedFiles(files)) }
        let configuration = try configuration(for: image.name)
        let reference = try ImageReference("\(image.repository):\(imageTag)")
        let client = try RegistryAccess(configuration: configuration, environment: environment, log: log).client(
            for: reference.registry)
        guard let found = try client.manifestDescriptor(reference.repository, reference.reference) else {
            return .build(.missing(reference.description))
        }
        return .reuse(found.digest, .unchangedSince(since))
    }

    /// The files `git diff --name-only <since> HEAD` names (renames as a deletion and an
    /// addition, so a file moved out of a directory counts for it), relative to the checkout's top.
    func changedFiles(_ since: String) throws -> [String] {
        guard checkoutPrefix != nil else {
            throw Failure("--since / SINCE needs the root in a git checkout; \(root.path) is not in one")
        }
        let result = try runner.run(
            Command("git", ["-C", root.path, "diff", "--name-only", "--no-renames", "-z", since, "HEAD", "--"]))
        guard result.succeeded else {
            let message = result.errorText.split(separator: "\n").first.map(String.init) ?? "exit \(result.status)"
            throw Failure("--since \(since): git diff failed: \(message)")
        }
        return result.outputText.split(separator: "\0").map(String.init)
    }

    /// `body`, its errors prefixed with the image's path.
    func naming<R>(_ image: GraphImage, _ body: () throws -> R) throws -> R {
        do { return try body() } catch {
            throw Failure("\(image.path): \(error)")
        }
    }

    /// A log whose lines name the image.
    func prefixed(_ name: String) -> Log {
        let log = self.log
        return Log(verbose: log.verbose) { line in log.info("\(name): \(line)") }
    }

    /// A scratch directory with a lowercase path (buildah names an `oci:` image arg after
    /// its path, see `BaseResolver`), removed afterwards.
    func withScratch<R>(_ body: (URL) throws -> R) throws -> R {
        try withLowercaseTemporaryDirectory("slipway-plan", body)
    }
}

extension ErrorKind where Owner == ImagePlanner.Failure {
    /// The image directories or flags of a build-all do not make a plan.
    public static var invalidPlan: Self { Self("invalid plan") }
}
