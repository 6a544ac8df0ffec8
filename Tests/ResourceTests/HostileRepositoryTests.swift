import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Repository content and task outputs are untrusted; the pipeline is not. These tests run
/// the built `check` and `out` against a git repository and a registry on loopback, plant
/// what an attacker could commit or a task could write, and check that nothing outside the
/// build directory or the clone is read or written, and that no tag the source's own rules
/// reserve can be taken by a name from the repository.
@Suite("hostile repository content and task outputs, through the built binaries")
struct HostileRepositoryTests {
    let app = try! Repository("team/app")
    /// What a file outside the build directory or the clone holds: it must never be printed.
    static let secret = "root:x:0:0:SECRET-MARKER:/root:/bin/sh\n"

    func digest(_ registry: TestRegistry, _ tag: String) throws -> Digest? {
        try registry.client().manifestDescriptor(app, .tag(try OCI.Tag(tag)))?.digest
    }

    /// A build directory with an image labelled as built from `commit` at `image/oci`.
    func build(_ directory: TemporaryDirectory, _ name: String, commit: String?) throws -> URL {
        try OutSourceKeyedTests().build(directory, name, commit: commit)
    }

    func expectRefused(
        _ result: ProcessResult, naming: String, _ comment: Comment? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let stderr = result.stderrString
        #expect(
            result.status == 1, "\(comment.map { "\($0): " } ?? "")exit \(result.status): \(stderr)",
            sourceLocation: sourceLocation)
        #expect(stderr.contains(naming), "\(comment.map { "\($0): " } ?? "")\(stderr)", sourceLocation: sourceLocation)
        #expect(
            !stderr.contains("SECRET-MARKER"), "the outside file's content was printed: \(stderr)",
            sourceLocation: sourceLocation)
        #expect(
            stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "one line: \(stderr)",
            sourceLocation: sourceLocation)
    }

    // MARK: - A tag file that is a symbolic link

    @Test func bumpTagFileRefusesATagFileThatIsASymlinkAndLeavesItsTargetAlone() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let victim = directory.appending("victim-VERSION")
                    try Data("1.0.0\n# \(Self.secret)".utf8).write(to: victim)
                    let remote = try repository.bareClone()
                    _ = try repository.commit("app", files: ["images/app/Dockerfile": "FROM scratch\n"])
                    try FileManager.default.createSymbolicLink(
                        atPath: repository.path.appendingPathComponent("images/app/VERSION").path,
                        withDestinationPath: victim.path)
                    _ = try repository.commit("the tag file is a link out of the clone")
                    try repository.push()
                    let tip = try remote.git("rev-parse", "refs/heads/main")
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"images/app/VERSION","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                    for bump in ["patch", "9.9.9"] {
                        let result = try runOut(
                            #"{"source":\#(source),"params":{"bump_tag_file":"\#(bump)"}}"#, directory: directory.url)
                        expectRefused(result, naming: "symbolic link", "bump_tag_file: \(bump)")
                        #expect(
                            try String(contentsOf: victim, encoding: .utf8) == "1.0.0\n# \(Self.secret)",
                            "the link's target is untouched")
                        #expect(try remote.git("rev-parse", "refs/heads/main") == tip, "nothing was pushed")
                    }
                    // check reads the tag file from git objects: a link there is refused too.
                    let checked = try runCheck(#"{"source":\#(source)}"#)
                    expectRefused(checked, naming: "symbolic link", "check")

                    // A directory on the tag file's path that is a link out of the clone.
                    let outsideDirectory = directory.appending("outside-app")
                    try FileManager.default.createDirectory(at: outsideDirectory, withIntermediateDirectories: true)
                    try Data("1.0.0\n".utf8).write(to: outsideDirectory.appendingPathComponent("VERSION"))
                    try FileManager.default.removeItem(at: repository.path.appendingPathComponent("images/app"))
                    try FileManager.default.createSymbolicLink(
                        atPath: repository.path.appendingPathComponent("images/app").path,
                        withDestinationPath: outsideDirectory.path)
                    _ = try repository.commit("the tag file's directory is a link out of the clone")
                    try repository.push()
                    let linkedTip = try remote.git("rev-parse", "refs/heads/main")
                    let throughDirectory = try runOut(
                        #"{"source":\#(source),"params":{"bump_tag_file":"patch"}}"#, directory: directory.url)
                    expectRefused(throughDirectory, naming: "symbolic link", "a linked directory")
                    #expect(
                        try String(contentsOf: outsideDirectory.appendingPathComponent("VERSION"), encoding: .utf8)
                            == "1.0.0\n")
                    #expect(
                        try FileManager.default.contentsOfDirectory(atPath: outsideDirectory.path) == ["VERSION"],
                        "nothing written beside it")
                    #expect(try remote.git("rev-parse", "refs/heads/main") == linkedTip)
                }
            }
        }
    }

    // MARK: - out's file params stay in the build directory

    @Test func outFileParamsNeverLeaveTheBuildDirectory() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let commit = try repository.commit(
                        "app", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
                    try repository.push()
                    let build = try self.build(directory, "build", commit: commit)
                    // Outside the build directory: a secret, a get's files and an image.
                    let outside = directory.appending("outside")
                    try FileManager.default.createDirectory(
                        at: outside.appendingPathComponent("get"), withIntermediateDirectories: true)
                    try Data(Self.secret.utf8).write(to: outside.appendingPathComponent("secret"))
                    let elsewhere = try self.build(directory, "outside/other", commit: commit)
                    let outsideDigest = try OCILayout(opening: elsewhere.appendingPathComponent("image/oci")).index()
                        .manifests[0].digest
                    try Data(outsideDigest.rawValue.utf8).write(to: outside.appendingPathComponent("get/digest"))
                    try Data(commit.utf8).write(to: outside.appendingPathComponent("get/ref"))
                    // Links a task could leave in its output.
                    for (name, target) in [
                        ("secret-link", outside.appendingPathComponent("secret").path),
                        ("relative-link", "../outside/secret"),
                        ("get-link", outside.appendingPathComponent("get").path),
                        ("image-link", elsewhere.appendingPathComponent("image").path),
                    ] {
                        try FileManager.default.createSymbolicLink(
                            atPath: build.appendingPathComponent(name).path, withDestinationPath: target)
                    }
                    let absolute = outside.appendingPathComponent("secret").path
                    // A layout whose index.json is a link out of the build directory, and one holding a FIFO.
                    let linked = try self.build(directory, "build/linked", commit: commit).appendingPathComponent(
                        "image/oci")
                    try FileManager.default.removeItem(at: linked.appendingPathComponent("index.json"))
                    try FileManager.default.createSymbolicLink(
                        atPath: linked.appendingPathComponent("index.json").path, withDestinationPath: absolute)
                    let piped = try self.build(directory, "build/piped", commit: commit).appendingPathComponent(
                        "image/oci")
                    #expect(mkfifo(piped.appendingPathComponent("blobs/fifo").path, 0o600) == 0)
                    let imageMode = #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag":"dev"}"#
                    let keyed =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                    // Something to promote.
                    _ = try outVersion(
                        runOut(#"{"source":\#(imageMode),"params":{"image":"image/oci"}}"#, directory: build))

                    let cases: [(source: String, params: String, naming: String)] = [
                        (imageMode, #"{"image":"../outside/other/image/oci"}"#, "params.image"),
                        (imageMode, #"{"image":"\#(elsewhere.path)/image/oci"}"#, "params.image"),
                        (imageMode, #"{"image":"image-link/oci"}"#, "params.image"),
                        (imageMode, #"{"image":"linked/image/oci"}"#, "params.image"),
                        (imageMode, #"{"image":"piped/image/oci"}"#, "params.image"),
                        (
                            imageMode, #"{"image":"image/oci","additional_tags":"../outside/secret"}"#,
                            "params.additional_tags"
                        ),
                        (
                            imageMode, #"{"image":"image/oci","additional_tags":"\#(absolute)"}"#,
                            "params.additional_tags"
                        ),
                        (
                            imageMode, #"{"image":"image/oci","additional_tags":"secret-link"}"#,
                            "params.additional_tags"
                        ),
                        (
                            imageMode, #"{"image":"image/oci","additional_tags":"relative-link"}"#,
                            "params.additional_tags"
                        ),
                        (
                            imageMode, #"{"promote":{"from":"dev","to":["x"],"release":"\#(absolute)"}}"#,
                            "params.promote.release"
                        ),
                        (
                            imageMode, #"{"promote":{"from":"dev","to":["x"],"release":"../outside/secret"}}"#,
                            "params.promote.release"
                        ),
                        (
                            imageMode, #"{"promote":{"from":"dev","to":["x"],"release":"secret-link"}}"#,
                            "params.promote.release"
                        ),
                        (imageMode, #"{"promote":{"from":"../outside/get","to":["x"]}}"#, "params.promote.from"),
                        (imageMode, #"{"promote":{"from":"get-link","to":["x"]}}"#, "params.promote.from"),
                        (keyed, #"{"image":"image/oci","release":"\#(absolute)"}"#, "params.release"),
                        (keyed, #"{"image":"image/oci","release":"relative-link"}"#, "params.release"),
                        (
                            keyed, #"{"image":"image/oci","additional_tags":"../outside/secret"}"#,
                            "params.additional_tags"
                        ),
                        (keyed, #"{"image":"image/oci","version_from":"../outside/get"}"#, "params.version_from"),
                        (keyed, #"{"image":"image/oci","version_from":"get-link"}"#, "params.version_from"),
                        (keyed, #"{"image":"image-link/oci"}"#, "params.image"),
                        (keyed, #"{"bump_tag_file":"\#(absolute)"}"#, "params.bump_tag_file"),
                        (keyed, #"{"bump_tag_file":"secret-link"}"#, "params.bump_tag_file"),
                    ]
                    for (source, params, naming) in cases {
                        let result = try runOut(#"{"source":\#(source),"params":\#(params)}"#, directory: build)
                        expectRefused(result, naming: naming, "\(params)")
                    }
                    #expect(try digest(registry, "x") == nil, "nothing was promoted")
                    #expect(
                        try registry.client().manifestDescriptor(app, .digest(outsideDigest)) == nil,
                        "the image outside was not pushed")
                    // Paths inside the build directory still work, through an inner link too.
                    try FileManager.default.createSymbolicLink(
                        atPath: build.appendingPathComponent("inner-link").path, withDestinationPath: "image")
                    try Data("v2.0.0\n".utf8).write(to: build.appendingPathComponent("release"))
                    try Data("extra\n".utf8).write(to: build.appendingPathComponent("tags"))
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(imageMode),"params":{"image":"inner-link/oci","additional_tags":"./tags"}}"#,
                            directory: build))
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(imageMode),"params":{"promote":{"from":"dev","to":["x"],"release":"release"}}}"#,
                            directory: build))
                    for tag in ["extra", "x", "2.0.0", "stable"] { #expect(try digest(registry, tag) != nil, "\(tag)") }
                }
            }
        }
    }

    // MARK: - Tags made from repository content

    @Test func aBranchOrTagFileCannotTakeAReservedTag() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let legit = try repository.commit(
                        "app 1.0", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
                    try repository.push()
                    let uri = remote.url.absoluteString
                    func source(branch: String, extra: String = "") -> String {
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"images/app/VERSION"\#(extra),"git":{"uri":"\#(uri)","branch":"\#(branch)","paths":["images/app/"]}}"#
                    }
                    // The legitimate release: the commit's immutable tag, main, v-1.0, and 1.0.0/stable.
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source(branch: "main", extra: #","tag_prefix":"v-""#)),"params":{"image":"image/oci","release":"1.0.0"}}"#,
                            directory: try build(directory, "legit", commit: legit)))
                    let immutable = String(legit.prefix(12))
                    let released = try #require(try digest(registry, immutable))
                    for tag in ["main", "v-1.0", "1.0.0", "stable"] {
                        #expect(try digest(registry, tag) == released, "\(tag)")
                    }

                    // An attacker's branch named like the legit commit's immutable tag, then like `stable`.
                    for (name, reserved) in [(immutable, "commit"), ("stable", "stable"), ("v1.0.0", "release")] {
                        try repository.branch(name, at: legit, checkout: true)
                        let evil = try repository.commit(
                            "evil on \(name)", files: ["images/app/Dockerfile": "FROM scratch\n# \(name)\n"])
                        try repository.push()
                        try repository.checkout("main")
                        let result = try runOut(
                            #"{"source":\#(source(branch: name, extra: #","tag_prefix":"v-""#)),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "evil-\(reserved)", commit: evil))
                        expectRefused(result, naming: "source.tags", "branch \(name)")
                        #expect(
                            try digest(registry, String(evil.prefix(12))) == nil,
                            "nothing was pushed for the attacker's commit")
                    }
                    // An attacker's tag file value `stable`, then another commit's immutable tag, then `latest`.
                    for value in ["stable", immutable, "latest", "inputs-\(String(repeating: "0", count: 64))"] {
                        let evil = try repository.commit(
                            "tag file \(value)", files: ["images/app/VERSION": "\(value)\n"])
                        try repository.push()
                        let result = try runOut(
                            #"{"source":\#(source(branch: "main")),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "evil-file-\(value)", commit: evil))
                        expectRefused(result, naming: "source.tag_file", "tag file \(value)")
                        #expect(try digest(registry, String(evil.prefix(12))) == nil)
                    }
                    // A tag file naming an existing release: the version-shaped tag is made once, never moved.
                    let squat = try repository.commit("tag file 1.0.0", files: ["images/app/VERSION": "1.0.0\n"])
                    try repository.push()
                    let squatting = try runOut(
                        #"{"source":\#(source(branch: "main")),"params":{"image":"image/oci"}}"#,
                        directory: try build(directory, "evil-file-release", commit: squat))
                    let metadata =
                        try #require(try JSONSerialization.jsonObject(with: squatting.stdout) as? [String: Any])[
                            "metadata"] as? [[String: String]]
                    #expect(
                        metadata?.first { $0["name"] == "held_back" }?["value"] == "1.0.0", "\(squatting.stderrString)")
                    for tag in [immutable, "v-1.0", "1.0.0", "stable"] {
                        #expect(try digest(registry, tag) == released, "\(tag) is untouched")
                    }
                    #expect(
                        try digest(registry, "main") == digest(registry, String(squat.prefix(12))),
                        "an ordinary floating tag moves as before")
                    #expect(try digest(registry, "latest") == nil)

                    // Namespaced by tag_prefix, the same value is an ordinary floating tag.
                    let fine = try repository.commit("tag file 2.0.0", files: ["images/app/VERSION": "stable\n"])
                    try repository.push()
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source(branch: "main", extra: #","tag_prefix":"v-""#)),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "fine", commit: fine)))
                    #expect(try digest(registry, "v-stable") == digest(registry, String(fine.prefix(12))))
                    #expect(try digest(registry, "stable") == released)

                    // Seed 000's prebuilt images: the first template and the tag file's tag are versions, and that is fine.
                    let prebuilt = try repository.commit(
                        "prebuilt for v2.1.0", files: ["images/app/VERSION": "v2.1.0\n"])
                    try repository.push()
                    let seed =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"images/app/VERSION","tags":["{tag_file}-{short_ref}","{tag_file}"],"git":{"uri":"\#(uri)","branch":"main","paths":["images/app/"]}}"#
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(seed),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "prebuilt", commit: prebuilt)))
                    let prebuiltDigest = try #require(try digest(registry, "v2.1.0-\(prebuilt.prefix(12))"))
                    #expect(try digest(registry, "v2.1.0") == prebuiltDigest)
                }
            }
        }
    }
}
