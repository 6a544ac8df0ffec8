import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

@Suite("Moving images between layouts and registries")
struct TransferTests {
    let app = try! Repository("team/app")

    @Test func pushesALayoutAndSendsNothingTheSecondTime() async throws {
        try await withTestRegistry(.basic()) { registry in
            try withTemporaryDirectory { directory in
                let layout = try OCILayout.create(at: directory.appending("layout"))
                try ImageFixture.image(in: layout, name: "v1", layerCount: 3)
                let image = try layout.image(named: "v1")
                let client = try registry.client()
                let first = try ImageTransfer().push(
                    image, with: client, to: app, tags: [try OCI.Tag("v1"), try OCI.Tag("latest")])
                #expect(first.digest == image.descriptor.digest)
                #expect(first.uploaded == 4 && first.present == 0)
                let again = try ImageTransfer().push(image, with: client, to: app, tags: [try OCI.Tag("v1")])
                #expect(again.uploaded == 0 && again.present == 4)
                for tag in ["v1", "latest"] {
                    let raw = try runProcess(
                        "skopeo",
                        [
                            "inspect", "--raw", "--tls-verify=false", "--creds",
                            "\(registry.username!):\(registry.password!)",
                            "docker://\(registry.host)/team/app:\(tag)",
                        ]
                    ).checked()
                    #expect(Digest.sha256(raw.stdout) == image.descriptor.digest)
                }
            }
        }
    }

    @Test func multiArchPushThenPullEveryPlatformOrOne() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = try OCILayout.create(at: directory.appending("layout"))
                let amd64 = try ImageFixture.image(
                    in: layout, name: nil, platform: Platform(os: "linux", architecture: "amd64"), seed: "a",
                    addToIndex: false)
                let arm64 = try ImageFixture.image(
                    in: layout, name: nil, platform: Platform(os: "linux", architecture: "arm64", variant: "v8"),
                    seed: "b", addToIndex: false)
                let index = try layout.writeBlob(
                    try CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64])), mediaType: .ociIndex)
                try layout.addToIndex(index, name: "multi")
                let client = try registry.client()
                let pushed = try ImageTransfer().push(
                    try layout.image(named: "multi"), with: client, to: app, tags: [try OCI.Tag("multi")])
                #expect(pushed.digest == index.digest)
                _ = try runProcess(
                    "skopeo",
                    [
                        "copy", "--all", "--src-tls-verify=false", "docker://\(registry.host)/team/app:multi",
                        "oci:\(directory.appending("skopeo").path):multi",
                    ]
                ).checked()

                let whole = try OCILayout.create(at: directory.appending("whole"))
                let pulled = try ImageTransfer().pull(app, index.digest, with: client, into: whole, platforms: .all)
                #expect(Digest.sha256(try whole.indexBytes()) == index.digest, "index.json is the index itself")
                #expect(try pulled.platformManifest(for: Platform("linux/arm64")).descriptor.digest == arm64.digest)
                for blob in try whole.blobs(reachableFrom: index) { #expect(whole.hasBlob(blob)) }

                let one = try OCILayout.create(at: directory.appending("one"))
                let armOnly = try ImageTransfer().pull(
                    app, index.digest, with: client, into: one, platforms: .one(Platform("linux/arm64")))
                #expect(try armOnly.platformManifest(for: Platform("linux/arm64")).descriptor.digest == arm64.digest)
                #expect(!one.hasBlob(amd64), "other platforms are not fetched")
                let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(one.root.path)"]).checked()
                #expect(Digest.sha256(raw.stdout) == index.digest)
            }
        }
    }

    @Test func copyMountsWithinARegistryAndCopiesAcrossRegistriesWithAuth() async throws {
        try await withTestRegistry(.basic()) { source in
            try await withTestRegistry(.token()) { target in
                try withTemporaryDirectory { directory in
                    let layout = try OCILayout.create(at: directory.appending("layout"))
                    try ImageFixture.image(in: layout, name: "v1")
                    let image = try layout.image(named: "v1")
                    let from = try source.client()
                    try ImageTransfer().push(image, with: from, to: app, tags: [try OCI.Tag("dev")])

                    let promoted = try ImageTransfer().copy(
                        image.descriptor.digest, from: from, app, to: from, try Repository("prod/app"),
                        tags: [try OCI.Tag("prod")], scratch: directory.appending("s1"))
                    #expect(promoted.mounted == 3 && promoted.uploaded == 0)
                    #expect(
                        try from.manifestDescriptor(try Repository("prod/app"), .tag(try OCI.Tag("prod")))?.digest
                            == image.descriptor.digest)

                    let to = try target.client()
                    let copied = try ImageTransfer().copy(
                        image.descriptor.digest, from: from, app, to: to, app,
                        tags: [try OCI.Tag("stable")], scratch: directory.appending("s2"))
                    #expect(copied.uploaded == 3)
                    #expect(
                        try to.manifestDescriptor(app, .tag(try OCI.Tag("stable")))?.digest == image.descriptor.digest)
                    let again = try ImageTransfer().copy(
                        image.descriptor.digest, from: from, app, to: to, app,
                        tags: [try OCI.Tag("stable")], scratch: directory.appending("s3"))
                    #expect(again.present == 3 && again.uploaded == 0, "only missing blobs move")
                }
            }
        }
    }
}
