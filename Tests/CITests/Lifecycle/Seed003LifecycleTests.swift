import Foundation
import TestSupport
import Testing

/// Seed 003 over a branch's life, played from ci/pipelines/003-inline-image.yml and
/// 003-reaper.yml through the model of Concourse: main's pipeline and a reaper set once; a
/// feature branch with a `/` changes the image, then only the code; it is merged and
/// deleted; the reaper runs. The invariants are checked after every build.
@Suite("seed 003 lifecycle: inline image per branch, merge, delete, reap", .serialized)
struct Seed003LifecycleTests {
    static let repo = "marcomm/banana-img1"

    static func image(_ marker: String) -> [String: String] {
        [
            "images/banana/Dockerfile":
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY marker /marker\nRUN cat /marker > /built\n",
            "images/banana/marker": "\(marker)\n",
        ]
    }

    @Test func aFeatureBranchFromFirstCommitToReap() async throws {
        var files = Self.image("v1")
        files["test.sh"] = "#!/bin/sh\ntest -s /built\n"
        files["README.md"] = "banana\n"
        try await Lifecycle.run(files: files) { world in
            try world.setPipeline("banana", Lifecycle.pipeline("003-inline-image.yml"))
            try world.setPipeline("--once", "banana-reaper", Lifecycle.pipeline("003-reaper.yml"))
            let first = try world.settle()
            #expect(first.sorted() == ["banana-main/build", "banana-main/test"], "\(first)\n\(world.model.log)")
            let main1 = try world.repository.head()
            let mainImage = try #require(try world.digest(Self.repo, String(main1.prefix(12))))
            #expect(try world.digest(Self.repo, "main-latest") == mainImage)

            // A code-only commit on main: build runs (reusing the image, no new tag), then test.
            let code = try world.commit("code", ["test.sh": "#!/bin/sh\ntest -s /built && test -x /bin/sh\n"])
            let second = try world.settle()
            #expect(second.sorted() == ["banana-main/build", "banana-main/test"], "\(second)")
            #expect(try world.digest(Self.repo, String(code.prefix(12))) == nil, "a code commit makes no image tag")

            // A feature branch with a `/`: its pipeline first reuses main's image, then the branch changes the image.
            try world.repository.branch("feat/foo", checkout: true)
            try world.repository.push()
            try world.setPipeline("banana", Lifecycle.pipeline("003-inline-image.yml"))
            #expect(world.model.pipelines["banana-feat-foo"] != nil)
            let fresh = try world.settle()
            #expect(fresh.sorted() == ["banana-feat-foo/build", "banana-feat-foo/test"], "\(fresh)")
            #expect(
                try world.digest(Self.repo, "feat-foo-latest") == mainImage, "an unchanged image is reused, not rebuilt"
            )

            // An image the branch replaces before merging: only the deleted branch ever needs it.
            try world.commit("banana v2, first try", Self.image("v2-draft"))
            _ = try world.settle()
            let draft = try #require(try world.digest(Self.repo, "feat-foo-latest"))
            let feature = try world.commit("banana v2", Self.image("v2"))
            let third = try world.settle()
            #expect(
                third.sorted() == ["banana-feat-foo/build", "banana-feat-foo/test"],
                "only the branch's pipeline builds: \(third)")
            let featureImage = try #require(try world.digest(Self.repo, String(feature.prefix(12))))
            #expect(featureImage != mainImage)
            #expect(try world.digest(Self.repo, "feat-foo-latest") == featureImage)
            #expect(try world.digest(Self.repo, "main-latest") == mainImage, "another branch's tags never move")

            // Merge into main, delete the branch, destroy its pipeline, let main build.
            try world.repository.checkout("main")
            let merge = try world.repository.merge("feat/foo", message: "merge feat/foo")
            try world.repository.push()
            try world.deleteBranch("feat/foo", switchingTo: "main")
            try world.model.setPipelineWithScript(
                ["--destroy", "--branch", "feat/foo", "banana"], in: world.repository.path)
            #expect(world.model.pipelines["banana-feat-foo"] == nil)
            let merged = try world.settle()
            #expect(merged.sorted() == ["banana-main/build", "banana-main/test"], "\(merged)")
            #expect(
                try world.digest(Self.repo, String(merge.prefix(12))) == featureImage,
                "the merge reuses the branch's image")
            #expect(try world.digest(Self.repo, "main-latest") == featureImage)

            // The reaper: the deleted branch's tags go, main's stay, every tag left pulls.
            let before = try world.tags(Self.repo)
            let snapshot = try world.invariants.snapshot()
            #expect(snapshot[Self.repo]?.values.contains(draft) == true)
            try world.model.tick("banana-reaper", "nightly")
            let reaped = try world.settle()
            #expect(reaped == ["banana-reaper/reap"], "\(reaped)")
            let after = try world.tags(Self.repo)
            #expect(!after.contains("feat-foo-latest"), "\(before) -> \(after)")
            #expect(
                after.isSuperset(of: ["main-latest", String(merge.prefix(12)), String(main1.prefix(12))]),
                "\(before) -> \(after)")
            #expect(
                try world.invariants.snapshot()[Self.repo]?.values.contains(draft) == false,
                "no tag reaches the draft image")
            try world.invariants.checkReaped(deletedBranches: ["feat/foo"], before: snapshot, model: world.model)
        }
    }
}
