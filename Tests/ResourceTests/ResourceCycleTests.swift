import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

/// The whole cycle as a pipeline runs it: check → out → check → in in every format, each
/// format read back by an independent tool.
@Suite("check → out → check → in, every format read back by skopeo or umoci")
struct ResourceCycleTests {
    @Test func theWholeCycle() async throws {
        try await withTestRegistry(.basic()) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit("app", files: ["images/app/Dockerfile": "FROM scratch\n"])
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"username":"\#(registry.username!)","password":"\#(registry.password!)","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#

                    let first = try decodeVersions(runCheck(#"{"source":\#(source)}"#))
                    #expect(first == [["ref": commit]])
                    // The build task's output: an image labelled with its commit.
                    let build = directory.appending("build")
                    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                    try ImageFixture.image(
                        in: layout, name: "latest", layerCount: 3, seed: "cycle",
                        labels: ["org.opencontainers.image.revision": commit])
                    let put = try outVersion(
                        runOut(#"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: build))
                    #expect(put == ["ref": commit])
                    #expect(
                        try decodeVersions(runCheck(#"{"source":\#(source),"version":\#(jsonObject(put))}"#)) == [put])

                    var gets: [String: URL] = [:]
                    for format in ["rootfs", "oci", "oci-layout"] {
                        let get = directory.appending("get-\(format)")
                        let result = try runIn(
                            #"{"source":\#(source),"version":\#(jsonObject(put)),"params":{"format":"\#(format)","source":false}}"#,
                            directory: get)
                        #expect(result.succeeded, "\(format): \(result.stderrString)")
                        gets[format] = get
                    }
                    let digest = try String(contentsOf: gets["oci"]!.appendingPathComponent("digest"), encoding: .utf8)
                    let tag = String(commit.prefix(12))
                    // oci: a docker-archive skopeo loads; oci-layout: a layout skopeo reads by its tag.
                    _ = try runProcess(
                        "skopeo",
                        [
                            "copy", "docker-archive:\(gets["oci"]!.appendingPathComponent("image.tar").path)",
                            "oci:\(directory.appending("loaded").path):x",
                        ]
                    ).checked()
                    let raw = try runProcess(
                        "skopeo",
                        ["inspect", "--raw", "oci:\(gets["oci-layout"]!.appendingPathComponent("oci").path):\(tag)"]
                    ).checked()
                    #expect(Digest.sha256(raw.stdout).rawValue == digest)
                    // rootfs: the same tree umoci unpacks from the fetched layout.
                    let bundle = directory.appending("bundle")
                    _ = try runProcess(
                        "umoci",
                        [
                            "unpack", "--image", "\(gets["oci-layout"]!.appendingPathComponent("oci").path):\(tag)",
                            bundle.path,
                        ]
                    ).checked()
                    #expect(
                        try tree(gets["rootfs"]!.appendingPathComponent("rootfs"))
                            == tree(bundle.appendingPathComponent("rootfs")))
                }
            }
        }
    }

    func jsonObject(_ version: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: version, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Every path below `root` with its kind and contents.
    func tree(_ root: URL) throws -> [String: String] {
        var result: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey])!
        for case let url as URL in enumerator {
            let relative = String(url.path.dropFirst(root.path.count))
            let isDirectory = (try url.resourceValues(forKeys: [.isDirectoryKey])).isDirectory ?? false
            result[relative] = isDirectory ? "dir" : Digest.sha256(try Data(contentsOf: url)).rawValue
        }
        return result
    }
}
