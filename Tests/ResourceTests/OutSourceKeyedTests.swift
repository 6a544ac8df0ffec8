import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

@Suite("out, source-keyed mode, as Concourse runs it")
struct OutSourceKeyedTests {
    let app = try! Repository("team/app")

    func source(_ registry: TestRegistry, _ remote: TestGitRepository, extra: String = "") -> String {
        #"{"repository":"\#(registry.host)/team/app","insecure":true,"latest_on":"main","tag_file":"images/app/VERSION","tag_prefix":"v-","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}\#(extra)}"#
    }

    /// A build directory holding an image labelled as built from `commit`.
    func build(_ directory: TemporaryDirectory, _ name: String, commit: String?) throws -> URL {
        let build = directory.appending(name)
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        try ImageFixture.image(
            in: layout, name: "latest", layerCount: 1, seed: name,
            labels: commit.map { ["org.opencontainers.image.revision": $0] } ?? [:])
        return build
    }

    func digest(_ registry: TestRegistry, _ tag: String) throws -> String? {
        try registry.client().manifestDescriptor(app, .tag(try OCI.Tag(tag)))?.digest.rawValue
    }

    @Test func pushReturnsCheckVersionAndTagsFromTemplates() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit(
                        "app 1.0", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
                    try repository.push()
                    let dir = try build(directory, "b1", commit: commit)
                    let result = try runOut(
                        #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#, directory: dir)
                    let version = try outVersion(result)
                    #expect(version == ["ref": commit, "tag_file": "1.0"])
                    let checked = try decodeVersions(runCheck(#"{"source":\#(source(registry, remote))}"#))
                    #expect(checked == [version], "out returns what check emits")
                    let pushed = try digest(registry, String(commit.prefix(12)))
                    for tag in ["main", "latest", "v-1.0"] { #expect(try digest(registry, tag) == pushed, "\(tag)") }
                    let consuming = try decodeVersions(
                        runCheck(#"{"source":\#(source(registry, remote, extra: #","require_image":true"#))}"#))
                    #expect(consuming == [version])
                }
            }
        }
    }

    @Test func aFloatingTagNeverMovesBackwards() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let older = try repository.commit(
                        "app 1.0", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
                    let newer = try repository.commit("app 1.1", files: ["images/app/VERSION": "1.1\n"])
                    try repository.push()
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "new", commit: newer)))
                    let newDigest = try digest(registry, "main")
                    let late = try runOut(
                        #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#,
                        directory: try build(directory, "old", commit: older))
                    #expect(try outVersion(late) == ["ref": older, "tag_file": "1.0"])
                    #expect(
                        late.stderrString.contains("leaving main where it is")
                            && late.stderrString.contains(String(newer.prefix(12))), "\(late.stderrString)")
                    #expect(try digest(registry, "main") == newDigest)
                    #expect(try digest(registry, "latest") == newDigest)
                    #expect(
                        try digest(registry, String(older.prefix(12))) != newDigest,
                        "the older commit still gets its own immutable tag")
                }
            }
        }
    }

    @Test func eightConcurrentPutsLeaveTheFloatingTagOnTheNewestCommit() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    var commits: [String] = []
                    for index in 1...8 {
                        commits.append(
                            try repository.commit("app \(index)", files: ["images/app/VERSION": "1.\(index)\n"]))
                    }
                    try repository.push()
                    let builds = try commits.enumerated().map {
                        try build(directory, "b\($0.offset)", commit: $0.element)
                    }
                    let input = #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#
                    let outPath = try builtProduct("out").path
                    let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
                        for dir in builds.reversed() {  // the newest starts first: the worst order for a naive put
                            group.addTask {
                                try runProcess(
                                    outPath, [dir.path], stdin: Data(input.utf8),
                                    environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    for result in results { #expect(result.succeeded, "\(result.stderrString)") }
                    let newestDigest = try digest(registry, String(commits[7].prefix(12)))
                    #expect(try digest(registry, "main") == newestDigest)
                    #expect(
                        Set(try commits.map { try digest(registry, String($0.prefix(12))) }).count == 8,
                        "every immutable tag on its own image")
                }
            }
        }
    }

    /// Two different images claiming one commit (the same revision label): the immutable tag
    /// stays on the first, and the second put fails before any tag moves. The same image
    /// again (Concourse retries puts) succeeds.
    @Test func anImmutableTagNeverMovesToAnotherImage() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit(
                        "app 1.0", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
                    try repository.push()
                    let request = #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#
                    let firstBuild = try build(directory, "first", commit: commit)
                    let first = try runOut(request, directory: firstBuild)
                    #expect(try outVersion(first) == ["ref": commit, "tag_file": "1.0"])
                    let immutable = String(commit.prefix(12))
                    let firstDigest = try #require(try digest(registry, immutable))

                    let other = try runOut(request, directory: try build(directory, "other", commit: commit))
                    let otherDigest = try OCILayout(opening: directory.appending("other/image/oci")).image(
                        named: "latest"
                    ).descriptor.digest.rawValue
                    #expect(other.status == 1, "\(other.stderrString)")
                    let lines = other.stderrString.split(separator: "\n").filter { $0.hasPrefix("out: ") }
                    #expect(
                        lines.count == 1 && lines[0].contains("team/app:\(immutable)") && lines[0].contains(firstDigest)
                            && lines[0].contains(otherDigest) && lines[0].contains("track_base"),
                        "\(other.stderrString)")
                    for tag in [immutable, "main", "latest", "v-1.0"] {
                        #expect(try digest(registry, tag) == firstDigest, "\(tag) did not move")
                    }

                    let again = try runOut(request, directory: firstBuild)
                    #expect(
                        try outVersion(again) == ["ref": commit, "tag_file": "1.0"],
                        "the same image again is idempotent")
                    #expect(try digest(registry, immutable) == firstDigest)
                }
            }
        }
    }

    @Test func versionFromAGetAndReleaseTags() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit("app", files: ["images/app/VERSION": "2.0\n"])
                    try repository.push()
                    let dir = try build(directory, "unlabelled", commit: nil)
                    try FileManager.default.createDirectory(
                        at: dir.appendingPathComponent("app-get"), withIntermediateDirectories: true)
                    try Data(commit.utf8).write(to: dir.appendingPathComponent("app-get/ref"))
                    let version = try outVersion(
                        runOut(
                            #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci","version_from":"app-get","release":"v1.2.3"}}"#,
                            directory: dir))
                    #expect(version == ["ref": commit, "tag_file": "2.0"])
                    let pushed = try digest(registry, String(commit.prefix(12)))
                    for tag in ["1.2.3", "v1.2.3", "1.2", "1", "stable"] {
                        #expect(try digest(registry, tag) == pushed, "\(tag)")
                    }

                    let missing = try runOut(
                        #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci"}}"#, directory: dir)
                    #expect(
                        missing.status == 1 && missing.stderrString.contains("org.opencontainers.image.revision"),
                        "\(missing.stderrString)")
                    let both = try runOut(
                        #"{"source":\#(source(registry, remote)),"params":{"image":"image/oci","bump_tag_file":"minor"}}"#,
                        directory: dir)
                    #expect(
                        both.stderrString.contains("params.image: not used with bump_tag_file"), "\(both.stderrString)")
                }
            }
        }
    }

    @Test func bumpTagFileCommitsTheNewValueInPlaceAndPushesIt() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let yaml =
                        "# read by the prebuilt images' pipeline\ntags:\n  bitops_base: 2.0.1   # bumped by releases\n  other: \"keep\"\n"
                    _ = try repository.commit(
                        "config",
                        files: ["prebuilt-config/bitops-tag.yaml": yaml, "images/app/Dockerfile": "FROM scratch\n"])
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":{"path":"prebuilt-config/bitops-tag.yaml","key":"tags.bitops_base"},"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                    let result = try runOut(
                        #"{"source":\#(source),"params":{"bump_tag_file":"minor"}}"#, directory: directory.url)
                    let version = try outVersion(result)
                    #expect(version["tag_file"] == "2.1.0")
                    let head = try remote.git("rev-parse", "refs/heads/main").trimmingCharacters(
                        in: .whitespacesAndNewlines)
                    #expect(version["ref"] == head, "the bump is the branch's new tip")
                    let content = try remote.git("show", "\(head):prebuilt-config/bitops-tag.yaml")
                    // (the helper trims git's final newline)
                    #expect(
                        content
                            == yaml.replacingOccurrences(of: "2.0.1", with: "2.1.0").trimmingCharacters(in: .newlines),
                        "comments, spacing and other keys kept")
                    #expect(
                        try decodeVersions(runCheck(#"{"source":\#(source)}"#)) == [version],
                        "check sees the bump as the newest version")

                    let literal = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"bump_tag_file":"3.0.0-rc.1"}}"#, directory: directory.url)
                    )
                    #expect(literal["tag_file"] == "3.0.0-rc.1")
                }
            }
        }
    }

    @Test func releaseModeVersionsCarryTheReleaseTag() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit("app 1.0", files: ["images/app/Dockerfile": "FROM scratch\n"])
                    try repository.tag("v1.0.0", message: "release 1.0.0")
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tags":["{short_ref}"],"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","tag_filter":"v*"}}"#
                    let version = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#,
                            directory: try build(directory, "r1", commit: commit)))
                    #expect(version == ["ref": commit, "release": "v1.0.0"])
                    #expect(try decodeVersions(runCheck(#"{"source":\#(source)}"#)) == [version])
                    #expect(try digest(registry, "stable") == digest(registry, String(commit.prefix(12))))

                    let untagged = try repository.commit(
                        "app 1.1", files: ["images/app/Dockerfile": "FROM scratch\nLABEL x=1\n"])
                    try repository.push()
                    let refused = try runOut(
                        #"{"source":\#(source),"params":{"image":"image/oci"}}"#,
                        directory: try build(directory, "r2", commit: untagged))
                    #expect(
                        refused.status == 1
                            && refused.stderrString.contains("carries no release tag matching tag_filter"),
                        "\(refused.stderrString)")
                }
            }
        }
    }
}
