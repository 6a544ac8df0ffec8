import Foundation
import Testing

@testable import OCI

/// Every Codable wire model against a golden file: decode, re-encode canonically, and
/// compare as parsed JSON, so a renamed key or a dropped field shows up here.
@Suite("Golden round trips")
struct WireModelTests {
    @Test func ociManifest() throws {
        let manifest = try Golden.roundTrip(ImageManifest.self, "oci-manifest")
        #expect(manifest.schemaVersion == 2)
        #expect(manifest.mediaType == .ociManifest)
        #expect(manifest.config.mediaType == .ociConfig)
        #expect(manifest.config.size == 1472)
        #expect(manifest.layers.map(\.mediaType) == [.ociLayerGzip, .ociLayerZstd])
        #expect(manifest.layers[1].annotations?["org.opencontainers.image.title"] == "app.tar.zst")
        #expect(manifest.annotations?["org.opencontainers.image.source"] == "https://git.example.com/team/app")
        #expect(manifest.subject == nil && manifest.artifactType == nil)
    }

    @Test func ociArtifactManifest() throws {
        let manifest = try Golden.roundTrip(ImageManifest.self, "oci-artifact-manifest")
        #expect(manifest.artifactType == (try MediaType("application/vnd.example.sbom.v1+json")))
        #expect(manifest.config == .empty)
        #expect(manifest.config.embeddedData == Data("{}".utf8))
        #expect(manifest.config.digest == .sha256(Data("{}".utf8)) && manifest.config.size == 2)
        #expect(manifest.subject?.mediaType == .ociManifest)
    }

    @Test func dockerManifest() throws {
        let manifest = try Golden.roundTrip(ImageManifest.self, "docker-manifest")
        #expect(manifest.mediaType == .dockerManifest)
        #expect(manifest.config.mediaType == .dockerConfig)
        #expect(manifest.layers.count == 3)
        #expect(manifest.layers.allSatisfy { $0.mediaType == .dockerLayerGzip })
    }

    @Test func ociIndex() throws {
        let index = try Golden.roundTrip(ImageIndex.self, "oci-index")
        #expect(index.mediaType == .ociIndex)
        #expect(index.manifests.count == 4)
        #expect(
            index.manifests.map { $0.platform?.description } == [
                "linux/amd64", "linux/arm64/v8", "linux/arm/v7", "unknown/unknown",
            ])
        #expect(index.manifests[3].annotations?["vnd.docker.reference.type"] == "attestation-manifest")
        #expect(index.annotations?["org.opencontainers.image.version"] == "1.4.2")
        #expect(index.manifest(for: try Platform("linux/arm64")) == index.manifests[1])
        #expect(index.manifest(for: try Platform("linux/aarch64")) == index.manifests[1])
        #expect(index.manifest(for: try Platform("linux/arm")) == index.manifests[2])
        #expect(index.manifest(for: try Platform("linux/s390x")) == nil)
    }

    @Test func dockerManifestList() throws {
        let list = try Golden.roundTrip(ImageIndex.self, "docker-manifest-list")
        #expect(list.mediaType == .dockerManifestList)
        #expect(list.manifests.allSatisfy { $0.mediaType == .dockerManifest })
        #expect(list.manifests[3].platform?.osVersion == "10.0.20348.2461")
        #expect(list.manifest(for: try Platform("windows/amd64")) == list.manifests[3])
        #expect(list.manifest(for: try Platform("linux/amd64")) == list.manifests[0])
    }

    @Test func imageConfiguration() throws {
        let configuration = try Golden.roundTrip(ImageConfiguration.self, "image-config")
        #expect(configuration.platform == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(configuration.created == "2024-05-14T09:21:33.418627Z")
        let config = try #require(configuration.config)
        #expect(config.user == "1000:1000")
        #expect(config.exposedPorts?.keys.sorted() == ["8080/tcp", "9090/udp"])
        #expect(config.env?.last == "APP_ENV=production")
        #expect(config.entrypoint == ["/usr/local/bin/app"])
        #expect(config.cmd == ["serve", "--port", "8080"])
        #expect(config.volumes == ["/var/lib/app": EmptyObject()])
        #expect(config.workingDir == "/srv/app")
        #expect(config.labels?["maintainer"] == "team@example.com")
        #expect(config.stopSignal == "SIGTERM")
        #expect(configuration.rootfs.type == "layers")
        #expect(configuration.rootfs.diffIDs.count == 2)
        let history = try #require(configuration.history)
        #expect(history.map(\.emptyLayer) == [nil, true, nil])
        #expect(history[2].comment == "buildkit.dockerfile.v0")
        #expect(history[2].author == "Slipway")
        // Each history entry that made a layer has a diff ID.
        #expect(history.filter { $0.emptyLayer != true }.count == configuration.rootfs.diffIDs.count)
    }

    @Test func descriptor() throws {
        let descriptor = try Golden.roundTrip(Descriptor.self, "descriptor")
        #expect(descriptor.mediaType == .dockerForeignLayerGzip)
        #expect(descriptor.size == 1_570_023_842)
        #expect(descriptor.urls?.count == 1)
        #expect(descriptor.platform?.osFeatures == ["win32k"])
        #expect(descriptor.annotations?["org.opencontainers.image.title"] == "servercore base")
    }

    @Test func dockerConfigWithExtraKeysDecodes() throws {
        // Docker's config has keys the OCI config lacks; they are dropped, not fatal.
        let configuration = try JSONDecoder().decode(ImageConfiguration.self, from: Golden.data("docker-config"))
        #expect(configuration.platform.description == "linux/amd64")
        #expect(configuration.config?.env == ["PATH=/bin"])
        #expect(configuration.config?.entrypoint == nil)
        #expect(configuration.config?.labels == nil)
        #expect(configuration.history?.first?.emptyLayer == true)
    }

    @Test func emptyObjectAcceptsAnyObjectAndWritesEmpty() throws {
        let decoded = try JSONDecoder().decode(
            [String: EmptyObject].self, from: Data(#"{"80/tcp":{"HostPort":"8080"}}"#.utf8))
        #expect(decoded == ["80/tcp": EmptyObject()])
        #expect(String(decoding: try CanonicalJSON.encode(decoded), as: UTF8.self) == #"{"80/tcp":{}}"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([String: EmptyObject].self, from: Data(#"{"a":[]}"#.utf8))
        }
    }

    @Test func descriptorRejectsNegativeSize() {
        let json = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(Fixtures.digestA)","size":-1}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Descriptor.self, from: Data(json.utf8)) }
    }

    @Test func descriptorRejectsBadDigestAndMissingFields() {
        let badDigest = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:xyz","size":1}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Descriptor.self, from: Data(badDigest.utf8)) }
        let noSize = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(Fixtures.digestA)"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Descriptor.self, from: Data(noSize.utf8)) }
    }

    @Test func descriptorOfContent() {
        let bytes = Data("hello".utf8)
        let descriptor = Descriptor(mediaType: .ociLayer, content: bytes)
        #expect(descriptor.size == 5)
        #expect(descriptor.digest == .sha256(bytes))
    }
}

@Suite("CanonicalJSON")
struct CanonicalJSONTests {
    @Test func sortsKeysAndLeavesSlashesAndAddsNoWhitespace() throws {
        let manifest = ImageManifest(
            config: Descriptor(mediaType: .ociConfig, digest: try Digest(Fixtures.digestA), size: 2),
            layers: [],
            annotations: ["z": "1", "a": "http://x/y"]
        )
        let json = String(decoding: try CanonicalJSON.encode(manifest), as: UTF8.self)
        #expect(
            json
                == #"{"annotations":{"a":"http://x/y","z":"1"},"config":{"digest":"\#(Fixtures.digestA)","mediaType":"application/vnd.oci.image.config.v1+json","size":2},"layers":[],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#
        )
    }

    @Test func isDeterministic() throws {
        let value = try JSONDecoder().decode(ImageConfiguration.self, from: Golden.data("image-config"))
        let first = try CanonicalJSON.encode(value)
        let second = try CanonicalJSON.encode(CanonicalJSON.decode(ImageConfiguration.self, from: first))
        #expect(first == second)
        #expect(Digest.sha256(first) == Digest.sha256(second))
    }
}

@Suite("Golden comparison")
struct GoldenComparisonTests {
    // Guards the round-trip tests against comparing nothing: a changed value, a missing
    // key and an extra key must each be seen as a difference.
    @Test func detectsDifferences() throws {
        let original = try Golden.object(Golden.data("oci-manifest"))
        let changed = try Golden.data("oci-manifest").replacing(Data("2823934".utf8), with: Data("2823935".utf8))
        #expect(try Golden.object(changed) != original)
        let missing = try Golden.data("oci-manifest").replacing(Data(#""schemaVersion": 2,"#.utf8), with: Data())
        #expect(try Golden.object(missing) != original)
        let extra = try Golden.data("oci-manifest").replacing(
            Data(#""schemaVersion": 2,"#.utf8), with: Data(#""schemaVersion": 2, "x": 1,"#.utf8))
        #expect(try Golden.object(extra) != original)
        #expect(try Golden.object(Golden.data("oci-manifest")) == original)
    }
}
