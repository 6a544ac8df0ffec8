import TagPolicy
import Testing

/// `semver_constraint` against the examples Masterminds/semver v3 documents in its README
/// and checks in `TestConstraintsCheck`: registry-image passes the constraint to that
/// library, so each row must come out the same here.
@Suite("semver_constraint as Masterminds v3 reads it")
struct MastermindsConstraintTests {
    @Test(arguments: [
        ("*", "1.2.3", true), ("~0.0.0", "1.2.3", true), ("0.x.x", "1.2.3", false), ("0.0.x", "1.2.3", false),
        ("0.0.0", "1.2.3", false), ("^0.0.0", "1.2.3", false), ("= 2.0", "1.2.3", false), ("= 2.0", "2.0.0", true),
        ("4.1", "4.1.0", true), ("4.1.x", "4.1.3", true), ("1.x", "1.4", true),
        ("!=4.1", "4.1.0", false), ("!=4.1-alpha", "4.1.0-alpha", false), ("!=4.1-alpha", "4.1.1-alpha", false),
        ("!=4.1-alpha", "4.1.0", true), ("!=4.1", "5.1.0", true), ("!=4.x", "5.1.0", true), ("!=4.x", "4.1.0", false),
        ("!=4.1.x", "4.2.0", true), ("!=4.2.x", "4.2.3", false),
        (">1.1", "4.1.0", true), (">1.1", "1.1.0", false), ("<1.1", "0.1.0", true), ("<1.1", "1.1.0", false),
        ("<1.1", "1.1.1", false), ("<1.x", "1.1.1", false), ("<1.x", "0.1.1", true), ("<1.x", "2.0.0", false),
        ("<1.1.x", "1.2.1", false), ("<1.1.x", "1.1.500", false), ("<1.1.x", "1.0.500", true),
        ("<1.2.x", "1.1.1", true),
        (">=1.1", "4.1.0", true), (">=1.1", "4.1.0-beta", false), (">=1.1", "1.1.0", true), (">=1.1", "0.0.9", false),
        ("<=1.1", "0.1.0", true), ("<=1.1", "0.1.0-alpha", false), ("<=1.1-a", "0.1.0-alpha", true),
        ("<=1.1", "1.1.0", true),
        ("<=1.x", "1.1.0", true), ("<=2.x", "3.0.0", false), ("<=1.1", "1.1.1", true), ("<=1.1.x", "1.2.500", false),
        ("<=4.5", "3.4.0", true), ("<=4.5", "3.7.0", true), ("<=4.5", "4.6.3", false),
        (">1.1, <2", "1.1.1", false), (">1.1, <2", "1.2.1", true), (">1.1, <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3", "1.2.3", false), (">1.1 <2", "1.2.1", true), (">1.1    <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true), (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true), (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
        (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true), ("> 1.1, <     2", "1.1.1", false),
        ("> 1.1    <3", "4.3.2", false),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true), (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
        (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false), (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
        (">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", false),
        (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
        ("1.1 - 2", "1.1.1", true), ("1.5.0 - 4.5", "3.7.0", true), ("1.1-3", "4.3.2", false),
        ("^1.1", "1.1.1", true), ("^1.1", "4.3.2", false), ("^1.x", "1.1.1", true), ("^2.x", "1.1.1", false),
        ("^1.x", "2.1.1", false), ("^1.x", "1.1.1-beta1", false), ("^1.1.2-alpha", "1.2.1-beta1", true),
        ("^1.2.x-alpha", "1.1.1-beta1", false), ("^0.0.1", "0.0.1", true), ("^0.0.1", "0.3.1", false),
        ("~*", "2.1.1", true), ("~1", "2.1.1", false), ("~1", "1.3.5", true), ("~1", "1.4", true),
        ("~1.x", "2.1.1", false),
        ("~1.x", "1.3.5", true), ("~1.x", "1.4", true), ("~1.1", "1.1.1", true), ("~1.1", "1.1.1-alpha", false),
        ("~1.1-alpha", "1.1.1-beta", true), ("~1.1.1-beta", "1.1.1-alpha", false), ("~1.1.1-beta", "1.1.1", true),
        ("~1.2.3", "1.2.5", true), ("~1.2.3", "1.2.2", false), ("~1.2.3", "1.3.2", false), ("~1.1", "1.2.3", false),
        ("~1.3", "2.4.5", false), ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true), ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
    ])
    func mastermindsCheck(constraint: String, version: String, allowed: Bool) throws {
        let parsed = try VersionConstraint(constraint)
        let semver = try #require(SemanticVersion(version))
        #expect(parsed.allows(semver) == allowed, "\(constraint) with \(version)")
    }

    /// The README's own rule: `>=1.2.3` skips prereleases, `>=1.2.3-0` finds them, in
    /// any major.minor.patch after it.
    @Test func aConstraintWithoutAPrereleaseSkipsThem() throws {
        let plain = try VersionConstraint(">= 1.2.3")
        let zero = try VersionConstraint(">= 1.2.0-0")
        for text in ["1.2.3-beta.1", "1.5.0-rc.1", "2.0.0-alpha"] {
            #expect(!plain.allows(SemanticVersion(text)!), "\(text)")
            #expect(zero.allows(SemanticVersion(text)!), "\(text)")
        }
        #expect(!zero.allows(SemanticVersion("1.1.9-rc.1")!))
        // The group rule is per `||` alternative: only the alternative naming a prerelease admits them.
        let split = try VersionConstraint("< 1.0.0-0 || >= 2")
        #expect(split.allows(SemanticVersion("0.9.0-rc.1")!))
        #expect(!split.allows(SemanticVersion("2.1.0-rc.1")!))
    }

    @Test(arguments: ["1.2.q", ">= ", "~> banana", "", ">=1.2 ||", "1.2.3 foo"])
    func unreadableConstraintsAreRefused(text: String) {
        let error = #expect(throws: VersionConstraint.ValidationError.self) { try VersionConstraint(text) }
        #expect(error?.description.contains("semver_constraint") == true)
    }
}

@Suite("pre_releases and pre_release_prefixes as registry-image filters")
struct PreReleasePrefixTests {
    @Test func extraPrefixesAddToTheBuiltInOnes() {
        let selection = SemverSelection(preReleases: true, preReleasePrefixes: ["build."])
        #expect(selection.version(of: "1.0.0-build.3") != nil)
        #expect(selection.version(of: "1.0.0-rc.1") != nil)
        #expect(selection.version(of: "1.0.0-alpine") == nil)
        // With extra prefixes, a `-` inside the prerelease no longer marks a variant.
        #expect(selection.version(of: "1.0.0-rc.1-alpine") != nil)
        #expect(SemverSelection(preReleases: true).version(of: "1.0.0-rc.1-alpine") == nil)
    }

    @Test func thePrefixIsOfTheWholePrereleaseText() {
        // registry-image compares against `rc.1.x`, not only its first identifier: a dotted prefix works.
        let selection = SemverSelection(preReleases: true, preReleasePrefixes: ["nightly.2024"])
        #expect(selection.version(of: "1.0.0-nightly.2024.5") != nil)
        #expect(selection.version(of: "1.0.0-nightly.2023.5") == nil)
        #expect(SemverSelection().version(of: "1.0.0-rc.1") == nil)
    }

    @Test func aPrereleaseConstraintWithPreReleasesReturnsThem() throws {
        let selection = SemverSelection(constraint: try VersionConstraint(">= 1.2.0-0"), preReleases: true)
        let tags: [(tag: String, digest: String)] = [
            ("1.1.0", "a"), ("1.2.0-rc.1", "b"), ("1.2.0", "c"), ("1.3.0-beta.2", "d"), ("latest", "c"),
        ]
        #expect(selection.versions(tags).map(\.tag) == ["1.2.0-rc.1", "1.2.0", "1.3.0-beta.2"])
        let without = SemverSelection(constraint: try VersionConstraint(">= 1.2.0-0"))
        #expect(without.versions(tags).map(\.tag) == ["1.2.0"])
    }
}
