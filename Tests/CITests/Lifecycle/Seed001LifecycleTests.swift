import Foundation
import TestSupport
import Testing

/// Seed 001 over a branch's life, played from ci/pipelines/001-branch-tagged.yml through
/// the model of Concourse: master's pipeline; a feature branch with a `/` that changes only
/// the base, then only the tap; merge; deletion. The invariants are checked after every build.
@Suite("seed 001 lifecycle: branch-tagged base and tap", .serialized)
struct Seed001LifecycleTests {
    static let base = "simpleviewinc/keg-base"
    static let tap = "simpleviewinc/tap"

    static func baseFiles(_ marker: String) -> [String: String] {
        Lifecycle.image("containers/base", name: "base", marker: marker)
    }

    static func tapFiles(_ marker: String) -> [String: String] {
        Lifecycle.image(
            "containers/tap", name: "tap", marker: marker,
            header: "ARG KEG_BASE_IMAGE=ghcr.io/simpleviewinc/keg-base:master\n", from: "${KEG_BASE_IMAGE}")
    }

    @Test func aBranchThatChangesOnlyTheBaseRebuildsTheTapUnderItsOwnTags() async throws {
        try await Lifecycle.run(branch: "master", files: Self.baseFiles("b1").merging(Self.tapFiles("t1")) { $1 }) {
            world in
            try world.setPipeline("keg", Lifecycle.pipeline("001-branch-tagged.yml"))
            #expect(try world.settle().sorted() == ["keg-master/base", "keg-master/tap"], "\(world.model.log)")
            let m1 = String(try world.repository.head().prefix(12))
            let masterBase = try #require(try world.digest(Self.base, m1))
            let masterTap = try #require(try world.digest(Self.tap, m1))
            #expect(try world.digest(Self.base, "latest") == masterBase)
            #expect(try world.digest(Self.tap, "master") == masterTap)
            #expect(
                try world.invariants.labels(Self.tap, masterTap)["org.opencontainers.image.base.digest"] == masterBase,
                "the tap is FROM master's base")

            // A feature branch changes only the base: its pipeline rebuilds the base and the tap
            // FROM it, under the branch commit's tags; master's tags do not move.
            try world.repository.branch("feat/new-base", checkout: true)
            let f1 = String(try world.commit("new base", Self.baseFiles("b2")).prefix(12))
            try world.setPipeline("keg", Lifecycle.pipeline("001-branch-tagged.yml"))
            #expect(
                try world.settle().sorted() == ["keg-feat-new-base/base", "keg-feat-new-base/tap"], "\(world.model.log)"
            )
            let featureBase = try #require(try world.digest(Self.base, f1))
            let featureTap = try #require(
                try world.digest(Self.tap, f1), "the tap rebuilt on the branch's base has the branch commit's tag")
            #expect(featureBase != masterBase && featureTap != masterTap)
            #expect(try world.digest(Self.tap, "feat-new-base") == featureTap)
            #expect(
                try world.invariants.labels(Self.tap, featureTap)["org.opencontainers.image.base.digest"] == featureBase
            )
            #expect(
                try world.digest(Self.tap, m1) == masterTap && world.digest(Self.tap, "master") == masterTap,
                "master's tap is untouched")
            #expect(try world.digest(Self.base, "latest") == masterBase, "latest is master's only")

            // Then only the tap: the base job passes it through (nothing rebuilt), the tap builds.
            let f2 = String(try world.commit("tap change", Self.tapFiles("t2")).prefix(12))
            #expect(try world.settle().sorted() == ["keg-feat-new-base/base", "keg-feat-new-base/tap"])
            #expect(try world.digest(Self.base, f2) == nil, "a tap-only commit makes no base tag")
            let featureTap2 = try #require(try world.digest(Self.tap, f2))
            #expect(
                try world.invariants.labels(Self.tap, featureTap2)["org.opencontainers.image.base.digest"]
                    == featureBase)

            // The developer's own experiment on the branch, outside Concourse: build-task with
            // flags builds FROM the PR's tap and pushes a tag of their choosing; then they run it.
            let laptop = world.directory.appending("laptop")
            try FileManager.default.createDirectory(at: laptop, withIntermediateDirectories: true)
            try Lifecycle.commit(
                world.repository, "evf",
                [
                    "containers/evf/Dockerfile": "ARG KEG_BASE_IMAGE\nFROM ${KEG_BASE_IMAGE}\nCOPY marker /evf\n",
                    "containers/evf/marker": "evf-1\n",
                ])
            let experiment = "\(world.host)/simpleviewinc/evf:my-changes-tag"
            let built = try world.model.run(
                [
                    "build-task", "--context", world.repository.path.appendingPathComponent("containers/evf").path,
                    "--build-arg", "KEG_BASE_IMAGE=\(world.host)/\(Self.tap):feat-new-base", "--tag", experiment,
                    "--push",
                ],
                environment: [
                    "REGISTRY_USERNAME": world.registry.username ?? "",
                    "REGISTRY_PASSWORD": world.registry.password ?? "",
                ],
                directory: laptop)
            try #require(built.succeeded, "build-task: \(built.stderrString)")
            let evf = try #require(try world.digest("simpleviewinc/evf", "my-changes-tag"))
            let evfLabels = try world.invariants.labels("simpleviewinc/evf", evf)
            #expect(evfLabels["org.opencontainers.image.base.digest"] == featureTap2, "built on the PR's tap")
            #expect(evfLabels["dev.slipway.branch"] == "feat/new-base", "the checked-out branch")
            let run = try world.model.run(
                ["in", laptop.appendingPathComponent("evf").path],
                stdin: Data(
                    """
                    {"source": {"repository": "\(world.host)/simpleviewinc/evf", "tag": "my-changes-tag",
                     "username": "\(world.registry.username ?? "")", "password": "\(world.registry.password ?? "")"},
                     "version": {"tag": "my-changes-tag", "digest": "\(evf)"}, "params": {}}
                    """.utf8), environment: [:], directory: laptop)
            try #require(run.succeeded, "in: \(run.stderrString)")
            let inImage = try runProcess(
                "/usr/sbin/chroot",
                [laptop.appendingPathComponent("evf/rootfs").path, "/bin/busybox", "cat", "/evf", "/tap-built"])
            #expect(inImage.stdoutString == "evf-1\nt2\n", "\(inImage.stdoutString)\(inImage.stderrString)")
            _ = try world.repository.git("reset", "--quiet", "--hard", "HEAD~1")  // the experiment is never pushed

            // Merge, delete the branch and its pipeline: master reuses the branch's images.
            try world.repository.checkout("master")
            let merge = String(try world.repository.merge("feat/new-base", message: "merge").prefix(12))
            try world.repository.push()
            try world.deleteBranch("feat/new-base", switchingTo: "master")
            try world.model.setPipelineWithScript(
                ["--destroy", "--branch", "feat/new-base", "keg"], in: world.repository.path)
            #expect(try world.settle().sorted() == ["keg-master/base", "keg-master/tap"])
            #expect(try world.digest(Self.base, merge) == featureBase, "same inputs: reused, not rebuilt")
            #expect(try world.digest(Self.tap, merge) == featureTap2)
            #expect(
                try world.digest(Self.tap, "latest") == featureTap2 && world.digest(Self.tap, "master") == featureTap2)
            try world.invariants.checkPulls()
        }
    }
}
