import Foundation
import OCI
import Testing

@testable import Builder

/// The base's name and digest as labels and manifest annotations (pure decisions; the build
/// itself is tested with buildah in `ImageBuildTests`).
struct BaseKeysTests {
    let digest = Digest.sha256(Data("base".utf8))

    @Test func anImageArgIsNamedByTheReferenceItsGetWrote() {
        #expect(
            ImageArgument.reference(repository: "registry.example/team/base", tag: "1", digest: digest)
                == "registry.example/team/base:1")
        #expect(
            ImageArgument.reference(repository: "registry.example/team/base", tag: nil, digest: digest)
                == "registry.example/team/base@\(digest)")
        #expect(
            ImageArgument.reference(repository: "registry.example/team/base", tag: "", digest: digest)
                == "registry.example/team/base@\(digest)")
        #expect(
            ImageArgument.reference(repository: nil, tag: "1", digest: digest) == nil,
            "no repository: no name, not the ARG's")
    }

    @Test func labelsAndAnnotationsNameTheSameBase() {
        let named = BaseImage(reference: "image-arg:base", name: "registry.example/team/base:1", digest: digest)
        let unnamed = BaseImage(reference: "image-arg:base", name: nil, digest: digest)
        #expect(
            BaseImage.keys(named) == [
                "org.opencontainers.image.base.name": "registry.example/team/base:1",
                "org.opencontainers.image.base.digest": digest.rawValue,
            ])
        #expect(BaseImage.keys(unnamed) == ["org.opencontainers.image.base.digest": digest.rawValue])
        #expect(BaseImage.keys(nil).isEmpty)

        let buildahs = [
            "org.opencontainers.image.base.name": "localhost/tmp/slipway-1a2b3c4d/base-5e6f7a8b:latest",
            "org.opencontainers.image.base.digest": Digest.sha256(Data("local".utf8)).rawValue,
            "com.example.kept": "yes",
        ]
        let labels = ["org.opencontainers.image.revision": "abc"]
        #expect(
            BaseImage.annotations(buildahs, labels: labels.merging(BaseImage.keys(named)) { $1 })
                == BaseImage.keys(named).merging(["com.example.kept": "yes"]) { $1 })
        #expect(
            BaseImage.annotations(buildahs, labels: labels.merging(BaseImage.keys(unnamed)) { $1 })
                == BaseImage.keys(unnamed).merging(["com.example.kept": "yes"]) { $1 })
        #expect(
            BaseImage.annotations(buildahs, labels: labels) == ["com.example.kept": "yes"],
            "scratch: no base keys at all")
        let overridden = ["org.opencontainers.image.base.name": "registry.example/team/other:2"]
        #expect(
            BaseImage.annotations(buildahs, labels: BaseImage.keys(named).merging(overridden) { $1 })[
                "org.opencontainers.image.base.name"] == "registry.example/team/other:2",
            "a LABEL_ override is what the annotation says too")
    }
}
