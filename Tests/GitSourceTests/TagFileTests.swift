import Foundation
import GitSource
import TestSupport
import Testing

/// Tag file values per commit, the tag file always watched, clear errors.
@Suite struct TagFileTests {
    @Test func aPlainTagFileIsWatchedAndGivesItsTrimmedContentPerCommit() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app and version", ["app/a": "1", "VERSION": "1.0\n"])
            let c2 = try f.work.change("version only", ["VERSION": "  1.1 \n"])
            try f.work.change("docs", ["docs/x": "1"])
            try f.push()
            let detector = f.detector {
                $0.paths = ["app/"]
                $0.tagFile = TagFileSpec(path: "VERSION")
            }
            let first = try detector.changes(since: nil)
            #expect(commits(first) == [c2])
            #expect(first.map(\.tagFileValue) == ["1.1"])
            let later = try detector.changes(since: key(c1))
            #expect(commits(later) == [c1, c2])
            #expect(later.map(\.tagFileValue) == ["1.0", "1.1"])
        }
    }

    @Test func aYAMLTagFileWithADottedKeyIsWatchedEvenWhenIgnored() async throws {
        try await withGitFixture { f in
            let file = "prebuilt-config/bitops-tag.yaml"
            let c1 = try f.work.change(
                "base", ["base/Dockerfile": "FROM scratch", file: "tags:\n  bitops_base: 2.10\n"])
            try f.work.change("other config", ["prebuilt-config/other.yaml": "x: 1\n"])
            let c3 = try f.work.change("bump", [file: "tags:\n  bitops_base: '2.11'\n  other: 1\n"])
            let c4 = try f.work.change("base again", ["base/Dockerfile": "FROM busybox"])
            try f.push()
            let detector = f.detector {
                $0.ignorePaths = ["prebuilt-config/"]
                $0.tagFile = TagFileSpec(path: file, key: "tags.bitops_base")
            }
            let changes = try detector.changes(since: key(c1))
            #expect(commits(changes) == [c1, c3, c4])
            // The scalar as written: 2.10 is not turned into the number 2.1.
            #expect(changes.map(\.tagFileValue) == ["2.10", "2.11", "2.11"])
        }
    }

    @Test func aJSONTagFileWithADottedKey() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change(
                "json", ["images/app/config.json": #"{"image": {"tag": "v3", "n": 7}, "a.b": {"c": true}}"#])
            try f.push()
            let tag = f.detector {
                $0.paths = ["images/app/"]
                $0.tagFile = TagFileSpec(path: "images/app/config.json", key: "image.tag")
            }
            #expect(try tag.changes(since: nil).map(\.tagFileValue) == ["v3"])
            let number = f.detector { $0.tagFile = TagFileSpec(path: "images/app/config.json", key: "image.n") }
            #expect(try number.changes(since: key(c1)).map(\.tagFileValue) == ["7"])
            let dotted = f.detector { $0.tagFile = TagFileSpec(path: "./images/app/config.json", key: "a.b.c") }
            #expect(try dotted.changes(since: nil).map(\.tagFileValue) == ["true"])
        }
    }

    @Test func tagFileValuesAreReadFromAShallowBloblessCache() async throws {
        try await withGitFixture { f in
            for index in 1...40 { try f.work.change("old \(index)", ["old/\(index)": "x"]) }
            let c1 = try f.work.change("version 1", ["VERSION": "1"])
            for index in 1...12 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            let c2 = try f.work.change("version 2", ["VERSION": "2"])
            for index in 13...20 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            try f.push()
            let detector = f.detector(policy: FetchPolicy(initialDepth: 2, completeHistoryAbove: 512)) {
                $0.paths = ["nothing-else/"]
                $0.tagFile = TagFileSpec(path: "VERSION")
            }
            let first = try detector.changes(since: nil)
            #expect(commits(first) == [c2])
            #expect(first.map(\.tagFileValue) == ["2"])
            let cache = try FileManager.default.contentsOfDirectory(
                atPath: f.cacheRoot.appendingPathComponent("slipway-git").path
            )
            .first { !$0.hasSuffix(".lock") }
            let shallow = f.cacheRoot.appendingPathComponent("slipway-git/\(try #require(cache))/shallow")
            #expect(FileManager.default.fileExists(atPath: shallow.path), "the cache should still be shallow")
            let later = try detector.changes(since: key(c1))
            #expect(commits(later) == [c1, c2])
            #expect(later.map(\.tagFileValue) == ["1", "2"])
        }
    }

    @Test func aMissingTagFileIsAnErrorNamingTheFileAndTheCommit() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("no version yet", ["app/a": "1"])
            try f.work.change("version", ["VERSION": "1.0"])
            try f.push()
            let detector = f.detector { $0.tagFile = TagFileSpec(path: "VERSION") }
            #expect(try detector.changes(since: nil).map(\.tagFileValue) == ["1.0"])
            let error = try #require(throws: GitSourceError.self) { try detector.changes(since: key(c1)) }
            #expect(error.kind == .unusableTagFile)
            #expect(error.message.contains("\"VERSION\""))
            #expect(error.message.contains(String(c1.prefix(12))))
        }
    }

    @Test func aMissingKeyIsAnErrorNamingTheKeyAndTheFile() async throws {
        try await withGitFixture { f in
            try f.work.change("tags", ["tags.yaml": "tags:\n  base: 1\n"])
            try f.push()
            let detector = f.detector { $0.tagFile = TagFileSpec(path: "tags.yaml", key: "tags.bitops_base") }
            let error = try #require(throws: GitSourceError.self) { try detector.changes(since: nil) }
            #expect(error.kind == .unusableTagFile)
            #expect(error.message.contains("\"tags.yaml\""))
            #expect(error.message.contains("\"tags.bitops_base\""))
        }
    }

    @Test func theSameCommitAlwaysYieldsTheSameChange() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["VERSION": "1", "app/a": "1"], minute: 1)
            try f.work.change("two", ["VERSION": "2"], minute: 2)
            try f.push()
            let configuration = f.configuration { $0.tagFile = TagFileSpec(path: "VERSION") }
            let first = try f.detector(configuration, cacheRoot: f.directory.appending("cache-a")).changes(
                since: key(c1))
            let second = try f.detector(configuration, cacheRoot: f.directory.appending("cache-b")).changes(
                since: key(c1))
            let again = try f.detector(configuration, cacheRoot: f.directory.appending("cache-a")).changes(
                since: key(c1))
            #expect(first.count == 2)
            #expect(first == second)
            #expect(first == again)
        }
    }
}

/// Tag file parsing, without git.
@Suite struct TagFileValueTests {
    @Test(
        arguments: [
            ("tags.yaml", "tags:\n  base: 1.10\n", "tags.base", "1.10"),
            ("tags.yml", "a:\n  b.c: x\n", "a.b.c", "x"),
            ("list.yaml", "tags:\n  - first\n  - second\n", "tags.1", "second"),
            ("plain.yaml", "just-a-scalar\n", nil, "just-a-scalar"),
            ("v.json", #"{"a": {"b": "1.2.3"}}"#, "a.b", "1.2.3"),
            ("v.json", #"{"a": false}"#, "a", "false"),
            ("VERSION", "\n 1.2.3 \n\n", nil, "1.2.3"),
        ] as [(String, String, String?, String)])
    func values(file: String, content: String, key: String?, expected: String) throws {
        let spec = TagFileSpec(path: file, key: key)
        let commit = try GitCommitID(String(repeating: "a", count: 40))
        #expect(try readTagFile(content, spec: spec, commit: commit) == expected)
    }

    @Test(
        arguments: [
            ("tags.yaml", "tags:\n  base:\n    x: 1\n", "tags.base", "is a mapping"),
            ("tags.yaml", "tags:\n  base: ~\n", "tags.base", "is null"),
            ("tags.yaml", "tags: [unclosed\n", "tags", "not valid YAML"),
            ("v.json", #"{"a": [1]}"#, "a", "is a list"),
            ("v.json", "{", "a", "not valid JSON"),
            ("VERSION", "  \n", nil, "is empty"),
            ("VERSION", "1\n2\n", nil, "several lines"),
        ] as [(String, String, String?, String)])
    func errors(file: String, content: String, key: String?, expected: String) throws {
        let spec = TagFileSpec(path: file, key: key)
        let commit = try GitCommitID(String(repeating: "b", count: 40))
        let error = try #require(throws: GitSourceError.self) { try readTagFile(content, spec: spec, commit: commit) }
        #expect(error.kind == .unusableTagFile)
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(error.message.contains(file))
    }
}

private func readTagFile(_ content: String, spec: TagFileSpec, commit: GitCommitID) throws -> String {
    try spec.value(from: Data(content.utf8), at: commit)
}
