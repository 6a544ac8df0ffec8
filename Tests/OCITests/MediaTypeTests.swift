import Foundation
import Testing

@testable import OCI

@Suite("MediaType")
struct MediaTypeTests {
    @Test(
        "accepts RFC 6838 media types",
        arguments: [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/json",
            "application/json; charset=utf-8",
            "application/json ;charset=utf-8",
            "text/plain;charset=UTF-8;format=flowed",
            "application/vnd.example.sbom.v1+json",
            "Application/JSON",
        ])
    func valid(_ text: String) throws {
        let type = try MediaType(text)
        #expect(type.rawValue == text)
        #expect(MediaType(rawValue: text) == type)
    }

    @Test(
        "rejects malformed media types",
        arguments: [
            "",
            "application",
            "application/",
            "/json",
            "application/json/extra",
            " application/json",
            "application/json ",
            "application/json;",
            "application/json; charset",
            "application/json; =utf-8",
            "application/json; charset=",
            "-application/json",
            "application/js on",
            "applicatión/json",
            "application/" + String(repeating: "x", count: 128),
        ])
    func invalid(_ text: String) {
        #expect(throws: MediaType.ValidationError(value: text)) { try MediaType(text) }
        #expect(MediaType(rawValue: text) == nil)
    }

    @Test func errorNamesTheValue() {
        #expect(
            MediaType.ValidationError(value: "json").description.hasPrefix(
                #"invalid media type "json": expected type/subtype"#))
    }

    @Test func constantsAreValid() throws {
        let all: [MediaType] = [
            .ociManifest, .ociIndex, .ociConfig, .ociLayer, .ociLayerGzip, .ociLayerZstd, .ociEmpty,
            .dockerManifest, .dockerManifestList, .dockerConfig, .dockerLayerGzip, .dockerForeignLayerGzip,
            .dockerManifestSchema1, .dockerManifestSchema1Signed,
        ]
        for type in all {
            #expect(try MediaType(type.rawValue) == type)
        }
    }

    @Test func manifestTypesAreTheFourReadableTypesOCIFirst() {
        #expect(MediaType.manifestTypes == [.ociManifest, .ociIndex, .dockerManifest, .dockerManifestList])
    }

    @Test func classification() throws {
        #expect(MediaType.ociIndex.isIndex && MediaType.dockerManifestList.isIndex)
        #expect(MediaType.ociManifest.isImageManifest && MediaType.dockerManifest.isImageManifest)
        #expect(!MediaType.ociManifest.isIndex && !MediaType.ociIndex.isImageManifest)
        #expect(!MediaType.ociConfig.isIndex && !MediaType.ociConfig.isImageManifest)
        #expect(MediaType.dockerManifestSchema1Signed.isSchema1Manifest)
        // A Content-Type may differ in case or carry parameters and still mean the same format.
        let header = try MediaType("Application/VND.OCI.Image.Index.v1+JSON; charset=utf-8")
        #expect(header.isIndex)
        #expect(header.essence == MediaType.ociIndex.rawValue)
    }

    @Test func codableAsAStringAndValidated() throws {
        let data = try CanonicalJSON.encode([MediaType.ociManifest])
        #expect(String(decoding: data, as: UTF8.self) == #"["application/vnd.oci.image.manifest.v1+json"]"#)
        #expect(try JSONDecoder().decode([MediaType].self, from: data) == [.ociManifest])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([MediaType].self, from: Data(#"["nope"]"#.utf8))
        }
    }
}
