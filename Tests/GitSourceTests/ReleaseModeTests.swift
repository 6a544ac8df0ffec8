import Foundation
import GitSource
import TestSupport
import Testing

/// Release mode, versions from tags.
@Suite struct ReleaseModeTests {
    /// (commit, release) pairs, in order.
    private func releases(_ changes: [SourceChange]) -> [String] {
        changes.map { "\($0.release ?? "-")@\($0.commit.short)" }
    }

    private func release(_ name: String, _ commit: String) -> String {
        "\(name)@\(commit.prefix(12))"
    }

    @Test func tagFilterGivesTagsOrderedByCreation() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["app/a": "1"], minute: 1)
            let c2 = try f.work.change("two", ["app/a": "2"], minute: 2)
            let c3 = try f.work.change("three", ["app/a": "3"], minute: 3)
            let c4 = try f.work.change("four", ["app/a": "4"], minute: 4)
            try f.work.tag("v1.0.0", at: c1, message: "1.0.0", date: FixedDates.at(10))
            try f.work.tag("v1.1.0", at: c3, message: "1.1.0", date: FixedDates.at(20))
            try f.work.tag("build-5", at: c4, message: "not a release", date: FixedDates.at(25))
            // Created last, so it is the newest release although its name sorts first.
            try f.work.tag("v0.9.0", at: c2, message: "0.9.0", date: FixedDates.at(30))
            try f.push()
            let detector = f.detector { $0.tagFilter = "v*" }
            #expect(releases(try detector.changes(since: nil)) == [release("v0.9.0", c2)])
            let later = try detector.changes(since: key(c1, release: "v1.0.0"))
            #expect(releases(later) == [release("v1.0.0", c1), release("v1.1.0", c3), release("v0.9.0", c2)])
            let depth = f.detector {
                $0.tagFilter = "v*"
                $0.versionDepth = 2
            }
            #expect(releases(try depth.changes(since: nil)) == [release("v1.1.0", c3), release("v0.9.0", c2)])
        }
    }

    @Test func tagRegexMatchesWholeNames() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"], minute: 1)
            let c2 = try f.work.change("two", ["a": "2"], minute: 2)
            try f.work.tag("v1.2.0", at: c1)  // lightweight: ordered by the commit date
            try f.work.tag("v1.3.0-rc1", at: c2)
            try f.work.tag("xv1.4.0", at: c2)
            try f.push()
            let detector = f.detector { $0.tagRegex = "v[0-9]+\\.[0-9]+\\.[0-9]+" }
            #expect(releases(try detector.changes(since: nil)) == [release("v1.2.0", c1)])
        }
    }

    @Test func aMovedTagIsFollowed() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"], minute: 1)
            let c2 = try f.work.change("two", ["a": "2"], minute: 2)
            try f.work.tag("v1", at: c1)
            try f.push()
            let detector = f.detector { $0.tagFilter = "v*" }
            #expect(releases(try detector.changes(since: nil)) == [release("v1", c1)])
            try f.work.git("tag", "--force", "v1", c2)
            try f.push()
            #expect(releases(try detector.changes(since: key(c1, release: "v1"))) == [release("v1", c2)])
        }
    }

    @Test func tagsOnUnmergedBranchesAreFound() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"], minute: 1)
            try f.work.tag("v1", at: c1, message: "v1", date: FixedDates.at(10))
            try f.work.branch("release-2", checkout: true)
            let r2 = try f.work.change("release 2 fix", ["a": "2"], minute: 2)
            try f.work.tag("v2", at: r2, message: "v2", date: FixedDates.at(20))
            try f.work.checkout("main")
            try f.work.change("main moves on", ["b": "1"], minute: 3)
            try f.push()
            let anywhere = f.detector {
                $0.branch = nil
                $0.tagFilter = "v*"
            }
            #expect(releases(try anywhere.changes(since: nil)) == [release("v2", r2)])
            #expect(
                releases(try anywhere.changes(since: key(c1, release: "v1"))) == [release("v1", c1), release("v2", r2)])
            // With a branch, only tags merged into it count (as in git-resource).
            let onMain = f.detector { $0.tagFilter = "v*" }
            #expect(releases(try onMain.changes(since: key(c1, release: "v1"))) == [release("v1", c1)])
        }
    }

    @Test func releasesFollowPathsAndMessageFilters() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app", ["app/a": "1"], minute: 1)
            let c2 = try f.work.change("docs", ["docs/a": "1"], minute: 2)
            let c3 = try f.work.change("app [ci skip]", ["app/a": "2"], minute: 3)
            try f.work.tag("v1", at: c1, message: "v1", date: FixedDates.at(10))
            try f.work.tag("v2", at: c2, message: "v2", date: FixedDates.at(20))
            try f.work.tag("v3", at: c3, message: "v3", date: FixedDates.at(30))
            try f.push()
            let detector = f.detector {
                $0.paths = ["app/"]
                $0.tagFilter = "v*"
            }
            #expect(releases(try detector.changes(since: nil)) == [release("v1", c1)])
            #expect(releases(try detector.changes(since: key(c1, release: "v1"))) == [release("v1", c1)])
        }
    }

    @Test func aDeletedReleaseGivesTheNewestRelease() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"], minute: 1)
            let c2 = try f.work.change("two", ["a": "2"], minute: 2)
            try f.work.tag("v1", at: c1, message: "v1", date: FixedDates.at(10))
            try f.work.tag("v2", at: c2, message: "v2", date: FixedDates.at(20))
            try f.push()
            let detector = f.detector {
                $0.tagFilter = "v*"
                $0.tagFile = TagFileSpec(path: "a")
            }
            #expect(try detector.changes(since: nil).map(\.tagFileValue) == ["2"])
            try f.work.git("tag", "--delete", "v1")
            try f.remote.git("tag", "--delete", "v1")
            let changes = try detector.changes(since: key(c1, release: "v1"))
            #expect(releases(changes) == [release("v2", c2)])
            #expect(changes.map(\.tagFileValue) == ["2"])
        }
    }
}
