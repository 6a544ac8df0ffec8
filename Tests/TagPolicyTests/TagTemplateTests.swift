import OCI
import TagPolicy
import Testing

@Suite("Tag templates, sanitising and release tags")
struct TagTemplateTests {
    let commit = "0123456789abcdef0123456789abcdef01234567"

    @Test func placeholdersRender() throws {
        let base = try Digest("sha256:" + String(repeating: "ab", count: 32))
        let context = TagContext(commit: commit, branch: "feature/Login#12", base: base, tagFile: "2.0.1")
        #expect(try TagTemplate("{short_ref}").render(context).rawValue == "0123456789ab")
        #expect(try TagTemplate("{ref}").render(context).rawValue == commit)
        #expect(try TagTemplate("{branch}").render(context).rawValue == "feature-Login-12")
        #expect(try TagTemplate("{branch}-latest").render(context).rawValue == "feature-Login-12-latest")
        #expect(try TagTemplate("{short_ref}-{short_base}").render(context).rawValue == "0123456789ab-abababababab")
        #expect(try TagTemplate("{tag_file}-base").render(context).rawValue == "2.0.1-base")
        #expect(
            try TagTemplate("{release}-base").render(TagContext(commit: commit, release: "v2.1.0")).rawValue
                == "v2.1.0-base")
        #expect(throws: TagTemplate.ValidationError.self) { try TagTemplate("{release}-base").render(context) }
    }

    @Test func badTemplatesAndMissingValuesAreNamed() throws {
        #expect(throws: TagTemplate.ValidationError.self) { try TagTemplate("{sha}") }
        #expect(throws: TagTemplate.ValidationError.self) { try TagTemplate("{branch") }
        #expect(throws: TagTemplate.ValidationError.self) { try TagTemplate("") }
        let error = #expect(throws: TagTemplate.ValidationError.self) {
            try TagTemplate("{branch}").render(TagContext(commit: commit))
        }
        #expect(error?.description.contains("needs {branch}") == true)
    }

    @Test(arguments: [
        ("main", "main"), ("feature/foo", "feature-foo"), ("feat//a b#c", "feat-a-b-c"), ("-.-leading", "leading"),
        (".hidden", "hidden"), ("UPPER_case.1-2", "UPPER_case.1-2"), ("ünïcödé", "n-c-d"), ("///", "_"), ("", "_"),
        ("feature/", "feature"),
    ])
    func sanitises(branch: String, expected: String) {
        #expect(TagSanitizer.sanitize(branch) == expected)
    }

    @Test func longNamesAreCutWithAHashSoTheyStayDistinct() throws {
        let a = String(repeating: "x", count: 200) + "-one"
        let b = String(repeating: "x", count: 200) + "-two"
        let ta = TagSanitizer.sanitize(a)
        let tb = TagSanitizer.sanitize(b)
        #expect(ta.count == 128 && tb.count == 128)
        #expect(ta != tb)
        #expect((try? Tag(ta)) != nil && (try? Tag(tb)) != nil)
        #expect(TagSanitizer.sanitize(a) == ta, "deterministic")
    }

    @Test(arguments: [
        ([String](), ["1.2.3", "1.2", "1", "stable"]),
        (["1.2.4"], ["1.2.3"]),
        (["1.3.0"], ["1.2.3", "1.2"]),
        (["2.0.0"], ["1.2.3", "1.2", "1"]),
        (["2.0.0-rc.1"], ["1.2.3", "1.2", "1", "stable"]),
        (["1.2.2", "1.1.0", "0.9.0"], ["1.2.3", "1.2", "1", "stable"]),
        // A commit tag of 12 digits (a short ref with no hex letter), or an alias, is no release.
        (["474839201847", "2", "1.9"], ["1.2.3", "1.2", "1", "stable"]),
        (["v2.0.0"], ["1.2.3", "1.2", "1"]),
    ])
    func releaseAliasesNeverStealFromNewerReleases(existing: [String], expected: [String]) {
        let tags = ReleaseTags.tags(for: SemanticVersion("1.2.3")!, existing: existing.map { SemanticVersion($0)! })
        #expect(tags == expected)
    }

    @Test func prereleaseAndVPrefixedReleases() {
        #expect(ReleaseTags.tags(for: SemanticVersion("2.0.0-rc.1")!, existing: []) == ["2.0.0-rc.1"])
        #expect(
            ReleaseTags.tags(for: SemanticVersion("v0.1.1")!, existing: []) == [
                "0.1.1", "v0.1.1", "0.1", "0", "stable",
            ])
    }
}
