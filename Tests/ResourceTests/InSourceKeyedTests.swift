import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

@Suite("in, source-keyed mode, as Concourse runs it")
struct InSourceKeyedTests {
    @Test func checksOutTheCommitAndFetchesItsImage() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit(
                        "app: add curl",
                        files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "2.0\n"])
                    try repository.push()
                    let layout = try OCILayout.create(at: directory.appending("layout"))
                    try ImageFixture.image(in: layout, name: "x", seed: "app")
                    let image = try layout.image()
                    _ = try ImageTransfer().push(
                        image, with: try registry.client(), to: try Repository("team/app"),
                        tags: [try OCI.Tag(String(commit.prefix(12))), try OCI.Tag("main")])
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"images/app/VERSION","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#

                    let destination = directory.appending("get")
                    let result = try runIn(
                        #"{"source":\#(source),"version":{"ref":"\#(commit)","tag_file":"2.0"}}"#,
                        directory: destination)
                    #expect(result.succeeded, "\(result.stderrString)")
                    let output = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
                    #expect(output["version"] as? [String: String] == ["ref": commit, "tag_file": "2.0"])
                    let metadata = (output["metadata"] as? [[String: String]] ?? []).reduce(into: [String: String]()) {
                        $0[$1["name"]!] = $1["value"]
                    }
                    #expect(metadata["commit"] == commit && metadata["message"] == "app: add curl")
                    #expect(metadata["digest"] == image.descriptor.digest.rawValue)
                    func file(_ name: String) throws -> String {
                        try String(contentsOf: destination.appendingPathComponent(name), encoding: .utf8)
                    }
                    #expect(try file("ref") == commit)
                    #expect(try file("tag") == String(commit.prefix(12)))
                    #expect(try file("tags") == "\(commit.prefix(12)) main")
                    #expect(try file("source/images/app/VERSION") == "2.0\n")
                    #expect(try file("source/.git/ref").trimmingCharacters(in: .whitespacesAndNewlines) == commit)
                    #expect(try file("source/.git/branch").trimmingCharacters(in: .whitespacesAndNewlines) == "main")
                    #expect(
                        FileManager.default.fileExists(
                            atPath: destination.appendingPathComponent("rootfs/etc/layer0").path))

                    // source: false and an unpublished commit: no checkout, no image, still the version.
                    let later = try repository.commit("app: more", files: ["images/app/VERSION": "2.1\n"])
                    try repository.push()
                    let bare = directory.appending("bare")
                    let quiet = try runIn(
                        #"{"source":\#(source),"version":{"ref":"\#(later)","tag_file":"2.1"},"params":{"source":false}}"#,
                        directory: bare)
                    #expect(quiet.succeeded, "\(quiet.stderrString)")
                    #expect(
                        try FileManager.default.contentsOfDirectory(atPath: bare.path).sorted() == [
                            "ref", "repository", "tag", "tag_file",
                        ])
                    #expect(try String(contentsOf: bare.appendingPathComponent("tag_file"), encoding: .utf8) == "2.1")
                }
            }
        }
    }
}
