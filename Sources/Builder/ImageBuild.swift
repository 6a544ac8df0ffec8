import BuildContext
import BuildLock
import Console
import Foundation
import ImageLayout
import OCI
import Registry
import RootFS
import Spawn
import Transfer

/// One `build-task` run: an image built from the context, written to `image/` (`oci/`,
/// `image.tar`, `digest`, `build.json`, `attestations/`) and, with `--push`, pushed. A Dockerfile that
/// executes nothing is assembled in Swift (``Assembler``), anything else is built by buildah
/// (`BUILDER` chooses); everything after "an OCI layout is in `image/oci`" is shared.
///
/// Every image is labelled with where it came from: `org.opencontainers.image.revision`
/// (the context's commit), `.source` (its origin URL without credentials), `.created` (the
/// commit time, which is also buildah's `--timestamp`, so the same inputs give the same
/// image config), `dev.slipway.branch` and `dev.slipway.inputs` (the inputs digest).
public struct ImageBuild {
    public struct Result: Sendable, Equatable {
        /// The manifest digest of the image in `image/oci` (what `out` pushes and `in` reports).
        public var digest: Digest
        /// The inputs digest (`BuildInputs`).
        public var inputs: Digest
        public var revision: String?
        public var branch: String?
        /// True when `SKIP_IF_PUBLISHED` found the image and nothing was built.
        public var reused: Bool
    }

    let configuration: BuildConfiguration
    let log: Log
    let runner: any CommandRunner
    let environment: [String: String]
    let progress: StatusLine
    /// What the kernel can run without us: read before a build whose RUN steps may need qemu.
    let binfmt: BinfmtProbe
    /// Whether buildah may create its namespaces here: asked before a build that needs them.
    let namespaces: NamespaceProbe

    public init(
        _ configuration: BuildConfiguration, log: Log,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        runner: any CommandRunner = SpawnCommandRunner(), progress: StatusLine = StatusLine(enabled: false),
        binfmt: BinfmtProbe = BinfmtProbe(), namespaces: NamespaceProbe = NamespaceProbe()
    ) {
        self.configuration = configuration
        self.log = log
        self.runner = runner
        self.environment = environment
        self.progress = progress
        self.binfmt = binfmt
        self.namespaces = namespaces
    }

    public func run() throws -> Result {
        for stage in configuration.additionalTargets { try buildAdditionalTarget(stage) }
        let started = Date()
        let source = try sourceFacts()
        // Bulky work files (the pinned Dockerfile, buildah's TMPDIR, the assembler's layers)
        // stay in CACHE; anything secret goes to the private directory instead.
        PrivateRunDirectory.sweepLegacy(cache: configuration.cache, log: log)
        let scratch = configuration.cache.appendingPathComponent("run-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let scratchPath = scratch.path
        defer { try? FileManager.default.removeItem(at: scratch) }
        let removeScratch: @Sendable () -> Void = { try? FileManager.default.removeItem(atPath: scratchPath) }
        return try TerminationCleanup.onSignal(removeScratch) {
            try PrivateRunDirectory.with(outside: configuration.context, log: log, environment: environment) {
                secrets in
                try withLowercaseTemporaryDirectory("slipway") { links in
                    try resolveAndBuild(
                        started: started, source: source, scratch: scratch, secrets: secrets, links: links)
                }
            }
        }
    }

    /// - Parameter secrets: the run's ``PrivateRunDirectory``.
    func resolveAndBuild(started: Date, source: SourceFacts, scratch: URL, secrets: URL, links: URL) throws -> Result {
        let access = RegistryAccess(configuration: configuration, environment: environment, log: log)
        if configuration.registryUsername != nil && access.credentialHosts.isEmpty {
            log.info(
                "warning: REGISTRY_USERNAME and REGISTRY_PASSWORD are set, but no TAG, SKIP_IF_PUBLISHED or CACHE_REPOSITORY names a registry "
                    + "for them, so no registry gets them (a FROM line's registry never does); a private base needs an entry in DOCKER_CONFIG"
            )
        }
        let bases = try BaseResolver(configuration: configuration, access: access, log: log).resolve(
            scratch: scratch, links: links)
        let inputsDigest = try Self.inputs(configuration, bases: bases).digest()
        log.info(
            "inputs \(inputsDigest)" + (source.revision.map { " at \($0.prefix(12))" } ?? "")
                + (source.branch.map { " on \($0)" } ?? ""))
        var timings = Timings(started: started)
        timings.mark("resolve")

        let published = try configuration.skipIfPublished.map {
            PublishedImages(repository: $0, client: try access.client(for: $0.registry), log: log)
        }
        let run = Run(
            source: source, inputs: inputsDigest, bases: bases, access: access, published: published, scratch: scratch,
            secrets: secrets, started: started)
        if let reused = try reuse(run, timings: &timings) { return reused }
        let producer = try chooseBuilder(run.bases)
        if case .buildah = producer { try checkBuildahCanRun(run.bases) }
        guard let lock = configuration.lock else { return try build(run, producer: producer, timings: &timings) }
        let repository = configuration.tag ?? configuration.skipIfPublished
        let key = configuration.lockKey ?? ((repository.map(\.name) ?? "local") + "@" + inputsDigest.rawValue)
        let spec = try LockSpec(
            parsing: lock, key: key, timeout: configuration.lockTimeout, ttl: configuration.lockTTL,
            credentials: configuration.lockCredentials)
        return try withBuildLock(spec, log: log, runner: runner) {
            // Whoever held the lock may have published these inputs meanwhile.
            var timings = timings
            timings.mark("lock")
            if let reused = try reuse(run, timings: &timings) { return reused }
            return try build(run, producer: producer, timings: &timings)
        }
    }

    /// The inputs of a build of `configuration` on `bases`: what `SKIP_IF_PUBLISHED` looks
    /// up, and what `build-task plan` compares with the registry. Bases count by digest, so
    /// args only FROM lines read are left out; with `BASE_DIGESTS_FILE` (track_base) the
    /// `dev.slipway.base` label's summary, which names the references, counts too.
    static func inputs(_ configuration: BuildConfiguration, bases: BaseResolution) -> BuildInputs {
        BuildInputs(
            contextDirectory: configuration.context, dockerfile: configuration.dockerfile,
            buildArgs: configuration.buildArgs, fromOnlyArgs: bases.fromOnlyArgs, target: configuration.target,
            platforms: configuration.platforms.map(\.description), stageBases: bases.stageBases,
            baseSummary: configuration.baseDigests == nil ? nil : bases.summary,
            excludedPaths: configuration.contextExclusions)
    }

    /// What one run knows before it builds.
    struct Run {
        var source: SourceFacts
        var inputs: Digest
        var bases: BaseResolution
        var access: RegistryAccess
        var published: PublishedImages?
        var scratch: URL
        /// The ``PrivateRunDirectory``: buildah's auth file and the build's secrets.
        var secrets: URL
        var started: Date
    }

    struct SourceFacts {
        var revision: String?
        var branch: String?
        var origin: String?
        var time: Int?
    }

    /// The commit, branch, origin and commit time of the context's git checkout, if any.
    func sourceFacts() throws -> SourceFacts {
        func git(_ arguments: [String]) -> String? {
            guard let result = try? runner.run(Command("git", ["-C", configuration.context.path] + arguments)),
                result.succeeded
            else { return nil }
            let text = result.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        }
        var facts = SourceFacts()
        guard let root = git(["rev-parse", "--show-toplevel"]) else {
            log.info("the context is not in a git checkout: no revision label")
            facts.branch = configuration.branch
            return facts
        }
        facts.revision = git(["rev-parse", "HEAD"])
        facts.time = git(["log", "-1", "--format=%ct", "HEAD"]).flatMap { Int($0) }
        // BRANCH, else the .git/branch file Concourse's git resource and our in write, else the checked-out branch.
        let branchFile = (try? String(contentsOfFile: root + "/.git/branch", encoding: .utf8))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let checkedOut = git(["rev-parse", "--abbrev-ref", "HEAD"]).flatMap { $0 == "HEAD" ? nil : $0 }
        facts.branch = configuration.branch ?? branchFile.flatMap { $0.isEmpty ? nil : $0 } ?? checkedOut
        facts.origin = git(["config", "--get", "remote.origin.url"]).map(Self.publicSource)
        return facts
    }

    /// An origin URL as the `org.opencontainers.image.source` label may show it, to anyone
    /// who can pull the image: without userinfo (`https://user:token@host`), query
    /// (`?private_token=…`) or fragment, cut as text so a URL Foundation cannot parse loses
    /// them too. An scp-like `git@host:path` keeps its user name, which is no secret.
    static func publicSource(_ origin: String) -> String {
        guard let schemeEnd = origin.range(of: "://") else { return origin }
        var rest = origin[schemeEnd.upperBound...]
        if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        return String(origin[..<schemeEnd.upperBound] + rest)
    }

    /// The published image with the same inputs written to `image/`, or nil (no buildah call either way).
    func reuse(_ run: Run, timings: inout Timings) throws -> Result? {
        guard let published = run.published, let found = try published.find(run.inputs) else { return nil }
        log.info(
            "\(published.repository.name):\(PublishedImages.describe(run.inputs)) has these inputs: reusing \(found.digest), no build"
        )
        let output = try prepareOutput()
        let image = try published.fetch(
            found, into: output.appendingPathComponent("oci"), revision: run.source.revision)
        if case .image = image.manifest {
            try DockerArchive.write(image, repoTags: [repoTag], to: output.appendingPathComponent("image.tar"))
        }
        timings.mark("fetch")
        return try finish(image, run: run, reused: true, builder: nil, timings: timings, output: output)
    }

    /// What every run does once its image is in `image/`, reused or built: oci-build-task's
    /// outputs, the records, the attestations, then the push.
    func finish(_ image: LayoutImage, run: Run, reused: Bool, builder: Producer?, timings: Timings, output: URL) throws
        -> Result
    {
        try writeOCIBuildTaskOutputs(image, output: output)
        try writeRecords(image: image, run: run, reused: reused, timings: timings, output: output)
        try writeAttestations(image: image, run: run, builder: builder, output: output)
        try pushIfAsked(image, access: run.access)
        return Result(
            digest: image.descriptor.digest, inputs: run.inputs, revision: run.source.revision,
            branch: run.source.branch, reused: reused)
    }

    /// Who produces `image/oci`: the assembler (with its plan) or buildah.
    enum Producer {
        case assemble(AssemblyPlan)
        case buildah
    }

    /// What `BUILDER=assemble` says of a Dockerfile it cannot assemble: the reason and what to
    /// set instead (any buildah build needs `privileged: true` in Concourse, not only RUN).
    static func refusedUnderAssemble(_ refusal: AssemblyRefusal) -> BuildError {
        BuildError(
            .notAssemblable,
            "\(refusal.description); BUILDER=assemble cannot build it: use BUILDER=auto or buildah (buildah needs privileged: true in Concourse)"
        )
    }

    /// `BUILDER` applied to this Dockerfile: `auto` assembles what executes nothing and logs
    /// why it does not otherwise; `assemble` refuses, in one line, what it cannot assemble.
    func chooseBuilder(_ bases: BaseResolution) throws -> Producer {
        if configuration.builder == .buildah { return .buildah }
        do {
            guard let stages = bases.assemblyStages.first?.stages.stages else {
                // The Dockerfile did not parse: buildah's own message says why.
                throw AssemblyRefusal("the Dockerfile could not be read for assembly")
            }
            let plan = try AssemblyPlan(stages, directives: bases.directives)
            log.info("builder: assembling the image (the Dockerfile executes nothing; no buildah)")
            return .assemble(plan)
        } catch let refusal as AssemblyRefusal {
            guard configuration.builder == .auto else {
                throw Self.refusedUnderAssemble(refusal)
            }
            log.info("builder: buildah, since \(refusal.description)")
            return .buildah
        }
    }

    /// What buildah needs from this container, checked before a lock is waited for or buildah starts.
    func checkBuildahCanRun(_ bases: BaseResolution) throws {
        // A RUN for an architecture the kernel cannot run fails deep inside buildah with
        // "exec format error"; say why, and what to change.
        if let problem = Emulation.problem(builds: bases.targetBuilds, host: .host, emulators: binfmt.emulators()) {
            throw BuildError(.hostCannotBuild, problem)
        }
        // In a container that may not create namespaces (Concourse's default, non-privileged
        // task) buildah fails with "(Unable to determine exit status)"; say why and what to
        // change. A reuse or an assembled build needs no buildah, so they still work there.
        let need = namespaces.need()
        let runs = Namespaces.runs(bases.targetBuilds)
        if need == .userForEverything || runs,
            let problem = Namespaces.problem(need: need, attempt: namespaces.attempt(need), runs: runs)
        {
            throw BuildError(.hostCannotBuild, problem)
        }
    }

    /// The labels of every image built: provenance, inputs, bases, then `LABEL_*`.
    func labels(_ run: Run) -> [String: String] {
        var labels: [String: String] = [SlipwayVocabulary.inputsLabel: run.inputs.rawValue]
        if let revision = run.source.revision { labels[SlipwayVocabulary.revisionLabel] = revision }
        if let origin = run.source.origin { labels[SlipwayVocabulary.sourceLabel] = origin }
        if let branch = run.source.branch { labels[SlipwayVocabulary.branchLabel] = branch }
        labels[SlipwayVocabulary.baseLabel] = run.bases.summary.rawValue
        labels.merge(BaseImage.keys(run.bases.final)) { $1 }
        if let time = run.source.time {
            labels[SlipwayVocabulary.createdLabel] = ISO8601DateFormatter().string(
                from: Date(timeIntervalSince1970: TimeInterval(time)))
        }
        labels.merge(configuration.labels) { $1 }
        return labels
    }

    /// Builds, then does what every build does once an OCI layout is in `image/oci`: the
    /// manifests' base annotations, `image.tar`, the cache tag, `digest`, `build.json`, the push.
    func build(_ run: Run, producer: Producer, timings: inout Timings) throws -> Result {
        let labels = labels(run)
        let output: URL
        var builtBy = producer
        switch producer {
        case .assemble(let plan):
            do {
                output = try assemble(run, plan: plan, labels: labels, timings: &timings)
            } catch let refusal as AssemblyRefusal {
                // Found while reading files (an ADD of an archive, a base's ONBUILD): as before the build.
                guard configuration.builder == .auto else { throw Self.refusedUnderAssemble(refusal) }
                log.info("builder: buildah after all, since \(refusal.description)")
                try checkBuildahCanRun(run.bases)
                builtBy = .buildah
                output = try buildWithBuildah(run, labels: labels, timings: &timings)
            } catch let failure as CopyInstruction.Failure {
                throw BuildError(.assemblyFailed, failure.description)
            } catch let failure as FileTree.Failure {
                throw BuildError(.assemblyFailed, failure.description)
            }
        case .buildah:
            output = try buildWithBuildah(run, labels: labels, timings: &timings)
        }
        // The annotations say what the labels say (buildah writes its own idea of the base:
        // an image arg's temporary link, its local digest).
        let image = try OCILayout(opening: output.appendingPathComponent("oci"))
            .rewriteAnnotations(ofImageNamed: "latest") { BaseImage.annotations($0, labels: labels) }
        let archive = output.appendingPathComponent("image.tar")
        if case .image = image.manifest, !FileManager.default.fileExists(atPath: archive.path) {
            try DockerArchive.write(image, repoTags: [repoTag], to: archive)
        }
        timings.mark("export")
        if let published = run.published {
            try published.publish(image, inputs: run.inputs)
            timings.mark("publish")
        }
        return try finish(image, run: run, reused: false, builder: builtBy, timings: timings, output: output)
    }

    /// The image assembled into `image/oci` (``Assembler``).
    func assemble(_ run: Run, plan: AssemblyPlan, labels: [String: String], timings: inout Timings) throws -> URL {
        let started = Date()
        let assembler = Assembler(
            plan: plan, bases: run.bases, configuration: configuration, access: run.access, log: log,
            labels: labels, timestamp: run.source.time, scratch: run.scratch.appendingPathComponent("assemble"))
        if configuration.cacheRepository != nil {
            log.info(
                "CACHE_REPOSITORY: not used, the image is assembled (nothing RUNs, so buildah has no layer to cache or reuse)"
            )
        }
        let output = try prepareOutput()
        _ = try assembler.assemble(into: output.appendingPathComponent("oci"))
        log.info("assembled in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        timings.mark("build")
        return output
    }

    /// The image built by buildah and pushed by it into `image/oci` (and `image.tar` for one platform).
    func buildWithBuildah(_ run: Run, labels: [String: String], timings: inout Timings) throws -> URL {
        var buildah = Buildah(storage: configuration.cache, log: log, runner: runner, progress: progress)
        buildah.environment = try run.access.buildahEnvironment(scratch: run.secrets)
            .merging(SharedCache.environment(cache: configuration.cache, scratch: run.scratch)) { $1 }
        buildah.debug = configuration.debug
        try buildah.check()
        let name = "localhost/slipway-build:\(UUID().uuidString.prefix(12).lowercased())"
        defer { buildah.remove(name) }
        if let stale = SharedCache.staleCommit(configuration, commitTime: run.source.time) { log.info(stale) }
        let cacheHosts = configuration.cacheRepository.map { [$0.registry] } ?? []
        let options =
            try run.access.buildahOptions(
                hosts: run.bases.hosts + configuration.registryMirrors + cacheHosts, scratch: run.secrets)
            + SharedCache.options(configuration) + (try ignoreFileOption(run.secrets))
        try withSecretFiles(in: run.secrets) { secretOptions in
            _ = try buildah.build(
                context: configuration.context, dockerfile: run.bases.dockerfile, name: name,
                target: configuration.target, buildArgs: run.bases.buildArgs, labels: labels,
                timestamp: run.source.time, platforms: configuration.platforms.map(\.description),
                options: options + secretOptions + buildKitOptions)
        }
        timings.mark("build")

        let output = try prepareOutput()
        if configuration.platforms.count > 1 {
            // An index in oci/; a docker-archive cannot hold several platforms, so no image.tar.
            try buildah.pushList(name, to: "oci:\(output.appendingPathComponent("oci").path):latest")
            // buildah 1.28 lists platforms whose images are identical once, mislabelled.
            _ = try OCILayout(opening: output.appendingPathComponent("oci"))
                .givingEachPlatformItsImage(named: "latest", platforms: configuration.platforms)
        } else {
            try buildah.push(name, to: "oci:\(output.appendingPathComponent("oci").path):latest")
            try buildah.push(name, to: "docker-archive:\(output.appendingPathComponent("image.tar").path):\(repoTag)")
        }
        return output
    }

    /// buildah's `--ignorefile` when `CACHE` or `OUTPUT` lie inside the context: the
    /// context's `.dockerignore`, then a pattern for each (``BuildConfiguration/contextExclusions``),
    /// so buildah's storage, the run's files and earlier outputs never reach a `COPY .`.
    func ignoreFileOption(_ directory: URL) throws -> [String] {
        let excluded = configuration.contextExclusions
        guard !excluded.isEmpty else { return [] }
        var text =
            (try? String(contentsOf: configuration.context.appendingPathComponent(".dockerignore"), encoding: .utf8))
            ?? ""
        if !text.isEmpty, !text.hasSuffix("\n") { text += "\n" }
        text += excluded.map { Dockerignore.literalPattern($0) + "\n" }.joined()
        let file = directory.appendingPathComponent("dockerignore")
        try Data(text.utf8).write(to: file)
        return ["--ignorefile", file.path]
    }

    /// `image/`, emptied of a previous run's files.
    func prepareOutput() throws -> URL {
        let output = configuration.output
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        for stale in ["oci", "image.tar", "digest", "build.json", "image", "rootfs", "metadata.json", "attestations"] {
            try? FileManager.default.removeItem(at: output.appendingPathComponent(stale))
        }
        return output
    }

    /// The name image.tar gives the image (`docker load` tags it so).
    var repoTag: String {
        configuration.tag.map { "\($0.name):\($0.tag?.rawValue ?? "latest")" } ?? "slipway/build:latest"
    }

    /// `digest` and `build.json`.
    func writeRecords(image: LayoutImage, run: Run, reused: Bool, timings: Timings, output: URL) throws {
        try Data(image.descriptor.digest.rawValue.utf8).write(to: output.appendingPathComponent("digest"))
        struct Base: Encodable {
            var reference: String
            var name: String?
            var digest: String
        }
        struct Record: Encodable {
            var digest: String
            var inputs: String
            var reused: Bool
            var revision: String?
            var branch: String?
            var baseDigests: [String: String]
            var bases: [Base]
            var durations: [String: Double]
        }
        let record = Record(
            digest: image.descriptor.digest.rawValue, inputs: run.inputs.rawValue, reused: reused,
            revision: run.source.revision, branch: run.source.branch,
            baseDigests: run.bases.baseDigests.mapValues(\.rawValue),
            bases: run.bases.bases.map { Base(reference: $0.reference, name: $0.name, digest: $0.digest.rawValue) },
            durations: timings.durations)
        try CanonicalJSON.encode(record).write(to: output.appendingPathComponent("build.json"))
    }

    /// `--push`: the image to `--tag`.
    func pushIfAsked(_ image: LayoutImage, access: RegistryAccess) throws {
        guard configuration.push, let tag = configuration.tag else { return }
        let client = try access.client(for: tag.registry)
        let transfer = ImageTransfer(log: log, progress: ProgressReporter(log: log, terminal: progress))
        let report = try transfer.push(image, with: client, to: tag.repository, tags: [tag.tag ?? .latest])
        log.info("pushed \(tag) (\(report.digest)): \(report.uploaded) blobs uploaded, \(report.present) already there")
    }
}

/// How long each phase of a run took, for build.json.
struct Timings {
    private var last: Date
    private let started: Date
    private(set) var durations: [String: Double] = [:]

    init(started: Date) {
        self.started = started
        self.last = started
    }

    mutating func mark(_ phase: String) {
        let now = Date()
        durations[phase] = now.timeIntervalSince(last).rounded(toPlaces: 3)
        durations["total"] = now.timeIntervalSince(started).rounded(toPlaces: 3)
        last = now
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
