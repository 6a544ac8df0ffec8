import Archive
import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing

@Suite("OCI image layouts and archives")
struct ImageLayoutTests {
    @Test func layoutRoundTripReadBySkopeo() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let written = try ImageFixture.image(in: layout, name: "v1")
            let image = try OCILayout(opening: layout.root).image(named: "v1")
            #expect(image.descriptor.digest == written.digest)
            #expect(try image.configuration().config?.labels?["seed"] == "x")

            let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(layout.root.path):v1"]).checked()
            #expect(Digest.sha256(raw.stdout) == written.digest)
            // skopeo copies it to a fresh layout with the same manifest digest.
            let copy = directory.appending("copy")
            _ = try runProcess("skopeo", ["copy", "oci:\(layout.root.path):v1", "oci:\(copy.path):v1"]).checked()
            #expect(try OCILayout(opening: copy).image(named: "v1").descriptor.digest == written.digest)
        }
    }

    @Test func ociArchiveWrittenBySkopeoIsRead() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let written = try ImageFixture.image(in: layout, name: "v1")
            let theirs = directory.appending("theirs.tar")
            _ = try runProcess("skopeo", ["copy", "oci:\(layout.root.path):v1", "oci-archive:\(theirs.path):v1"])
                .checked()
            let image = try ImageInput.open(theirs, scratch: directory.appending("extracted"), name: "v1")
            #expect(image.descriptor.digest == written.digest)
        }
    }

    @Test func dockerArchiveWrittenByUsIsReadBySkopeo() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            try ImageFixture.image(in: layout, name: "v1", layerCount: 3)
            let image = try layout.image(named: "v1")
            let archive = directory.appending("image.tar")
            try DockerArchive.write(image, repoTags: ["team/app:v1"], to: archive)

            let inspected = try runProcess("skopeo", ["inspect", "docker-archive:\(archive.path)"]).checked()
            let json = try #require(try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])
            let diffIDs = try image.configuration().rootfs.diffIDs.map(\.rawValue)
            #expect(json["Layers"] as? [String] == diffIDs)
            #expect((json["Labels"] as? [String: String])?["seed"] == "x")
            let copy = directory.appending("copy")
            _ = try runProcess("skopeo", ["copy", "docker-archive:\(archive.path)", "oci:\(copy.path):v1"]).checked()
            let listing = try runProcess("tar", ["-tf", archive.path]).checked().stdoutString
            #expect(listing.contains("manifest.json") && listing.contains("repositories"))
        }
    }

    @Test func dockerArchiveWrittenBySkopeoIsImported() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            try ImageFixture.image(in: layout, name: "v1")
            let ours = try layout.image(named: "v1")
            let archive = directory.appending("theirs.tar")
            _ = try runProcess(
                "skopeo", ["copy", "oci:\(layout.root.path):v1", "docker-archive:\(archive.path):team/app:v1"]
            ).checked()

            let image = try ImageInput.open(archive, scratch: directory.appending("scratch"))
            #expect(image.manifest.mediaType == .ociManifest)
            #expect(try image.configuration().rootfs.diffIDs == ours.configuration().rootfs.diffIDs)
            #expect(try image.configuration().config?.labels == ours.configuration().config?.labels)
            // What we imported is a valid image to skopeo too.
            let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(image.layout.root.path):v1"]).checked()
            #expect(Digest.sha256(raw.stdout) == image.descriptor.digest)
        }
    }

    @Test func imageInputOpensEveryForm() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            try ImageFixture.image(in: layout, name: "v1")
            let digest = try layout.image().descriptor.digest
            let ociArchive = directory.appending("oci.tar")
            _ = try runProcess("skopeo", ["copy", "oci:\(layout.root.path):v1", "oci-archive:\(ociArchive.path):v1"])
                .checked()
            let dockerArchive = directory.appending("docker.tar")
            try DockerArchive.write(try layout.image(), repoTags: ["team/app:v1"], to: dockerArchive)

            #expect(try ImageInput.open(layout.root, scratch: directory.appending("s1")).descriptor.digest == digest)
            #expect(try ImageInput.open(ociArchive, scratch: directory.appending("s2")).descriptor.digest == digest)
            let fromDocker = try ImageInput.open(dockerArchive, scratch: directory.appending("s3"))
            #expect(try fromDocker.configuration().rootfs.diffIDs == layout.image().configuration().rootfs.diffIDs)

            let error = try #require(throws: LayoutError.self) {
                try ImageInput.open(directory.appending("nothing-here"), scratch: directory.appending("s4"))
            }
            #expect(error.description.contains("does not exist"))
        }
    }

    @Test func multiArchIndexAndBuildKitNesting() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let amd64 = try ImageFixture.image(
                in: layout, name: nil, platform: Platform(os: "linux", architecture: "amd64"), seed: "a",
                addToIndex: false)
            let arm64 = try ImageFixture.image(
                in: layout, name: nil, platform: Platform(os: "linux", architecture: "arm64", variant: "v8"), seed: "b",
                addToIndex: false)
            let inner = try layout.writeBlob(
                try CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64])), mediaType: .ociIndex)
            // BuildKit: index.json → an index whose only child is the real index.
            let outer = try layout.writeBlob(
                try CanonicalJSON.encode(ImageIndex(manifests: [inner])), mediaType: .ociIndex)
            try layout.addToIndex(outer, name: "multi")

            let image = try layout.image(named: "multi")
            #expect(image.descriptor.digest == inner.digest, "the nesting is unwrapped")
            #expect(try image.platformManifest(for: Platform("linux/arm64")).descriptor.digest == arm64.digest)
            #expect(try image.platformManifest(for: Platform("linux/amd64")).descriptor.digest == amd64.digest)
            let missing = try #require(throws: LayoutError.self) {
                try image.platformManifest(for: Platform("linux/s390x"))
            }
            #expect(missing.description.contains("linux/amd64") && missing.description.contains("linux/arm64"))
            #expect(try layout.blobs(reachableFrom: image.descriptor).count == 1 + 2 * (1 + 1 + 2))

            // skopeo reads the multi-arch layout with the same index digest.
            let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(layout.root.path):multi"]).checked()
            #expect([inner.digest, outer.digest].contains(Digest.sha256(raw.stdout)))
        }
    }

    /// buildah 1.28's collapsed index (one entry labelled arm64 whose config says amd64, for
    /// linux/arm64,linux/amd64) gets an image per platform; a right index is left as it is;
    /// a platform missing from an index that is not collapsed is one line.
    @Test func eachPlatformGetsItsOwnImageWhenBuildahCollapsedThem() throws {
        try withTemporaryDirectory { directory in
            let arm64 = Platform(os: "linux", architecture: "arm64")
            let amd64 = Platform(os: "linux", architecture: "amd64")
            let layout = try OCILayout.create(at: directory.appending("layout"))
            var collapsed = try ImageFixture.image(in: layout, name: nil, platform: amd64, addToIndex: false)
            collapsed.platform = arm64
            try layout.addToIndex(
                try layout.writeBlob(
                    try CanonicalJSON.encode(ImageIndex(manifests: [collapsed])), mediaType: .ociIndex), name: "latest")

            let repaired = try layout.givingEachPlatformItsImage(named: "latest", platforms: [arm64, amd64])
            guard case .index(let index) = repaired.manifest else {
                Issue.record("not an index")
                return
            }
            #expect(index.manifests.map(\.platform) == [arm64, amd64])
            #expect(
                index.manifests[1].digest == collapsed.digest, "the image whose config says amd64 is only relabelled")
            for platform in [arm64, amd64] {
                let configuration = try repaired.configuration(for: platform)
                #expect(Platform(os: configuration.os, architecture: configuration.architecture) == platform)
                #expect(
                    try repaired.platformManifest(for: platform).manifest.layers
                        == (try repaired.platformManifest(for: amd64).manifest.layers))
            }
            let again = try layout.givingEachPlatformItsImage(named: "latest", platforms: [arm64, amd64])
            #expect(again.descriptor.digest == repaired.descriptor.digest, "a right index is left as it is")
            #expect(try Set(layout.index().manifests.map(\.digest)) == [repaired.descriptor.digest])

            let missing = try #require(throws: LayoutError.self) {
                try layout.givingEachPlatformItsImage(
                    named: "latest", platforms: [arm64, Platform(os: "linux", architecture: "s390x")])
            }
            #expect(
                missing.description.contains("has no image for linux/s390x (it has: linux/arm64, linux/amd64)"),
                "\(missing)")
        }
    }

    @Test func rewritingAnnotationsReplacesEachManifestTheIndexAndTheNamedEntry() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let amd64 = try ImageFixture.image(
                in: layout, name: nil, platform: Platform(os: "linux", architecture: "amd64"), seed: "a",
                addToIndex: false)
            var arm64 = try ImageFixture.image(
                in: layout, name: nil, platform: Platform(os: "linux", architecture: "arm64"), seed: "b",
                addToIndex: false)
            arm64.annotations = ["com.example.entry": "kept"]
            // An index field this module does not model survives the rewrite.
            var index = try #require(
                try JSONSerialization.jsonObject(with: CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64])))
                    as? [String: Any])
            index["com.example.unmodelled"] = "kept"
            let top = try layout.writeBlob(
                try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]), mediaType: .ociIndex)
            try layout.addToIndex(top, name: "latest")

            let image = try layout.rewriteAnnotations(ofImageNamed: "latest") {
                $0.merging(["com.example.base": "x"]) { $1 }
            }
            #expect(image.descriptor.digest != top.digest)
            #expect(
                try layout.image(named: "latest").descriptor.digest == image.descriptor.digest,
                "index.json names the new index")
            let object = try #require(try JSONSerialization.jsonObject(with: image.bytes) as? [String: Any])
            #expect(object["com.example.unmodelled"] as? String == "kept")
            guard case .index(let rewritten) = image.manifest else {
                Issue.record("not an index")
                return
            }
            #expect(rewritten.manifests.map(\.platform?.architecture) == ["amd64", "arm64"])
            #expect(rewritten.manifests[1].annotations == ["com.example.entry": "kept"])
            for child in rewritten.manifests {
                #expect(
                    try Manifest.decode(layout.blob(child), mediaType: child.mediaType).annotations == [
                        "com.example.base": "x"
                    ])
            }
            for old in [top, amd64, arm64] {
                #expect(
                    !FileManager.default.fileExists(atPath: layout.blobPath(old.digest).path), "superseded blobs go")
            }
            let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(layout.root.path):latest"]).checked()
            #expect(Digest.sha256(raw.stdout) == image.descriptor.digest)

            let unchanged = try layout.rewriteAnnotations(ofImageNamed: "latest") { $0 }
            #expect(unchanged.descriptor.digest == image.descriptor.digest, "no change, no new blobs")
        }
    }

    @Test func tamperedBlobsAreCaught() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let manifest = try ImageFixture.image(in: layout, name: "v1")
            let image = try layout.image(named: "v1")
            let layer = try image.platformManifest().manifest.layers[0]
            let path = layout.blobPath(layer.digest)
            var bytes = try Data(contentsOf: path)
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: path)
            #expect(throws: (any Error).self) { _ = try copy(from: layout.openBlob(layer), to: DataSink()) }
            let manifestPath = layout.blobPath(manifest.digest)
            try Data("{}".utf8).write(to: manifestPath)
            let error = try #require(throws: LayoutError.self) { try layout.image(named: "v1") }
            #expect(error.description.contains(manifest.digest.rawValue))
        }
    }

    @Test(arguments: [
        ("../outside", "regular"), ("/etc/abs", "regular"), ("a/../../up", "regular"),
        ("link", "symlink:../../etc/passwd"), ("link", "symlink:/etc/passwd"), ("hard", "hardlink:../x"),
    ])
    func hostileArchiveEntriesAreRefused(name: String, kind: String) throws {
        try withTemporaryDirectory { directory in
            let archive = directory.appending("hostile.tar")
            let writer = TarWriter(try FileSink(path: archive.path))
            try writer.append(TarHeader(name: "oci-layout", kind: .regular, size: 2), body: DataSource(Data("{}".utf8)))
            if kind == "regular" {
                try writer.append(TarHeader(name: name, kind: .regular, size: 1), body: DataSource(Data("x".utf8)))
            } else {
                let parts = kind.split(separator: ":", maxSplits: 1).map(String.init)
                try writer.append(
                    TarHeader(name: name, kind: parts[0] == "symlink" ? .symbolicLink : .hardLink, linkName: parts[1]),
                    body: nil)
            }
            try writer.finish()
            let error = try #require(throws: LayoutError.self) {
                _ = try ImageInput.open(archive, scratch: directory.appending("out"))
            }
            #expect(error.description.contains("leaves the archive"), "\(error)")
            #expect(
                !FileManager.default.fileExists(
                    atPath: directory.url.deletingLastPathComponent().appendingPathComponent("outside").path))
        }
    }
}
