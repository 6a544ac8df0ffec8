import Foundation
import Testing

@testable import OCI

@Suite("Manifest.decode")
struct ManifestTests {
    /// Golden file, the header a registry would send, and the kind it holds.
    static let goldens: [(String, MediaType, Bool)] = [
        ("oci-manifest", .ociManifest, false),
        ("oci-artifact-manifest", .ociManifest, false),
        ("docker-manifest", .dockerManifest, false),
        ("oci-index", .ociIndex, true),
        ("docker-manifest-list", .dockerManifestList, true),
    ]

    @Test("with the registry's Content-Type", arguments: goldens)
    func withContentType(_ name: String, _ type: MediaType, _ isIndex: Bool) throws {
        let manifest = try Manifest.decode(Golden.data(name), mediaType: type)
        #expect(manifest.mediaType == type)
        #expect((manifest.index != nil) == isIndex)
        #expect((manifest.image != nil) == !isIndex)
        try expectSameJSON(manifest, name)
    }

    @Test("without a Content-Type", arguments: goldens)
    func withoutContentType(_ name: String, _ type: MediaType, _ isIndex: Bool) throws {
        let manifest = try Manifest.decode(Golden.data(name), mediaType: nil)
        #expect(manifest.mediaType == type)
        #expect((manifest.index != nil) == isIndex)
        try expectSameJSON(manifest, name)
    }

    @Test("with a generic Content-Type", arguments: goldens)
    func withGenericContentType(_ name: String, _ type: MediaType, _ isIndex: Bool) throws {
        let manifest = try Manifest.decode(
            Golden.data(name), mediaType: try MediaType("application/json; charset=utf-8"))
        #expect(manifest.mediaType == type)
        #expect((manifest.index != nil) == isIndex)
    }

    @Test("with a Content-Type carrying parameters", arguments: goldens)
    func withParameters(_ name: String, _ type: MediaType, _ isIndex: Bool) throws {
        let manifest = try Manifest.decode(
            Golden.data(name), mediaType: try MediaType(type.rawValue + "; charset=utf-8"))
        #expect((manifest.index != nil) == isIndex)
    }

    @Test func byShapeWhenNoMediaTypeAnywhere() throws {
        var image = try JSONDecoder().decode(ImageManifest.self, from: Golden.data("oci-manifest"))
        image.mediaType = nil
        let decodedImage = try Manifest.decode(CanonicalJSON.encode(image), mediaType: nil)
        #expect(decodedImage == .image(image))
        #expect(decodedImage.mediaType == .ociManifest)

        var index = try JSONDecoder().decode(ImageIndex.self, from: Golden.data("oci-index"))
        index.mediaType = nil
        let decodedIndex = try Manifest.decode(CanonicalJSON.encode(index), mediaType: nil)
        #expect(decodedIndex == .index(index))
        #expect(decodedIndex.mediaType == .ociIndex)
        #expect(decodedIndex.annotations == index.annotations)
    }

    @Test func contentTypeDecidesWhenTheBodyIsSilent() throws {
        var index = try JSONDecoder().decode(ImageIndex.self, from: Golden.data("docker-manifest-list"))
        index.mediaType = nil
        let decoded = try Manifest.decode(CanonicalJSON.encode(index), mediaType: .dockerManifestList)
        #expect(decoded.index == index)
    }

    @Test(
        "schema 1 gives a clear error",
        arguments: [nil, MediaType.dockerManifestSchema1Signed, .dockerManifestSchema1, .dockerManifest] as [MediaType?]
    )
    func schema1(_ type: MediaType?) throws {
        let data = try Golden.data("schema1-manifest")
        let error = #expect(throws: Manifest.DecodeError.self) { try Manifest.decode(data, mediaType: type) }
        #expect(error?.description.contains("schema 1") == true)
        #expect(error?.description.contains("push the image again") == true)
    }

    @Test func contradictoryContentTypeIsAnError() throws {
        let error = #expect(throws: Manifest.DecodeError.self) {
            try Manifest.decode(Golden.data("oci-index"), mediaType: .ociManifest)
        }
        #expect(error?.description.contains("says image manifest but the body's mediaType") == true)
    }

    @Test func unknownContentTypeIsAnError() throws {
        let type = try MediaType("application/vnd.oci.artifact.manifest.v1+json")
        let error = #expect(throws: Manifest.DecodeError.self) {
            try Manifest.decode(Golden.data("oci-manifest"), mediaType: type)
        }
        #expect(
            error?.description.contains(
                #"unsupported manifest media type "application/vnd.oci.artifact.manifest.v1+json""#) == true)
    }

    @Test(
        "bad bodies give one-line errors",
        arguments: [
            ("not json", "invalid manifest"),
            ("[]", "invalid manifest"),
            (#"{"schemaVersion":2}"#, "cannot tell the manifest's type"),
            (
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.config.v1+json"}"#,
                "unsupported manifest media type"
            ),
            (#"{"schemaVersion":3,"manifests":[]}"#, "unsupported manifest schemaVersion 3"),
            (#"{"manifests":[]}"#, "unsupported manifest schemaVersion none"),
            (
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                #"invalid index: missing required field "manifests""#
            ),
            (
                #"{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:xyz","size":1},"layers":[]}"#,
                "invalid image manifest at .config.digest: invalid digest"
            ),
            (
                #"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"\#(Fixtures.digestA)","size":-5}]}"#,
                "invalid index at .manifests[0].size: invalid descriptor size -5"
            ),
        ])
    func badBodies(_ body: String, _ fragment: String) {
        let error = #expect(throws: Manifest.DecodeError.self) { try Manifest.decode(Data(body.utf8), mediaType: nil) }
        #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "no error")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test func encodesAsTheUnderlyingDocument() throws {
        let data = try Golden.data("oci-index")
        let manifest = try Manifest.decode(data, mediaType: nil)
        #expect(try CanonicalJSON.encode(manifest) == CanonicalJSON.encode(manifest.index))
    }

    private func expectSameJSON(_ manifest: Manifest, _ name: String) throws {
        #expect(try Golden.object(CanonicalJSON.encode(manifest)) == Golden.object(Golden.data(name)))
    }
}
