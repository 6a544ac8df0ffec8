import TagPolicy
import Testing

@Suite("Semantic versions and constraints")
struct SemverTests {
    @Test(arguments: ["1", "1.2", "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build.5", "0.0.0", "10.20.30-alpha-b.1"])
    func parses(text: String) throws {
        let version = try #require(SemanticVersion(text))
        #expect(version.original == text)
    }

    @Test(arguments: [
        "", "latest", "1.2.3.4", "01.2.3", "1.02", "1.2.3-", "1.2.3-01", "1..2", "v", "1.2.3+", "a1.2.3", "1.2.3-rc..1",
    ])
    func rejects(text: String) {
        #expect(SemanticVersion(text) == nil, "\(text)")
    }

    @Test func precedenceFollowsSemver() throws {
        let ordered = [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
            "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1", "2",
        ]
        let versions = ordered.map { SemanticVersion($0)! }
        #expect(versions.sorted() == versions)
        #expect(SemanticVersion("v1.2")!.samePrecedence(as: SemanticVersion("1.2.0+x")!))
    }

    @Test(arguments: [
        ("1.2.x", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9", "1.2.3-rc.1"]),
        (">= 1.2, < 2.0", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
        ("^1.2", ["1.2.0", "1.9.0"], ["2.0.0", "1.1.9"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("1.2 - 1.4.5", ["1.2.0", "1.4.5"], ["1.4.6", "1.1.0"]),
        ("<= 1.4", ["1.4.9", "1.0.0"], ["1.5.0"]),
        ("> 1.4", ["1.5.0"], ["1.4.9"]),
        ("!= 1.3.0", ["1.2.0", "1.4.0"], ["1.3.0"]),
        ("1.0.0 || >= 3", ["1.0.0", "3.1.0"], ["2.0.0"]),
        // Masterminds v3: a clause naming a prerelease admits every prerelease in range, not
        // only those of its own major.minor.patch (npm's rule).
        (">= 1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0", "2.0.0", "1.1.0-rc.1"], ["1.0.0-beta.1"]),
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-beta"]),
    ])
    func constraints(text: String, allowed: [String], refused: [String]) throws {
        let constraint = try VersionConstraint(text)
        for version in allowed {
            #expect(constraint.allows(SemanticVersion(version)!), "\(text) should allow \(version)")
        }
        for version in refused {
            #expect(!constraint.allows(SemanticVersion(version)!), "\(text) should refuse \(version)")
        }
    }

    @Test(arguments: ["1.2.q", ">= ", "~> banana", ""])
    func badConstraintsAreNamed(text: String) {
        let error = #expect(throws: VersionConstraint.ValidationError.self) { try VersionConstraint(text) }
        #expect(error?.description.contains("semver_constraint") == true)
    }
}

@Suite("registry-image semver selection")
struct SemverSelectionTests {
    typealias Pair = (tag: String, digest: String)
    func names(_ pairs: [Pair]) -> [String] { pairs.map(\.tag) }

    @Test func orderingAndTheLatestRule() {
        let selection = SemverSelection()
        let tags: [Pair] = [("1.0.0", "A"), ("1.2.1", "B"), ("2.0.0", "C"), ("non-semver", "D"), ("latest", "E")]
        #expect(names(selection.versions(tags)) == ["1.0.0", "1.2.1", "2.0.0", "latest"])
        let shared: [Pair] = [("1.0.0", "A"), ("1.2.1", "B"), ("2.0.0", "C"), ("latest", "C")]
        #expect(names(selection.versions(shared)) == ["1.0.0", "1.2.1", "2.0.0"])
    }

    @Test func aliasesCountOncePerDigest() {
        let tags: [Pair] = [
            ("1", "A"), ("2", "B"), ("2.1", "B"), ("latest", "C"), ("3", "C"), ("3.2", "C"), ("3.2.1", "C"),
            ("3.1", "D"), ("3.1.0", "D"), ("3.0", "E"), ("3.0.0", "E"),
        ]
        #expect(names(SemverSelection().versions(tags)) == ["1", "2.1", "3.0.0", "3.1.0", "3.2.1"])
    }

    @Test func prereleasesAndVariants() {
        let tags: [Pair] = [
            ("1.0.0-alpha.1", "a"), ("1.0.0", "b"), ("1.2.1-beta.1", "c"), ("1.2.1", "d"), ("2.0.0-rc.1", "e"),
            ("2.0.0", "f"), ("1.0.0-foo.1", "g"),
        ]
        #expect(names(SemverSelection().versions(tags)) == ["1.0.0", "1.2.1", "2.0.0"])
        #expect(
            names(SemverSelection(preReleases: true).versions(tags)) == [
                "1.0.0-alpha.1", "1.0.0", "1.2.1-beta.1", "1.2.1", "2.0.0-rc.1", "2.0.0",
            ])
        let same: [Pair] = [("1.0.0-rc.1", "x"), ("1.0.0", "x")]
        #expect(names(SemverSelection(preReleases: true).versions(same)) == ["1.0.0"])

        let variants: [Pair] = [
            ("latest", "1"), ("1.0.0", "2"), ("0.9.0", "3"), ("foo", "4"), ("1.0.0-foo", "4"), ("0.9.0-foo", "5"),
            ("bar", "6"), ("1.0.0-bar", "7"),
        ]
        #expect(names(SemverSelection(variant: "foo").versions(variants)) == ["0.9.0-foo", "1.0.0-foo"])
        let unique: [Pair] = [("0.8.0-foo", "1"), ("foo", "2")]
        #expect(names(SemverSelection(variant: "foo").versions(unique)) == ["0.8.0-foo", "foo"])
    }

    @Test func constraintFiltersAndDropsTheBareTag() throws {
        let selection = SemverSelection(constraint: try VersionConstraint("1.2.x"))
        let tags: [Pair] = [
            ("1.0.0", "a"), ("1.2.1", "b"), ("1.2.2", "c"), ("v1.2.3", "d"), ("2.0.0", "e"), ("latest", "f"),
        ]
        #expect(names(selection.versions(tags)) == ["1.2.1", "1.2.2", "v1.2.3"])
    }
}
