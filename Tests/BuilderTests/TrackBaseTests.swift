import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// `track_base` end to end: check, in, build-task and out agree on the bases, and a base
/// that moves with no commit is a new version and a new image.
extension ImageBuildTests {
    func runResource(_ product: String, _ input: String, directory: URL? = nil) throws -> ProcessResult {
        try runProcess(
            try builtProduct(product).path, directory.map { [$0.path] } ?? [], stdin: Data(input.utf8),
            environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
    }

    func versions(_ result: ProcessResult) throws -> [[String: String]] {
        try #require(result.succeeded, "check failed: \(result.stderrString)")
        return try JSONDecoder().decode([[String: String]].self, from: result.stdout)
    }

    @Test func trackBaseMakesANewVersionAndImageWhenTheBaseMoves() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    _ = try pushBase("\(registry.host)/team/base:1", marker: "one", directory: directory.url)
                    let commit = try repository.commit(
                        "app",
                        files: [
                            "app/Dockerfile":
                                "ARG BASE=\(registry.host)/team/base:1\nFROM ${BASE}\nRUN [\"/bin/busybox\", \"cp\", \"/marker\", \"/seen\"]\n"
                        ])
                    let remote = try repository.bareClone()
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"track_base":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["app/"]}}"#

                    // check: the commit with the summary of its bases.
                    let first = try versions(runResource("check", #"{"source":\#(source)}"#))
                    try #require(first.count == 1 && first[0]["ref"] == commit && first[0]["base"] != nil, "\(first)")
                    let v1 = first[0]

                    // The pipeline: get (the digests check saw), build-task pinned to them, put.
                    func build(_ version: [String: String], _ name: String) throws -> [String: String] {
                        let build = directory.appending("build-\(name)")
                        let versionJSON = String(
                            decoding: try JSONSerialization.data(withJSONObject: version, options: [.sortedKeys]),
                            as: UTF8.self)
                        let get = try runResource(
                            "in", #"{"source":\#(source),"version":\#(versionJSON),"params":{"image":"skip"}}"#,
                            directory: build.appendingPathComponent("app"))
                        try #require(get.succeeded, "\(get.stderrString)")
                        #expect(
                            try String(contentsOf: build.appendingPathComponent("app/base"), encoding: .utf8)
                                == version["base"])
                        let task = try buildTask(
                            build,
                            [
                                "CONTEXT": "app/source/app", "BASE_DIGESTS_FILE": "app/base_digests.json",
                                "CACHE": directory.appending("cache").path, "REGISTRY_INSECURE": "true",
                            ])
                        try #require(task.succeeded, "\(task.stderrString)")
                        #expect(
                            try labels(build.appendingPathComponent("image"))["dev.slipway.base"] == version["base"])
                        return try outVersion(
                            runOut(#"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: build))
                    }
                    #expect(try build(v1, "1") == v1, "out returns the version check emitted")
                    let short = String(commit.prefix(12))
                    let base1 = String(try #require(v1["base"]).dropFirst("sha256:".count).prefix(12))
                    #expect(
                        try registry.client().manifestDescriptor(
                            try Repository("team/app"), .tag(try OCI.Tag("\(short)-\(base1)"))) != nil)

                    // The base moves, no commit: a new version of the same commit, after the given one.
                    _ = try pushBase("\(registry.host)/team/base:1", marker: "two", directory: directory.url)
                    let versionJSON = String(
                        decoding: try JSONSerialization.data(withJSONObject: v1, options: [.sortedKeys]), as: UTF8.self)
                    let next = try versions(runResource("check", #"{"source":\#(source),"version":\#(versionJSON)}"#))
                    try #require(
                        next.count == 2 && next[0] == v1 && next[1]["ref"] == commit && next[1]["base"] != v1["base"],
                        "\(next)")
                    // The old version can no longer be fetched with its bases: they moved.
                    let stale = try runResource(
                        "in", #"{"source":\#(source),"version":\#(versionJSON),"params":{"image":"skip"}}"#,
                        directory: directory.appending("stale"))
                    #expect(
                        stale.status == 1 && stale.stderrString.contains("moved since check"), "\(stale.stderrString)")
                    #expect(try build(next[1], "2") == next[1])
                    let base2 = String(try #require(next[1]["base"]).dropFirst("sha256:".count).prefix(12))
                    let tags = Set(try registry.client().tags(try Repository("team/app")).map(\.rawValue))
                    #expect(tags.isSuperset(of: ["\(short)-\(base1)", "\(short)-\(base2)", "main"]), "\(tags)")

                    // A base that cannot be resolved is one line naming it.
                    _ = try repository.commit(
                        "missing base",
                        files: [
                            "app/Dockerfile": "FROM \(registry.host)/team/base:9\nRUN [\"/bin/busybox\", \"true\"]\n"
                        ])
                    try repository.push()
                    let missing = try runResource("check", #"{"source":\#(source)}"#)
                    #expect(
                        missing.status == 1
                            && missing.stderrString.contains(
                                "the base image \(registry.host)/team/base:9 does not exist"),
                        "\(missing.stderrString)")

                    // Misconfiguration is one line.
                    let noPaths =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"track_base":true,"git":{"uri":"\#(remote.url.absoluteString)"}}"#
                    let refused = try runResource("check", #"{"source":\#(noPaths)}"#)
                    #expect(
                        refused.status == 1 && refused.stderrString.contains("track_base"), "\(refused.stderrString)")
                }
            }
        }
    }
}
