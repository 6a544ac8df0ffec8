import Foundation
import TestSupport
import Testing

/// Seed 000 over its life, played from ci/pipelines/000-base-and-prebuilt.yml through the
/// model of Concourse: base changes rebuild the base; a release builds `<release>-base` and
/// sets the tag file to that release, so the prebuilt images rebuild FROM the new base; a
/// manual build chooses its tag per run (fly execute with ci/tasks/build-task.yml).
@Suite("seed 000 lifecycle: base, releases, prebuilt images", .serialized)
struct Seed000LifecycleTests {
    static let base = "bitovi/bitops"
    static let prebuilt = "bitovi/bitops-prebuilt"

    static func baseFiles(_ marker: String) -> [String: String] {
        Lifecycle.image("base", name: "base", marker: marker)
    }

    static let prebuiltFiles = [
        "prebuilt/Dockerfile":
            "ARG BITOPS_BASE\nARG BITOPS_TAG\nFROM ${BITOPS_BASE}:${BITOPS_TAG}-base\nCOPY plugin /plugin\nRUN [\"/bin/busybox\", \"cp\", \"/plugin\", \"/prebuilt\"]\n",
        "prebuilt/plugin": "terraform\n",
    ]

    static func tagFile(_ value: String) -> [String: String] {
        ["prebuilt-config/bitops-tag.yaml": "tags:\n  bitops-tag: \"\(value)\"\n"]
    }

    @Test func releasesMoveThePrebuiltImagesOntoTheirBase() async throws {
        let files = Self.baseFiles("b1").merging(Self.prebuiltFiles) { $1 }.merging(Self.tagFile("v2.1.0")) { $1 }
        try await Lifecycle.run(branch: "plugins", files: files) { world in
            try world.repository.tag("v2.1.0", message: "release 2.1.0")
            try world.repository.push()
            try world.model.setPipeline(
                "bitops", file: URL(fileURLWithPath: Lifecycle.pipeline("000-base-and-prebuilt.yml")), vars: [:])
            world.invariants.learn(world.model)
            let first = try world.settle()
            #expect(
                Set(first) == ["bitops/build-base", "bitops/release-base", "bitops/build-prebuilt"],
                "\(first)\n\(world.model.log)")
            let base210 = try #require(try world.digest(Self.base, "v2.1.0-base"))
            let head = String(try world.repository.revParse("origin/plugins").prefix(12))
            let prebuilt1 = try #require(try world.digest(Self.prebuilt, "v2.1.0-\(head)"))
            #expect(
                try world.invariants.labels(Self.prebuilt, prebuilt1)["org.opencontainers.image.base.digest"] == base210
            )

            // A base change on the default branch rebuilds the base only: no release, no bump.
            try world.repository.checkout("plugins")
            _ = try world.repository.git("pull", "--quiet", "--ff-only", "origin", "plugins")
            let b2 = String(try world.commit("base b2", Self.baseFiles("b2")).prefix(12))
            #expect(try world.settle() == ["bitops/build-base"])
            #expect(
                try world.digest(Self.base, b2) != nil
                    && world.digest(Self.base, "plugins") == world.digest(Self.base, b2))

            // A patch release: `<release>-base` is built, and the tag file is set to that release,
            // not bumped past it; the prebuilt images rebuild FROM it.
            try world.repository.tag("v2.1.1", message: "release 2.1.1")
            try world.repository.push()
            let released = try world.settle()
            #expect(
                released.contains("bitops/release-base") && released.contains("bitops/build-prebuilt"), "\(released)")
            let base211 = try #require(try world.digest(Self.base, "v2.1.1-base"))
            _ = try world.repository.git("pull", "--quiet", "--ff-only", "origin", "plugins")
            let tagFile = try String(
                contentsOf: world.repository.path.appendingPathComponent("prebuilt-config/bitops-tag.yaml"),
                encoding: .utf8)
            #expect(tagFile.contains("\"v2.1.1\""), "the tag file names the release just built: \(tagFile)")
            let bump = String(try world.repository.head().prefix(12))
            let prebuilt2 = try #require(try world.digest(Self.prebuilt, "v2.1.1-\(bump)"))
            #expect(
                try world.invariants.labels(Self.prebuilt, prebuilt2)["org.opencontainers.image.base.digest"] == base211
            )
            #expect(try world.digest(Self.base, "v2.1.0-base") == base210, "a release's base never moves")

            // A manual build with a tag chosen for this run only.
            let checkout = world.repository.path
            try world.model.execute(
                CIPaths.ci.appendingPathComponent("tasks/build-task.yml"), inputs: ["source": checkout],
                environment: [
                    "CONTEXT": "source/base", "TAG": "\(world.host)/\(Self.base):my-experiment", "PUSH": "true",
                ])
            #expect(try world.digest(Self.base, "my-experiment") != nil, "\(world.model.log)")
            try world.invariants.checkPulls()
        }
    }
}
