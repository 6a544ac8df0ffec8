import Archive
import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

/// Runs the built `in DIR` with `input` on stdin, as Concourse does.
func runIn(_ input: String, directory: URL) throws -> ProcessResult {
    try runProcess(
        try builtProduct("in").path, [directory.path], stdin: Data(input.utf8),
        environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
}

@Suite("in, image mode, as Concourse runs it")
struct InImageModeTests {
    let app = try! Repository("team/app")

    /// A two-platform image pushed as team/app:multi (and :latest); returns (index, amd64, arm64).
    func pushMultiArch(_ registry: TestRegistry, _ directory: TemporaryDirectory) throws -> (
        Descriptor, Descriptor, Descriptor
    ) {
        let layout = try OCILayout.create(at: directory.appending("source-layout"))
        let amd64 = try ImageFixture.image(
            in: layout, name: nil, platform: Platform(os: "linux", architecture: "amd64"), seed: "a", addToIndex: false)
        let arm64 = try ImageFixture.image(
            in: layout, name: nil, platform: Platform(os: "linux", architecture: "arm64", variant: "v8"), seed: "b",
            addToIndex: false)
        let index = try layout.writeBlob(
            try CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64])), mediaType: .ociIndex)
        try layout.addToIndex(index, name: "multi")
        _ = try ImageTransfer().push(
            try layout.image(named: "multi"), with: try registry.client(), to: app,
            tags: [try OCI.Tag("multi"), try OCI.Tag("latest")])
        return (index, amd64, arm64)
    }

    func input(_ registry: TestRegistry, digest: Digest, params: String = "{}") -> String {
        #"{"source":{"repository":"\#(registry.host)/team/app","tag":"multi","insecure":true},"version":{"tag":"multi","digest":"\#(digest)"},"params":\#(params)}"#
    }

    @Test func ociLayoutFormatIsTheWholeImage() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (index, _, _) = try pushMultiArch(registry, directory)
                let destination = directory.appending("get")
                let result = try runIn(
                    input(registry, digest: index.digest, params: #"{"format":"oci-layout"}"#), directory: destination)
                #expect(result.succeeded, "\(result.stderrString)")
                let output = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
                #expect((output["version"] as? [String: String])?["digest"] == index.digest.rawValue)
                let oci = destination.appendingPathComponent("oci")
                #expect(Digest.sha256(try Data(contentsOf: oci.appendingPathComponent("index.json"))) == index.digest)
                #expect(
                    try String(contentsOf: destination.appendingPathComponent("digest"), encoding: .utf8)
                        == index.digest.rawValue)
                #expect(
                    try String(contentsOf: destination.appendingPathComponent("tags"), encoding: .utf8)
                        == "latest multi")
                #expect(
                    try String(contentsOf: destination.appendingPathComponent("repository"), encoding: .utf8)
                        == "\(registry.host)/team/app")
                // Both platforms are complete: every blob is present and verifies. (index.json is the
                // registry's index byte for byte, as registry-image writes it, so its entries carry
                // no ref.name for skopeo 1.9's oci:path:tag to select.)
                let layout = try OCILayout(opening: oci)
                for blob in try layout.blobs(reachableFrom: index) {
                    _ = try copy(from: layout.openBlob(blob), to: DataSink())
                }
            }
        }
    }

    @Test func ociFormatIsADockerArchiveOfThePlatformAsked() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (index, _, arm64) = try pushMultiArch(registry, directory)
                let destination = directory.appending("get")
                let params = #"{"format":"oci","platform":{"os":"linux","architecture":"arm64"}}"#
                let result = try runIn(input(registry, digest: index.digest, params: params), directory: destination)
                #expect(result.succeeded, "\(result.stderrString)")
                let archive = destination.appendingPathComponent("image.tar")
                let inspected = try runProcess("skopeo", ["inspect", "docker-archive:\(archive.path)"]).checked()
                let json = try #require(try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])
                #expect(json["Architecture"] as? String == "arm64")
                let layout = try OCILayout.create(at: directory.appending("check"))
                let pulled = try ImageTransfer().pull(
                    app, arm64.digest, with: try registry.client(), into: layout, platforms: .all)
                #expect(json["Layers"] as? [String] == (try pulled.configuration().rootfs.diffIDs.map(\.rawValue)))
                _ = try runProcess(
                    "skopeo", ["copy", "docker-archive:\(archive.path)", "oci:\(directory.appending("loaded").path):x"]
                ).checked()
            }
        }
    }

    @Test func rootfsFormatUnpacksThePlatformAskedWithMetadata() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (index, _, _) = try pushMultiArch(registry, directory)
                let destination = directory.appending("get")
                let params = #"{"platform":{"os":"linux","architecture":"arm64"}}"#
                let result = try runIn(input(registry, digest: index.digest, params: params), directory: destination)
                #expect(result.succeeded, "\(result.stderrString)")
                let rootfs = destination.appendingPathComponent("rootfs")
                #expect(
                    try String(contentsOf: rootfs.appendingPathComponent("etc/layer1"), encoding: .utf8)
                        == "b 1 linux/arm64/v8\n")
                #expect(
                    try String(contentsOf: rootfs.appendingPathComponent("data/0.txt"), encoding: .utf8)
                        == String(repeating: "0", count: 5000))
                let metadata = try #require(
                    try JSONSerialization.jsonObject(
                        with: Data(contentsOf: destination.appendingPathComponent("metadata.json"))) as? [String: Any])
                #expect(metadata["env"] as? [String] == ["PATH=/usr/bin:/bin"])
                #expect(metadata["cmd"] as? [String] == ["/bin/sh"])
                let labels = try JSONDecoder().decode(
                    [String: String].self, from: Data(contentsOf: destination.appendingPathComponent("labels.json")))
                #expect(labels == ["seed": "b"])
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: destination.path).filter {
                    $0.hasPrefix(".")
                }
                #expect(leftovers.isEmpty, "no scratch left behind: \(leftovers)")
            }
        }
    }

    @Test func skipAutoAndRequired() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (index, _, _) = try pushMultiArch(registry, directory)
                for params in [#"{"image":"skip"}"#, #"{"skip_download":true}"#] {
                    let destination = directory.appending("skip-\(params.count)")
                    let result = try runIn(
                        input(registry, digest: index.digest, params: params), directory: destination)
                    #expect(result.succeeded, "\(result.stderrString)")
                    // The version's files, as registry-image writes them, whatever is fetched.
                    #expect(
                        try FileManager.default.contentsOfDirectory(atPath: destination.path).sorted() == [
                            "digest", "repository", "tag",
                        ])
                    #expect(
                        try String(contentsOf: destination.appendingPathComponent("digest"), encoding: .utf8)
                            == index.digest.rawValue)
                }
                let gone = try Digest("sha256:" + String(repeating: "1", count: 64))
                let auto = try runIn(input(registry, digest: gone), directory: directory.appending("auto"))
                #expect(auto.succeeded, "\(auto.stderrString)")
                #expect(
                    !FileManager.default.fileExists(atPath: directory.appending("auto/rootfs").path), "nothing fetched")
                #expect(
                    try String(contentsOf: directory.appending("auto/digest"), encoding: .utf8) == gone.rawValue,
                    "the version's digest")
                let required = try runIn(
                    input(registry, digest: gone, params: #"{"image":"required"}"#),
                    directory: directory.appending("required"))
                #expect(required.status == 1)
                #expect(
                    required.stderrString.contains("does not exist (params.image: required)"),
                    "\(required.stderrString)")
                let bad = try runIn(
                    input(registry, digest: index.digest, params: #"{"format":"tarball"}"#),
                    directory: directory.appending("bad"))
                #expect(
                    bad.stderrString.contains(#"params.format: "tarball" is not one of rootfs, oci, oci-layout"#),
                    "\(bad.stderrString)")
                let typo = try runIn(
                    input(registry, digest: index.digest, params: #"{"formt":"oci"}"#),
                    directory: directory.appending("typo"))
                #expect(typo.stderrString.contains(#"did you mean "format"?"#), "\(typo.stderrString)")
            }
        }
    }
}
