import Foundation
import Testing

@testable import GitSource

@Suite("Rewriting a tag file's value in place")
struct TagFileRewriteTests {
    let commit = try! GitCommitID(String(repeating: "a", count: 40))

    @Test(
        arguments: [
            (
                "v.yaml", "tags.base", "# c\ntags:\n  base: 1.2.3 # why\n  other: x\n",
                "# c\ntags:\n  base: 1.3.0 # why\n  other: x\n"
            ),
            ("v.yml", "tags.base", "tags:\n  base: \"1.2.3\"\n", "tags:\n  base: \"1.3.0\"\n"),
            ("v.yaml", "tags.base", "tags: {base: '1.2.3', b: 2}\n", "tags: {base: '1.3.0', b: 2}\n"),
            (
                "v.json", "tags.base", "{\n  \"tags\": {\"base\": \"1.2.3\", \"x\": 1}\n}\n",
                "{\n  \"tags\": {\"base\": \"1.3.0\", \"x\": 1}\n}\n"
            ),
            ("VERSION", nil, "1.2.3\n", "1.3.0\n"),
        ] as [(String, String?, String, String)])
    func rewritesOnlyTheValue(path: String, key: String?, before: String, after: String) throws {
        let spec = TagFileSpec(path: path, key: key)
        let rewritten = try TagFileValue.replacing(before, spec: spec, with: "1.3.0")
        #expect(rewritten == after)
        #expect(try TagFileValue.read(Data(rewritten.utf8), spec: spec, commit: commit) == "1.3.0")
    }

    @Test func refusesWhatCannotBeWrittenSafely() {
        let spec = TagFileSpec(path: "v.yaml", key: "tags.base")
        #expect(throws: GitSourceError.self) {
            try TagFileValue.replacing("tags:\n  base: 1\n", spec: spec, with: "two\nlines")
        }
        #expect(throws: GitSourceError.self) {
            try TagFileValue.replacing("tags:\n  base: 1\n", spec: spec, with: "a\"b")
        }
        #expect(throws: GitSourceError.self) {
            try TagFileValue.replacing("tags:\n  base: |\n    1\n", spec: spec, with: "2")
        }
        #expect(throws: GitSourceError.self) {
            try TagFileValue.replacing("tags:\n  other: 1\n", spec: spec, with: "2")
        }
    }

    @Test func theBumpMessageNamesBothValues() {
        #expect(
            ChangeDetector.bumpMessage("bump {old} to {new} ({new})", old: "1.2.3", new: "1.3.0")
                == "bump 1.2.3 to 1.3.0 (1.3.0)")
        #expect(ChangeDetector.bumpMessage("release", old: "1", new: "2") == "release")
    }
}
