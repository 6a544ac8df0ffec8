import Foundation
import TestSupport
import Testing

/// Seed 002 over a branch's life, played from ci/pipelines/002-monorepo-release.yml (one
/// pipeline per branch) and 002-release.yml (set once) through the model of Concourse: a
/// feature branch with a `/` changes the base only; merge; deletion; a release of a built
/// commit; a release tag pushed together with its commit. Invariants after every build.
@Suite("seed 002 lifecycle: monorepo images, base changes, releases", .serialized)
struct Seed002LifecycleTests {
    static let base = "fornax/base_image"
    static let tractor = "fornax/tractor"

    static func baseFiles(_ marker: String) -> [String: String] {
        Lifecycle.image("images/base_image", name: "base", marker: marker)
    }

    static func tractorFiles(_ marker: String) -> [String: String] {
        Lifecycle.image(
            "images/tractor", name: "tractor", marker: marker, header: "ARG REGISTRY\nARG BASE_TAG=main\n",
            from: "${REGISTRY}/fornax/base_image:${BASE_TAG}")
    }

    @Test func aBaseChangeOnABranchThenReleases() async throws {
        try await Lifecycle.run(files: Self.baseFiles("b1").merging(Self.tractorFiles("t1")) { $1 }) { world in
            try world.setPipeline("fornax", Lifecycle.pipeline("002-monorepo-release.yml"))
            try world.setPipeline("--once", "fornax-release", Lifecycle.pipeline("002-release.yml"))
            #expect(
                try world.settle().sorted() == ["fornax-main/base-image", "fornax-main/tractor"], "\(world.model.log)")
            let m1 = String(try world.repository.head().prefix(12))
            let mainBase = try #require(try world.digest(Self.base, m1))
            let mainTractor = try #require(try world.digest(Self.tractor, m1))
            #expect(
                try world.invariants.labels(Self.tractor, mainTractor)["org.opencontainers.image.base.digest"]
                    == mainBase)

            // A branch named with a `/` changes only base_image: the tractor is rebuilt on it, in
            // that branch, under the branch commit's tag; main's tags stay.
            try world.repository.branch("feat/x", checkout: true)
            let f1 = String(try world.commit("base only", Self.baseFiles("b2")).prefix(12))
            try world.setPipeline("fornax", Lifecycle.pipeline("002-monorepo-release.yml"))
            #expect(
                try world.settle().sorted() == ["fornax-feat-x/base-image", "fornax-feat-x/tractor"],
                "\(world.model.log)")
            let featureBase = try #require(try world.digest(Self.base, "feat-x"))
            let featureTractor = try #require(try world.digest(Self.tractor, f1))
            #expect(try world.digest(Self.tractor, "feat-x") == featureTractor)
            #expect(
                try world.invariants.labels(Self.tractor, featureTractor)["org.opencontainers.image.base.digest"]
                    == featureBase)
            #expect(
                try world.digest(Self.tractor, m1) == mainTractor && world.digest(Self.tractor, "main") == mainTractor)

            // Merge and delete: main reuses what the branch built.
            try world.repository.checkout("main")
            let merge = try world.repository.merge("feat/x", message: "merge feat/x")
            try world.repository.push()
            try world.deleteBranch("feat/x", switchingTo: "main")
            try world.model.setPipelineWithScript(
                ["--destroy", "--branch", "feat/x", "fornax"], in: world.repository.path)
            let merged = try world.settle()
            #expect(merged.contains("fornax-main/tractor") && merged.contains("fornax-main/base-image"), "\(merged)")
            #expect(try world.digest(Self.tractor, String(merge.prefix(12))) == featureTractor)

            // A release of a commit main built: its images get the version and `stable`.
            try world.repository.tag("v1.2.0", message: "release 1.2.0")
            try world.repository.push()
            let released = try world.settle()
            #expect(released.contains("fornax-release/release"), "\(released)")
            #expect(!released.contains { $0.hasPrefix("fornax-main/") }, "a release builds nothing: \(released)")
            for (repository, expected) in [(Self.base, featureBase), (Self.tractor, featureTractor)] {
                for tag in ["1.2.0", "1.2", "1", "stable"] {
                    #expect(try world.digest(repository, tag) == expected, "\(repository):\(tag)")
                }
            }

            // Main moves on, and the next release tag is pushed together with its commit, ahead
            // of main's build of it: the release lands on that commit's own images, not main's older ones.
            let r2 = try SeedFixture.commit(world.repository, "tractor t3", files: Self.tractorFiles("t3"))
            try world.repository.tag("v1.3.0", message: "release 1.3.0")
            try world.repository.push()
            _ = try world.settle()
            let r2Tractor = try #require(try world.digest(Self.tractor, String(r2.prefix(12))))
            #expect(try world.digest(Self.tractor, "1.3.0") == r2Tractor, "\(world.model.log)")
            #expect(try world.digest(Self.tractor, "stable") == r2Tractor)
            #expect(try world.digest(Self.tractor, "1.2.0") == featureTractor, "an old release's tags stay")
            #expect(try world.digest(Self.base, "1.3.0") == featureBase, "the base at that commit is the merged one")

            // A branch pipeline set after the releases runs no release.
            try world.repository.branch("fix/y", checkout: true)
            try world.repository.push()
            try world.setPipeline("fornax", Lifecycle.pipeline("002-monorepo-release.yml"))
            let fresh = try world.settle()
            #expect(!fresh.contains { $0.contains("release") }, "\(fresh)")
            #expect(
                try world.digest(Self.tractor, "1.3.0") == r2Tractor
                    && world.digest(Self.tractor, "stable") == r2Tractor)
            try world.invariants.checkPulls()
        }
    }
}
