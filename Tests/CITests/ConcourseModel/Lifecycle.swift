import Foundation
import TestSupport
import Testing

/// A team's world for a lifecycle scenario: a git repository with its `origin`, a registry
/// with htpasswd auth over TLS (trusted by the model's containers through their CA bundle,
/// as an operator's image would trust it), a lock repository, the model of Concourse with
/// the pipelines set as `ci/set-pipeline` sets them, and the invariants checked after
/// every build.
final class Lifecycle: @unchecked Sendable {
    let registry: TestRegistry
    let directory: TemporaryDirectory
    let repository: TestGitRepository
    let remote: TestGitRepository
    let model: ConcourseModel
    let invariants: RegistryInvariants

    /// Runs `body` in a fresh world whose repository has `files` as its first commit on `branch`.
    static func run(branch: String = "main", files: [String: String], _ body: (Lifecycle) async throws -> Void)
        async throws
    {
        try await withTestRegistry(.basic(tls: true)) { registry in
            try await withTemporaryDirectory(prefix: "slipway-lifecycle") { directory in
                let world = try Lifecycle(registry: registry, directory: directory, branch: branch, files: files)
                try await body(world)
                world.invariants.checkBuilds(world.model)
                #expect(
                    world.invariants.violations.isEmpty,
                    "\(world.invariants.violations.joined(separator: "\n"))\n\(world.model.log)")
            }
        }
    }

    private init(registry: TestRegistry, directory: TemporaryDirectory, branch: String, files: [String: String]) throws
    {
        self.registry = registry
        self.directory = directory
        repository = try TestGitRepository.create(
            at: directory.appending("work"), branch: branch, home: directory.appending(".home"))
        try Self.commit(repository, "first", files)
        remote = try repository.bareClone(at: directory.appending("origin.git"))
        let locks = try TestGitRepository.create(
            at: directory.appending("locks-work"), home: directory.appending(".home"))
        _ = try locks.commit("locks", allowEmpty: true)
        let lockRemote = try locks.bareClone(at: directory.appending("locks.git"))
        let vars: [String: Any] = [
            "registry": registry.host, "registry-username": registry.username ?? "",
            "registry-password": registry.password ?? "",
            "git-uri": remote.url.absoluteString, "git-private-key": NSNull(),  // a file:// remote needs no key
            "lock-repository": lockRemote.url.absoluteString, "slipway-image": "\(registry.host)/slipway/slipway",
        ]
        model = try ConcourseModel(
            root: directory.appending("concourse"), vars: vars, trustedCA: registry.caCertificatePEM)
        invariants = try RegistryInvariants(
            registry: registry, git: repository, scratch: directory.appending("invariants"))
        model.replayPuts = true
        model.afterBuild = { [invariants] pipeline, build in
            try invariants.observe(after: "\(pipeline.name)/\(build.job) build \(build.id)")
        }
    }

    var host: String { registry.host }

    /// `ci/set-pipeline <arguments>` from the work tree (on its current branch), then the
    /// invariants learn the pipelines' immutable tags.
    func setPipeline(_ arguments: String...) throws {
        try model.setPipelineWithScript(arguments, in: repository.path)
        invariants.learn(model)
    }

    /// A pipeline file of ci/pipelines by its name.
    static func pipeline(_ name: String) -> String { CIPaths.ci.appendingPathComponent("pipelines/\(name)").path }

    /// Commits on the current branch and pushes every branch and tag.
    @discardableResult
    func commit(_ message: String, _ files: [String: String]) throws -> String {
        let commit = try Self.commit(repository, message, files)
        try repository.push()
        return commit
    }

    /// A commit of `files` (busybox beside each Dockerfile FROM scratch), scripts executable.
    @discardableResult
    static func commit(_ repository: TestGitRepository, _ message: String, _ files: [String: String]) throws -> String {
        _ = try SeedFixture.commit(repository, message, files: files)
        let scripts = files.keys.filter { $0.hasSuffix(".sh") }.sorted()
        if !scripts.isEmpty {
            _ = try repository.git(["update-index", "--chmod=+x"] + scripts)
            _ = try repository.git("commit", "--amend", "--no-edit", "--quiet")
            _ = try repository.git("checkout", "--quiet", "--", ".")
        }
        return try repository.head()
    }

    /// Deletes `branch` on origin and in the work tree (after switching to `to`).
    func deleteBranch(_ branch: String, switchingTo: String) throws {
        try repository.checkout(switchingTo)
        _ = try repository.git("branch", "-D", branch)
        _ = try repository.git("push", "--quiet", "origin", "--delete", branch)
    }

    /// Plays Concourse until nothing triggers; returns the builds by pipeline/job.
    @discardableResult
    func settle() throws -> [String] {
        let builds = try model.runUntilQuiet()
        return builds.map { "\($0.pipeline)/\($0.job)" + ($0.status == .failed ? " FAILED: \($0.failure ?? "")" : "") }
    }

    func digest(_ repository: String, _ tag: String) throws -> String? {
        try SeedFixture.digest(registry, repository, tag)
    }

    func tags(_ repository: String) throws -> Set<String> { try SeedFixture.tags(registry, repository) }

    /// An image directory: `from` (a base with busybox, or `scratch` with busybox copied in)
    /// after the `ARG` lines `header`, and a RUN that copies `marker` to `/<name>-built`.
    static func image(_ directory: String, name: String, marker: String, header: String = "", from: String = "scratch")
        -> [String: String]
    {
        let busybox = from == "scratch" ? "COPY busybox /bin/busybox\n" : ""
        return [
            "\(directory)/Dockerfile":
                "\(header)FROM \(from)\n\(busybox)COPY marker /\(name)-marker\nRUN [\"/bin/busybox\", \"cp\", \"/\(name)-marker\", \"/\(name)-built\"]\n",
            "\(directory)/marker": "\(marker)\n",
        ]
    }
}
