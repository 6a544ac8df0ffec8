import Foundation
import HTTP
import OCI
import Registry
import TestSupport
import Testing

/// The registry client against Debian's real distribution registry, one registry per test.
@Suite("Registry client against a real registry")
struct RegistryClientTests {
    let app = try! Repository("team/app")

    @Test func pushesAMultiLayerImageAndReadsItBack() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory)
                let digest = try image.push(with: client, to: app, tag: "v1")
                #expect(digest == image.manifestDigest)

                let fetched = try client.manifest(app, .tag(try OCI.Tag("v1")))
                #expect(fetched.digest == image.manifestDigest)
                #expect(fetched.bytes == image.manifestBytes)
                #expect(fetched.mediaType == .ociManifest)
                let manifest = try #require(try fetched.decode().image)
                #expect(manifest.layers == image.layers.map(\.descriptor))

                let head = try #require(try client.manifestDescriptor(app, .tag(try OCI.Tag("v1"))))
                #expect(head.digest == image.manifestDigest)
                #expect(head.size == Int64(image.manifestBytes.count))
                #expect(try client.manifestDescriptor(app, .tag(try OCI.Tag("absent"))) == nil)

                for blob in image.layers + [image.config] {
                    let copy = directory.appending("pulled-\(blob.descriptor.digest.encoded)")
                    try client.downloadBlob(app, blob.descriptor, to: copy)
                    #expect(try Data(contentsOf: copy) == Data(contentsOf: blob.file))
                }
                // Pushing again sends nothing: every blob is already there.
                for blob in image.layers {
                    #expect(try client.uploadBlob(app, blob.descriptor, from: blob.file) == .present)
                }
            }
        }
    }

    @Test func headWithoutDigestHeaderFallsBackToGet() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(method: "HEAD", path: "/manifests/", action: .dropHeaders(["Docker-Content-Digest"]))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let image = try TestImage.make(in: directory, layerSizes: [100])
                    try image.push(with: try registry.client(), to: app, tag: "v1")
                    let client = try RegistryClient(
                        host: RegistryHost(proxy.host), credentialLookup: nil, insecure: true)
                    let descriptor = try #require(try client.manifestDescriptor(app, .tag(try OCI.Tag("v1"))))
                    #expect(descriptor.digest == image.manifestDigest)
                    let requests = try proxy.requests().filter { $0.path.contains("/manifests/") }.map(\.method)
                    #expect(requests == ["HEAD", "GET"])
                }
            }
        }
    }

    @Test func chunkedUploadAndBlobsFromMemory() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory, layerSizes: [300_000])
                let layer = image.layers[0]
                #expect(
                    try client.uploadBlob(app, layer.descriptor, from: layer.file, chunkSize: 64 * 1024) == .uploaded)
                #expect(try client.blobExists(app, layer.descriptor.digest))
                let copy = directory.appending("pulled")
                try client.downloadBlob(app, layer.descriptor, to: copy)
                #expect(try Data(contentsOf: copy) == Data(contentsOf: layer.file))

                let small = try client.uploadBlob(app, data: Data("{}".utf8), mediaType: .ociEmpty)
                #expect(small.digest == Digest.sha256(Data("{}".utf8)))
                #expect(try client.blobExists(app, small.digest))
            }
        }
    }

    @Test func skopeoReadsWhatWePushedWithTheSameDigest() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let image = try TestImage.make(in: directory)
                try image.push(with: try registry.client(), to: app, tag: "ours")
                let reference = "docker://\(registry.host)/team/app:ours"
                let raw = try runProcess("skopeo", ["inspect", "--raw", "--tls-verify=false", reference]).checked()
                #expect(Digest.sha256(raw.stdout) == image.manifestDigest)
                let inspected = try runProcess("skopeo", ["inspect", "--tls-verify=false", reference]).checked()
                let json = try #require(try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])
                #expect(json["Digest"] as? String == image.manifestDigest.rawValue)
                #expect((json["Layers"] as? [String]) == image.layers.map(\.descriptor.digest.rawValue))

                let layout = directory.appending("copied")
                _ = try runProcess(
                    "skopeo", ["copy", "--src-tls-verify=false", reference, "oci:\(layout.path):copied"]
                ).checked()
                let index = try JSONDecoder().decode(
                    ImageIndex.self, from: Data(contentsOf: layout.appendingPathComponent("index.json")))
                #expect(index.manifests.first?.digest == image.manifestDigest)
            }
        }
    }

    @Test func weReadWhatSkopeoPushed() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let image = try TestImage.make(in: directory)
                let layout = directory.appending("layout")
                try image.writeLayout(at: layout, tag: "theirs")
                _ = try runProcess(
                    "skopeo",
                    [
                        "copy", "--dest-tls-verify=false", "oci:\(layout.path):theirs",
                        "docker://\(registry.host)/team/skopeo:theirs",
                    ]
                ).checked()
                let raw = try runProcess(
                    "skopeo",
                    [
                        "inspect", "--raw", "--tls-verify=false",
                        "docker://\(registry.host)/team/skopeo:theirs",
                    ]
                ).checked()
                let client = try registry.client()
                let repository = try Repository("team/skopeo")
                let fetched = try client.manifest(repository, .tag(try OCI.Tag("theirs")))
                #expect(fetched.digest == Digest.sha256(raw.stdout))
                let manifest = try #require(try fetched.decode().image)
                for layer in manifest.layers + [manifest.config] {
                    let copy = directory.appending("pulled-\(layer.digest.encoded)")
                    try client.downloadBlob(repository, layer, to: copy)
                    #expect(Digest.sha256(try Data(contentsOf: copy)) == layer.digest)
                }
                // By digest too, verified against it.
                #expect(try client.manifest(repository, .digest(fetched.digest)).bytes == fetched.bytes)
            }
        }
    }

    @Test func readsDockerSchema2ManifestsThatSkopeoPushed() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let image = try TestImage.make(in: directory, layerSizes: [2000])
                let layout = directory.appending("layout")
                try image.writeLayout(at: layout, tag: "v1")
                _ = try runProcess(
                    "skopeo",
                    [
                        "copy", "--format", "v2s2", "--dest-tls-verify=false", "oci:\(layout.path):v1",
                        "docker://\(registry.host)/team/docker:v1",
                    ]
                ).checked()
                let client = try registry.client()
                let repository = try Repository("team/docker")
                let fetched = try client.manifest(repository, .tag(try OCI.Tag("v1")))
                #expect(fetched.mediaType == .dockerManifest)
                let manifest = try #require(try fetched.decode().image)
                #expect(manifest.config.mediaType == .dockerConfig)
                let head = try #require(try client.manifestDescriptor(repository, .tag(try OCI.Tag("v1"))))
                #expect(head.digest == fetched.digest && head.mediaType == .dockerManifest)
                for layer in manifest.layers + [manifest.config] {
                    try client.downloadBlob(repository, layer, to: directory.appending("blob-\(layer.digest.encoded)"))
                }
            }
        }
    }

    @Test func tagListFollowsPagination() async throws {
        try await withTestRegistry(.open) { registry in
            // distribution 2.8.2 ignores `n` on tag lists; the proxy pages its full list as
            // registries that paginate do (Link: <…>; rel="next").
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(method: "GET", path: "/tags/list$", action: .paginate(pageSize: 2))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let image = try TestImage.make(in: directory, layerSizes: [100])
                    let direct = try registry.client()
                    let names = ["a1", "b2", "c3", "d4", "e5"]
                    for name in names { try image.push(with: direct, to: app, tag: name) }

                    let client = try RegistryClient(
                        host: RegistryHost(proxy.host), credentialLookup: nil, insecure: true)
                    let tags = try client.tags(app, pageSize: 2)
                    #expect(tags.map(\.rawValue).sorted() == names)
                    let pages = try proxy.requests().filter { $0.path.hasSuffix("/tags/list") }
                    #expect(pages.map(\.query) == ["n=2", "n=2&last=b2", "n=2&last=d4"])
                    #expect(try client.tags(try Repository("never/pushed")).isEmpty)
                }
            }
        }
    }

    @Test func mountsABlobFromAnotherRepository() async throws {
        try await withTestRegistry(.basic()) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory, layerSizes: [50_000])
                let layer = image.layers[0]
                #expect(try client.uploadBlob(app, layer.descriptor, from: layer.file) == .uploaded)
                let other = try Repository("team/other")
                #expect(try !client.blobExists(other, layer.descriptor.digest))
                #expect(try client.uploadBlob(other, layer.descriptor, from: layer.file, mountFrom: app) == .mounted)
                #expect(try client.blobExists(other, layer.descriptor.digest))
            }
        }
    }

    @Test func deletesAManifestByDigest() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory, layerSizes: [100])
                let digest = try image.push(with: client, to: app, tag: "doomed")
                try client.deleteManifest(app, digest)
                #expect(try client.manifestDescriptor(app, .digest(digest)) == nil)
                #expect(try client.manifestDescriptor(app, .tag(try OCI.Tag("doomed"))) == nil)
                let error = try #require(throws: RegistryError.self) { try client.manifest(app, .digest(digest)) }
                #expect(error.kind == .notFound)
                #expect(error.has(code: "MANIFEST_UNKNOWN"))
                #expect(error.description.contains("MANIFEST_UNKNOWN"))
            }
        }
    }

    @Test func corruptedBlobIsCaughtByDigestVerification() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory, layerSizes: [10_000])
                let digest = try image.push(with: client, to: app, tag: "v1")
                let layer = image.layers[0]

                // Same length, one byte flipped: only the digest can tell.
                let stored = registry.blobDataFile(digest: layer.descriptor.digest.rawValue)
                var bytes = try Data(contentsOf: stored)
                bytes[bytes.count / 2] ^= 0xFF
                try bytes.write(to: stored)
                let destination = directory.appending("pulled")
                let error = try #require(throws: RegistryError.self) {
                    try client.downloadBlob(app, layer.descriptor, to: destination)
                }
                #expect(error.kind == .digestMismatch)
                #expect(
                    !FileManager.default.fileExists(atPath: destination.path),
                    "a bad blob never lands at its destination")
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
                    $0.contains("partial")
                }
                #expect(leftovers.isEmpty)

                // A manifest fetched by digest is checked against that digest. The registry
                // re-parses manifests it serves, so the corruption keeps the JSON valid: one
                // character of the seed annotation changes.
                let manifestFile = registry.blobDataFile(digest: digest.rawValue)
                let text = try String(contentsOf: manifestFile, encoding: .utf8)
                let seedStart = try #require(text.range(of: #""seed":""#)).upperBound
                var corrupted = text
                corrupted.replaceSubrange(
                    seedStart..<text.index(after: seedStart), with: text[seedStart] == "0" ? "1" : "0")
                try Data(corrupted.utf8).write(to: manifestFile)
                let manifestError = try #require(throws: RegistryError.self) {
                    try client.manifest(app, .digest(digest))
                }
                #expect(manifestError.kind == .digestMismatch)
            }
        }
    }
}
