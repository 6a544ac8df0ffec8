import Console
import Foundation
import GitSource
import ImageLayout
import OCI
import Registry
import TagPolicy
import TestSupport
import Testing

@testable import Resource

/// `out` for release pipelines: `bump_tag_file` from a get's file, `promote.from` a release
/// commit (a release-mode get: `ref`, no `digest`), `promote.if_missing`, immutable release tags.
@Suite("out: releases of images main published")
struct OutReleasePromoteTests {
    let app = try! Repository("team/app")

    func digest(_ registry: TestRegistry, _ tag: String) throws -> String? {
        try registry.client().manifestDescriptor(app, .tag(try OCI.Tag(tag)))?.digest.rawValue
    }

    /// A build directory holding an image labelled as built from `commit`.
    func build(_ directory: TemporaryDirectory, _ name: String, commit: String) throws -> URL {
        let build = directory.appending(name)
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        try ImageFixture.image(
            in: layout, name: "latest", layerCount: 1, seed: name, labels: ["org.opencontainers.image.revision": commit]
        )
        return build
    }

    /// What a release-mode get writes: `ref` and `release`, no `digest`.
    func releaseGet(_ directory: URL, ref: String, release: String) throws {
        let get = directory.appendingPathComponent("release")
        try FileManager.default.createDirectory(at: get, withIntermediateDirectories: true)
        try Data((ref + "\n").utf8).write(to: get.appendingPathComponent("ref"))
        try Data((release + "\n").utf8).write(to: get.appendingPathComponent("release"))
    }

    @Test func bumpTagFileSetsTheValueAGetsFileHolds() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    _ = try repository.commit(
                        "base", files: ["base/VERSION": "v2.1.0\n", "images/app/Dockerfile": "FROM scratch\n"])
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"base/VERSION","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                    let put = directory.appending("put")
                    try FileManager.default.createDirectory(
                        at: put.appendingPathComponent("base-release"), withIntermediateDirectories: true)
                    try Data("v2.1.1\n".utf8).write(to: put.appendingPathComponent("base-release/release"))

                    let version = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"bump_tag_file":"base-release/release"}}"#, directory: put)
                    )
                    #expect(version["tag_file"] == "v2.1.1", "the file's value, not a minor bump")
                    let head = try remote.git("rev-parse", "refs/heads/main").trimmingCharacters(
                        in: .whitespacesAndNewlines)
                    #expect(version["ref"] == head)
                    #expect(try remote.git("show", "\(head):base/VERSION") == "v2.1.1")

                    let missing = try runOut(
                        #"{"source":\#(source),"params":{"bump_tag_file":"base-relase/release"}}"#, directory: put)
                    #expect(missing.status == 1)
                    #expect(
                        missing.stderrString.hasPrefix(
                            "out: params.bump_tag_file: \"base-relase/release\" names no file in ")
                            && missing.stderrString.filter { $0 == "\n" }.count == 1,
                        "\(missing.stderrString)")
                    // A re-run of the same put (Concourse retries; a pipeline re-runs a release)
                    // finds the file already holding the value: no empty commit, no failure.
                    let again = try runOut(
                        #"{"source":\#(source),"params":{"bump_tag_file":"base-release/release"}}"#, directory: put)
                    #expect(again.status == 0, "\(again.stderrString)")
                    #expect(try outVersion(again) == version)
                    #expect(
                        try remote.git("rev-parse", "refs/heads/main").trimmingCharacters(in: .whitespacesAndNewlines)
                            == head, "no new commit")
                    #expect(
                        try outVersion(
                            runOut(#"{"source":\#(source),"params":{"bump_tag_file":"minor"}}"#, directory: put))[
                                "tag_file"] == "v2.2.0",
                        "keywords are kept")
                }
            }
        }
    }

    /// Commits A (touches images/x/) and B (only other/), release v1.0.0 on B: the release's
    /// image is A's, published by main as its `{short_ref}`.
    @Test func promoteFromAReleaseCommitTagsTheImageThisResourcePublishedForIt() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let a = try repository.commit("x", files: ["images/x/Dockerfile": "FROM scratch\n"])
                    let b = try repository.commit("other", files: ["other/notes": "1\n"])
                    try repository.tag("v1.0.0", at: b, message: "release 1.0.0")
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tags":["{short_ref}"],"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/x/"]}}"#
                    let put = directory.appending("put")
                    try releaseGet(put, ref: b, release: "v1.0.0")
                    let promote =
                        #"{"source":\#(source),"params":{"promote":{"from":"release","release":"release/release"}}}"#
                    let skipping =
                        #"{"source":\#(source),"params":{"promote":{"from":"release","release":"release/release","if_missing":"skip"}}}"#

                    // Nothing published yet: skip is a green no-op; the default is one red line.
                    let skipped = try runOut(skipping, directory: put)
                    #expect(try outVersion(skipped) == ["ref": a])
                    #expect(
                        skipped.stderrString.contains(
                            "promote: the image of \(a.prefix(12)) for release commit \(b.prefix(12)), team/app:\(a.prefix(12)), is not published yet; nothing promoted"
                        ),
                        "\(skipped.stderrString)")
                    #expect(try registry.client().tags(app).isEmpty, "nothing tagged")
                    let failed = try runOut(promote, directory: put)
                    #expect(failed.status == 1)
                    #expect(
                        failed.stderrString
                            == "out: params.promote.from: release commit \(b.prefix(12)) has no image yet: its image is the one of \(a.prefix(12)), team/app:\(a.prefix(12)), which is not in the registry; put that image first, or set promote.if_missing: skip to wait for it without failing\n"
                    )

                    // main publishes A's image; the release promotes it, with no rebuild.
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"image":"image/oci"}}"#,
                            directory: try build(directory, "a", commit: a)))
                    let published = try #require(try digest(registry, String(a.prefix(12))))
                    #expect(try outVersion(runOut(promote, directory: put)) == ["ref": a])
                    for tag in ["1.0.0", "v1.0.0", "1.0", "1", "stable"] {
                        #expect(try digest(registry, tag) == published, "\(tag)")
                    }
                    #expect(
                        try outVersion(runOut(skipping, directory: put)) == ["ref": a],
                        "promoting the same image again is idempotent")
                    #expect(try digest(registry, "1.0.0") == published)

                    // A newer image of images/x/ cannot become release 1.0.0, by promote or by put.
                    let c = try repository.commit("x 2", files: ["images/x/Dockerfile": "FROM scratch\nLABEL v=2\n"])
                    try repository.push()
                    let newer = try build(directory, "c", commit: c)
                    _ = try outVersion(
                        runOut(#"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: newer))
                    let other = try #require(try digest(registry, String(c.prefix(12))))
                    let moved = try runOut(
                        #"{"source":\#(source),"params":{"promote":{"from":"\#(c.prefix(12))","release":"v1.0.0"}}}"#,
                        directory: put)
                    #expect(moved.status == 1)
                    #expect(
                        moved.stderrString
                            == "out: params.promote.release: release team/app:1.0.0 already points at \(published), not at \(other); a release tag never moves to another image: release a new version instead\n"
                    )
                    let pushed = try runOut(
                        #"{"source":\#(source),"params":{"image":"image/oci","release":"1.0.0"}}"#, directory: newer)
                    #expect(
                        pushed.status == 1
                            && pushed.stderrString.contains("release team/app:1.0.0 already points at \(published)"),
                        "\(pushed.stderrString)")
                    #expect(try digest(registry, "1.0.0") == published && digest(registry, "v1.0.0") == published)
                }
            }
        }
    }

    @Test func aPutNeverMovesAFullReleaseTag() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let remote = try repository.bareClone()
                    let a = try repository.commit("x", files: ["images/x/Dockerfile": "FROM scratch\n"])
                    let c = try repository.commit("x 2", files: ["images/x/Dockerfile": "FROM scratch\nLABEL v=2\n"])
                    try repository.push()
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"tags":["{short_ref}"],"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/x/"]}}"#
                    let first = try build(directory, "a", commit: a)
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#,
                            directory: first))
                    let released = try #require(try digest(registry, "v1.0.0"))
                    _ = try outVersion(
                        runOut(
                            #"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#,
                            directory: first))
                    let refused = try runOut(
                        #"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#,
                        directory: try build(directory, "c", commit: c))
                    #expect(refused.status == 1)
                    #expect(
                        refused.stderrString.hasPrefix(
                            "out: params.release: release team/app:1.0.0 already points at \(released), not at sha256:"),
                        "\(refused.stderrString)")
                    #expect(try digest(registry, String(c.prefix(12))) == nil, "refused before pushing anything")
                    for tag in ["1.0.0", "v1.0.0", "stable"] {
                        #expect(try digest(registry, tag) == released, "\(tag)")
                    }
                }
            }
        }
    }

    // MARK: - The decisions, in process

    func keyed(_ tags: String, trackBase: Bool = false) throws -> SourceKeyed {
        let json =
            #"{"repository":"registry.example/team/app","tags":\#(tags),"tag_file":"VERSION"\#(trackBase ? #","track_base":true"# : ""),"git":{"uri":"https://git.example/app.git","branch":"main","paths":["images/x/"]}}"#
        guard case .sourceKeyed(let keyed) = try Source(JSONValue.parse(Data(json.utf8))).mode else {
            throw TestSupportError("not source-keyed")
        }
        return keyed
    }

    @Test func whatPromoteFromNames() throws {
        let promote = try InputObject(.object([:]), path: "params.promote", keys: Out.promoteKeys)
        let digest = Digest.sha256(Data("x".utf8))
        let commit = String(repeating: "ab", count: 20)
        #expect(
            try Out.promoteFrom(
                "get", path: "/b/get", digestFile: digest.rawValue + "\n", refFile: commit, promote: promote)
                == .digest(digest))
        #expect(
            try Out.promoteFrom("get", path: "/b/get", digestFile: nil, refFile: commit + "\n", promote: promote)
                == .releaseCommit(try GitCommitID(commit)))
        #expect(
            try Out.promoteFrom("main", path: "/b/main", digestFile: nil, refFile: nil, promote: promote)
                == .tag(try OCI.Tag("main")))
        let bad = #expect(throws: InputError.self) {
            try Out.promoteFrom("get", path: "/b/get", digestFile: nil, refFile: "HEAD", promote: promote)
        }
        #expect(
            bad?.description.hasPrefix("params.promote.from: /b/get/ref does not hold a commit") == true,
            "\(String(describing: bad))")
    }

    @Test func ifMissingIsFailOrSkip() throws {
        func parse(_ value: String?) throws -> Out.IfMissing {
            try Out.ifMissing(
                InputObject(
                    .object(value.map { ["if_missing": .string($0)] } ?? [:]), path: "params.promote",
                    keys: Out.promoteKeys))
        }
        #expect(try parse(nil) == .fail)
        #expect(try parse("skip") == .skip)
        let error = #expect(throws: InputError.self) { try parse("ignore") }
        #expect(error?.description == #"params.promote.if_missing: "ignore" is not fail or skip"#)
    }

    @Test func aFullReleaseTagNeverMoves() throws {
        let ours = Digest.sha256(Data("ours".utf8))
        let theirs = Digest.sha256(Data("theirs".utf8))
        #expect(Out.releaseTagRefusal(repository: app, tag: "1.2.3", existing: nil, digest: ours) == nil)
        #expect(
            Out.releaseTagRefusal(repository: app, tag: "1.2.3", existing: ours, digest: ours) == nil,
            "the same image again")
        #expect(
            Out.releaseTagRefusal(repository: app, tag: "v1.2.3", existing: theirs, digest: ours)
                == "release team/app:v1.2.3 already points at \(theirs), not at \(ours); a release tag never moves to another image: release a new version instead"
        )
        #expect(ReleaseTags.immutableTags(for: try #require(SemanticVersion("v1.2.3"))) == ["1.2.3", "v1.2.3"])
        #expect(ReleaseTags.immutableTags(for: try #require(SemanticVersion("1.2.3-rc.1"))) == ["1.2.3-rc.1"])
    }

    @Test func whatBumpTagFileAsksFor() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(
                at: directory.appending("base-release"), withIntermediateDirectories: true)
            try Data(" v2.1.1\n".utf8).write(to: directory.appending("base-release/release"))
            try Data("\n".utf8).write(to: directory.appending("base-release/empty"))
            try Data("minor\n".utf8).write(to: directory.appending("word"))
            #expect(try Out.bumpRequest("minor", directory: directory.url) == .keyword("minor"))
            #expect(try Out.bumpRequest("base-release/release", directory: directory.url) == .value("v2.1.1"))
            #expect(try Out.bumpRequest("3.0.0-rc.1", directory: directory.url) == .value("3.0.0-rc.1"))
            #expect(
                try Out.bumpRequest("word", directory: directory.url) == .value("minor"),
                "a file's content is a value, never a keyword")
            #expect(throws: InputError.self) { try Out.bumpRequest("base-release/empty", directory: directory.url) }
            #expect(throws: InputError.self) { try Out.bumpRequest("missing-get/release", directory: directory.url) }
            #expect(try Out.bumped("v2.1.0", .value("v2.1.1")) == "v2.1.1")
            #expect(try Out.bumped("v2.1.0", .keyword("minor")) == "v2.2.0")
        }
    }

    @Test func pipelineLintKnowsIfMissing() throws {
        let keyedSource = try Source(
            JSONValue.parse(
                Data(
                    #"{"repository":"registry.example/team/app","git":{"uri":"https://git.example/app.git","branch":"main"}}"#
                        .utf8)))
        _ = try Out.params(
            JSONValue.parse(
                Data(#"{"promote":{"from":"release","release":"release/release","if_missing":"skip"}}"#.utf8)),
            source: keyedSource)
        let bad = #expect(throws: InputError.self) {
            _ = try Out.params(
                JSONValue.parse(Data(#"{"promote":{"from":"release","to":["x"],"if_missing":"later"}}"#.utf8)),
                source: keyedSource)
        }
        #expect(bad?.description == #"params.promote.if_missing: "later" is not fail or skip"#)
        let imageSource = try Source(
            JSONValue.parse(Data(#"{"repository":"registry.example/team/app","tag":"dev"}"#.utf8)))
        let imageMode = #expect(throws: InputError.self) {
            _ = try Out.params(
                JSONValue.parse(Data(#"{"promote":{"from":"dev","to":["x"],"if_missing":"skip"}}"#.utf8)),
                source: imageSource)
        }
        #expect(
            imageMode?.description.hasPrefix("params.promote.if_missing: only in source-keyed mode") == true,
            "\(String(describing: imageMode))")
    }

    @Test func aPutsParamsAreCheckedBeforeAnythingIsReadOrPushed() throws {
        // The build directory is empty and nothing listens on port 1: the ill-typed release
        // is what fails, not the image's absence or a connection.
        try withTemporaryDirectory { directory in
            let input = Data(
                #"{"source":{"repository":"127.0.0.1:1/team/app","git":{"uri":"https://127.0.0.1:1/app.git","branch":"main"}},"params":{"image":"image/oci","release":5}}"#
                    .utf8)
            let error = #expect(throws: InputError.self) {
                _ = try Out(log: Log { _ in }, settleRounds: 1, settleInterval: 0).run(
                    input: input, directory: directory.url)
            }
            #expect(error?.description.hasPrefix("params.release") == true, "\(String(describing: error))")
        }
    }

    @Test func theImmutableTagOfAReleaseCommitsVersion() throws {
        let change = SourceChange(
            commit: try GitCommitID(String(repeating: "c", count: 40)), tagFileValue: "2.0", author: "a", date: Date(),
            message: "m")
        #expect(
            try Out.immutableTagForPromotion(of: change, keyed: keyed(#"["{short_ref}"]"#)).rawValue == "cccccccccccc")
        #expect(
            try Out.immutableTagForPromotion(of: change, keyed: keyed(#"["{tag_file}-{short_ref}"]"#)).rawValue
                == "2.0-cccccccccccc",
            "{tag_file} is the file's value at that commit, as out rendered it")
        let base = #expect(throws: InputError.self) {
            try Out.immutableTagForPromotion(of: change, keyed: keyed("null", trackBase: true))
        }
        #expect(
            base?.description.contains(
                "needs {short_base}, the bases the image was built on, which a commit does not tell") == true,
            "\(String(describing: base))")
    }
}
