import BuildContext
import BuildLock
import Console
import Foundation
import GitSource
import ImageLayout
import OCI
import Registry
import Transfer

/// One `build-task` run: an image built from the context with buildah, written to
/// `image/` (`oci/`, `image.tar`, `digest`, `build.json`) and, with `--push`, pushed.
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
    }

    let configuration: BuildConfiguration
    let log: Log
    let runner: any CommandRunner
    let environment: [String: String]

    public init(_ configuration: BuildConfiguration, log: Log, environment: [String: String] = ProcessInfo.processInfo.environment,
                runner: any CommandRunner = SpawnCommandRunner()) {
        self.configuration = configuration
        self.log = log
        self.runner = runner
        self.environment = environment
    }

    public struct Unsupported: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public func run() throws -> Result {
        if !configuration.imageArgs.isEmpty {
            throw Unsupported(description: "IMAGE_ARG_* is not available in this build of Slipway yet")
        }
        if configuration.skipIfPublished != nil {
            throw Unsupported(description: "SKIP_IF_PUBLISHED is not available in this build of Slipway yet")
        }
        let source = try sourceFacts()
        let inputs = BuildInputs(contextDirectory: configuration.context, dockerfile: configuration.dockerfile,
                                 buildArgs: configuration.buildArgs, target: configuration.target,
                                 platforms: configuration.platforms.map(\.description))
        let inputsDigest = try inputs.digest()
        log.info("inputs \(inputsDigest)" + (source.revision.map { " at \($0.prefix(12))" } ?? "") + (source.branch.map { " on \($0)" } ?? ""))

        if let lock = configuration.lock {
            let key = (configuration.tag.map { "\($0.registry)/\($0.repository)" } ?? "local") + "@" + inputsDigest.rawValue
            let spec = try LockSpec(parsing: lock, key: key, timeout: configuration.lockTimeout, ttl: configuration.lockTTL)
            return try withBuildLock(spec, log: log, runner: runner) { try build(source: source, inputs: inputsDigest) }
        }
        return try build(source: source, inputs: inputsDigest)
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
            guard let result = try? runner.run(Command("git", ["-C", configuration.context.path] + arguments)), result.succeeded else { return nil }
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
        let branchFile = (try? String(contentsOfFile: root + "/.git/branch", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let checkedOut = git(["rev-parse", "--abbrev-ref", "HEAD"]).flatMap { $0 == "HEAD" ? nil : $0 }
        facts.branch = configuration.branch ?? branchFile.flatMap { $0.isEmpty ? nil : $0 } ?? checkedOut
        if let origin = git(["config", "--get", "remote.origin.url"]) {
            if var components = URLComponents(string: origin), components.scheme != nil {
                components.user = nil
                components.password = nil
                facts.origin = components.string
            } else {
                facts.origin = origin  // scp-like ssh (git@host:path): no password in it
            }
        }
        return facts
    }

    func build(source: SourceFacts, inputs: Digest) throws -> Result {
        let buildah = Buildah(storage: configuration.cache, log: log, runner: runner)
        try buildah.check()
        var labels: [String: String] = ["dev.slipway.inputs": inputs.rawValue]
        if let revision = source.revision { labels["org.opencontainers.image.revision"] = revision }
        if let origin = source.origin { labels["org.opencontainers.image.source"] = origin }
        if let branch = source.branch { labels["dev.slipway.branch"] = branch }
        if let time = source.time {
            labels["org.opencontainers.image.created"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(time)))
        }
        labels.merge(configuration.labels) { $1 }
        let name = "localhost/slipway-build:\(UUID().uuidString.prefix(12).lowercased())"
        defer { buildah.remove(name) }
        let started = Date()
        _ = try buildah.build(context: configuration.context, dockerfile: configuration.dockerfile, name: name,
                              target: configuration.target, buildArgs: configuration.buildArgs, labels: labels,
                              timestamp: source.time, platforms: configuration.platforms.map(\.description))
        let built = Date()

        let output = configuration.output
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        for stale in ["oci", "image.tar", "digest", "build.json"] { try? FileManager.default.removeItem(at: output.appendingPathComponent(stale)) }
        if configuration.platforms.count > 1 {
            // An index in oci/; a docker-archive cannot hold several platforms, so no image.tar.
            try buildah.pushList(name, to: "oci:\(output.appendingPathComponent("oci").path):latest")
        } else {
            try buildah.push(name, to: "oci:\(output.appendingPathComponent("oci").path):latest")
            let repoTag = configuration.tag.map { "\($0.registry)/\($0.repository):\($0.tag?.rawValue ?? "latest")" } ?? "slipway/build:latest"
            try buildah.push(name, to: "docker-archive:\(output.appendingPathComponent("image.tar").path):\(repoTag)")
        }
        let image = try OCILayout(opening: output.appendingPathComponent("oci")).image(named: "latest")
        try Data(image.descriptor.digest.rawValue.utf8).write(to: output.appendingPathComponent("digest"))
        let exported = Date()

        struct Record: Encodable {
            var digest: String
            var inputs: String
            var revision: String?
            var branch: String?
            var baseDigests: [String: String]
            var durations: [String: Double]
        }
        let record = Record(digest: image.descriptor.digest.rawValue, inputs: inputs.rawValue, revision: source.revision, branch: source.branch,
                            baseDigests: [:], durations: ["build": built.timeIntervalSince(started).rounded(toPlaces: 3),
                                                          "export": exported.timeIntervalSince(built).rounded(toPlaces: 3)])
        try CanonicalJSON.encode(record).write(to: output.appendingPathComponent("build.json"))

        if configuration.push, let tag = configuration.tag {
            var credentials: Credentials?
            if let username = configuration.registryUsername, let password = configuration.registryPassword {
                credentials = .basic(username: username, password: password)
            }
            let certificates = try configuration.registryCACerts.map { [try String(contentsOf: $0, encoding: .utf8)] } ?? []
            let client = try RegistryClient(host: tag.registry, credentials: credentials,
                                            credentialLookup: DockerConfigCredentials(environment: environment),
                                            insecure: configuration.registryInsecure, caCertificates: certificates, log: log)
            let report = try ImageTransfer(log: log).push(image, with: client, to: tag.repository, tags: [tag.tag ?? .latest])
            log.info("pushed \(tag) (\(report.digest)): \(report.uploaded) blobs uploaded, \(report.present) already there")
        }
        return Result(digest: image.descriptor.digest, inputs: inputs, revision: source.revision, branch: source.branch)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
