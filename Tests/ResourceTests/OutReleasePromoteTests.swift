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
        try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: name, labels: ["org.opencontainers.image.revision": commit])
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
                    _ = try repository.commit("base", files: ["base/VERSION": "v2.1.0\n", "images/app/Dockerfile": "FROM scratch\n"])
                    try repository.push()
                    let source = #"{"repository":"\#(registry.host)/team/app","insecure":true,"tag_file":"base/VERSION","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                    let put = directory.appending("put")
                    try FileManager.default.createDirectory(at: put.appendingPathComponent("base-release"), withIntermediateDirectories: true)
                    try Data("v2.1.1\n".utf8).write(to: put.appendingPathComponent("base-release/release"))

                    let version = try outVersion(runOut(#"{"source":\#(source),"params":{"bump_tag_file":"base-release/release"}}"#, directory: put))
                    #expect(version["tag_file"] == "v2.1.1", "the file's value, not a minor bump")
                    let head = try remote.git("rev-parse", "refs/heads/main").trimmingCharacters(in: .whitespacesAndNewlines)
                    #expect(version["ref"] == head)
                    #expect(try remote.git("show", "\(head):base/VERSION") == "v2.1.1")

                    let missing = try runOut(#"{"source":\#(source),"params":{"bump_tag_file":"base-relase/release"}}"#, directory: put)
                    #expect(missing.status == 1)
                    #expect(missing.stderrString.hasPrefix("out: params.bump_tag_file: \"base-relase/release\" names no file in ") && missing.stderrString.filter { $0 == "\n" }.count == 1,
                            "\(missing.stderrString)")
                    #expect(try outVersion(runOut(#"{"source":\#(source),"params":{"bump_tag_file":"minor"}}"#, directory: put))["tag_file"] == "v2.2.0",
                            "keywords are kept")
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
                    let source = #"{"repository":"\#(registry.host)/team/app","insecure":true,"tags":["{short_ref}"],"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/x/"]}}"#
                    let first = try build(directory, "a", commit: a)
                    _ = try outVersion(runOut(#"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#, directory: first))
                    let released = try #require(try digest(registry, "v1.0.0"))
                    _ = try outVersion(runOut(#"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#, directory: first))
                    let refused = try runOut(#"{"source":\#(source),"params":{"image":"image/oci","release":"v1.0.0"}}"#, directory: try build(directory, "c", commit: c))
                    #expect(refused.status == 1)
                    #expect(refused.stderrString.hasPrefix("out: params.release: release team/app:1.0.0 already points at \(released), not at sha256:"), "\(refused.stderrString)")
                    #expect(try digest(registry, String(c.prefix(12))) == nil, "refused before pushing anything")
                    for tag in ["1.0.0", "v1.0.0", "stable"] { #expect(try digest(registry, tag) == released, "\(tag)") }
                }
            }
        }
    }

    // MARK: - The decisions, in process

    @Test func aFullReleaseTagNeverMoves() throws {
        let ours = Digest.sha256(Data("ours".utf8)), theirs = Digest.sha256(Data("theirs".utf8))
        #expect(Out.releaseTagRefusal(repository: app, tag: "1.2.3", existing: nil, digest: ours) == nil)
        #expect(Out.releaseTagRefusal(repository: app, tag: "1.2.3", existing: ours, digest: ours) == nil, "the same image again")
        #expect(Out.releaseTagRefusal(repository: app, tag: "v1.2.3", existing: theirs, digest: ours)
            == "release team/app:v1.2.3 already points at \(theirs), not at \(ours); a release tag never moves to another image: release a new version instead")
        #expect(ReleaseTags.immutableTags(for: try #require(SemanticVersion("v1.2.3"))) == ["1.2.3", "v1.2.3"])
        #expect(ReleaseTags.immutableTags(for: try #require(SemanticVersion("1.2.3-rc.1"))) == ["1.2.3-rc.1"])
    }

    @Test func whatBumpTagFileAsksFor() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(at: directory.appending("base-release"), withIntermediateDirectories: true)
            try Data(" v2.1.1\n".utf8).write(to: directory.appending("base-release/release"))
            try Data("\n".utf8).write(to: directory.appending("base-release/empty"))
            try Data("minor\n".utf8).write(to: directory.appending("word"))
            #expect(try Out.bumpRequest("minor", directory: directory.url) == .keyword("minor"))
            #expect(try Out.bumpRequest("base-release/release", directory: directory.url) == .value("v2.1.1"))
            #expect(try Out.bumpRequest("3.0.0-rc.1", directory: directory.url) == .value("3.0.0-rc.1"))
            #expect(try Out.bumpRequest("word", directory: directory.url) == .value("minor"), "a file's content is a value, never a keyword")
            #expect(throws: InputError.self) { try Out.bumpRequest("base-release/empty", directory: directory.url) }
            #expect(throws: InputError.self) { try Out.bumpRequest("missing-get/release", directory: directory.url) }
            #expect(try Out.bumped("v2.1.0", .value("v2.1.1")) == "v2.1.1")
            #expect(try Out.bumped("v2.1.0", .keyword("minor")) == "v2.2.0")
        }
    }
}
