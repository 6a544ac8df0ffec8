import Foundation
import GitSource
import TestSupport
import Testing

/// One scenario per rule of the git engine's contract (docs/architecture.md, "The git engine"), each against a real repository
/// served as `file://`, each with the exact list of commits expected.
@Suite struct BranchModeTests {
    @Test func firstCheckReturnsOnlyTheNewestMatchingCommit() async throws {
        try await withGitFixture { f in
            try f.work.change("app 1", ["app/a": "1"])
            let app2 = try f.work.change("app 2", ["app/a": "2"])
            try f.work.change("docs", ["docs/x": "1"])
            try f.push()
            let detector = f.detector { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: nil)) == [app2])
        }
    }

    @Test func laterCheckReturnsTheGivenVersionAndEveryNewerMatchOldestFirst() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app 1", ["app/a": "1"])
            try f.work.change("docs 1", ["docs/x": "1"])
            let c3 = try f.work.change("app 2", ["app/a": "2"])
            try f.work.change("docs 2", ["docs/x": "2"])
            let c5 = try f.work.change("app 3", ["app/a": "3"])
            try f.push()
            let detector = f.detector { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: key(c1))) == [c1, c3, c5])
            #expect(commits(try detector.changes(since: key(c3))) == [c3, c5])
            #expect(commits(try detector.changes(since: key(c5))) == [c5])
        }
    }

    @Test func givenVersionThatNoLongerMatchesIsLeftOut() async throws {
        try await withGitFixture { f in
            try f.work.change("app 1", ["app/a": "1"])
            let docs = try f.work.change("docs", ["docs/x": "1"])
            let app2 = try f.work.change("app 2", ["app/a": "2"])
            try f.push()
            // The version came from before `paths` was set: it is not a match any more.
            let detector = f.detector { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: key(docs))) == [app2])
        }
    }

    @Test func aDirectoryPathMatchesEverythingBelowItAndNothingBeside() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("deep", ["app/x/y": "1"])
            try f.work.change("sibling with the same prefix", ["apple/z": "1"])
            try f.work.change("file with the same prefix", ["application.txt": "1"])
            try f.push()
            let detector = f.detector { $0.paths = ["app"] }
            #expect(commits(try detector.changes(since: nil)) == [c1])
            #expect(commits(try detector.changes(since: key(c1))) == [c1])
        }
    }

    @Test func aStarCrossesSlashes() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("nested txt", ["images/a/b.txt": "1"])
            try f.work.change("md", ["images/a/b.md": "1"])
            try f.work.change("txt elsewhere", ["other/c.txt": "1"])
            try f.push()
            let detector = f.detector { $0.paths = ["images/*.txt"] }
            #expect(commits(try detector.changes(since: nil)) == [c1])
        }
    }

    @Test func pathspecMagicWorks() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one level", ["images/a/Dockerfile": "FROM scratch"])
            try f.work.change("two levels", ["images/a/b/Dockerfile": "FROM scratch"])
            let c3 = try f.work.change("upper case", ["IMAGES/c/Dockerfile": "FROM scratch"])
            try f.push()
            // `:(glob)`: `*` stays within one directory level.
            let glob = f.detector { $0.paths = [":(glob)images/*/Dockerfile"] }
            #expect(commits(try glob.changes(since: key(c1))) == [c1])
            // `:(icase)`: case-insensitive.
            let icase = f.detector { $0.paths = [":(icase)images/c"] }
            #expect(commits(try icase.changes(since: nil)) == [c3])
        }
    }

    @Test func aNameWithSpacesIsOnePathspec() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("the file", ["my dir/file one.txt": "1"])
            // What git-resource's word splitting would have matched: `my`, `dir/file`, `one.txt`.
            try f.work.change("the words", ["my": "1", "dir/file": "1", "one.txt": "1"])
            try f.push()
            let detector = f.detector { $0.paths = ["my dir/file one.txt"] }
            #expect(commits(try detector.changes(since: nil)) == [c1])
            #expect(commits(try detector.changes(since: key(c1))) == [c1])
        }
    }

    @Test func ignorePathsRemoveChangesThatOnlyTouchThem() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("code", ["app/main": "1"])
            try f.work.change("readme only", ["app/README.md": "1"])
            let c3 = try f.work.change("both", ["app/README.md": "2", "app/main": "2"])
            try f.work.change("readme again", ["app/README.md": "3"])
            try f.push()
            let detector = f.detector {
                $0.paths = ["app/"]
                $0.ignorePaths = ["app/README.md"]
            }
            #expect(commits(try detector.changes(since: nil)) == [c3])
            #expect(commits(try detector.changes(since: key(c1))) == [c1, c3])
        }
    }

    @Test func ignorePathsAloneWatchEverythingElse() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("code", ["src/a": "1"])
            try f.work.change("docs only", ["docs/a": "1"])
            let c3 = try f.work.change("both", ["docs/a": "2", "src/a": "2"])
            try f.work.change("glob-ignored", ["notes/x.md": "1"])
            try f.push()
            let detector = f.detector { $0.ignorePaths = ["docs/", ":(glob)**/*.md"] }
            #expect(commits(try detector.changes(since: key(c1))) == [c1, c3])
        }
    }

    @Test func aMergeIsOneChangeOnTheFirstParentChain() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app 1", ["app/a": "1"])
            try f.work.branch("feature", checkout: true)
            try f.work.change("feature 1", ["app/b": "1"])
            try f.work.change("feature 2", ["app/b": "2"])
            try f.work.checkout("main")
            try f.work.change("docs", ["docs/x": "1"])
            let merge = try f.work.merge("feature")
            try f.work.branch("docs-feature", checkout: true)
            try f.work.change("docs feature", ["docs/y": "1"])
            try f.work.checkout("main")
            try f.work.merge("docs-feature")  // touches no watched path: no change
            try f.push()
            let detector = f.detector { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: nil)) == [merge])
            #expect(commits(try detector.changes(since: key(c1))) == [c1, merge])
        }
    }

    @Test(arguments: [FetchPolicy.default, FetchPolicy(initialDepth: 1, completeHistoryAbove: 4)])
    func aVersionThatVanishedAfterAForcePushGivesTheNewestMatch(policy: FetchPolicy) async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app 1", ["app/a": "1"])
            for index in 2...6 { try f.work.change("app \(index)", ["app/a": "\(index)"]) }
            let gone = try f.work.change("app 7", ["app/a": "7"])
            try f.push()
            let detector = f.detector(policy: policy) { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: nil)) == [gone])

            try f.work.git("reset", "--quiet", "--hard", c1)
            let replacement = try f.work.change("app rewritten", ["app/a": "rewritten"])
            try f.work.change("docs", ["docs/x": "1"])
            try f.push()
            #expect(commits(try detector.changes(since: key(gone))) == [replacement])
            // The cache carries on from the rewritten branch.
            let next = try f.work.change("app after", ["app/a": "after"])
            try f.push()
            #expect(commits(try detector.changes(since: key(replacement))) == [replacement, next])
        }
    }

    @Test func ciSkipMarkersSkipCommitsUnlessDisabled() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app 1", ["app/a": "1"])
            let skip1 = try f.work.change("[ci skip] app 2", ["app/a": "2"])
            let skip2 = try f.work.change("app 3 [skip ci]", ["app/a": "3"])
            let skip3 = try f.work.change("app 4\n\nbody line [ci skip]", ["app/a": "4"])
            let skip4 = try f.work.change("app 5 [ci\tskip]", ["app/a": "5"])
            let upper = try f.work.change("app 6 [CI SKIP]", ["app/a": "6"])  // case matters, as in git-resource
            let skip5 = try f.work.change("app 7 [skip ci]", ["app/a": "7"])
            try f.push()
            let skipping = f.detector { $0.paths = ["app/"] }
            #expect(commits(try skipping.changes(since: nil)) == [upper])
            #expect(commits(try skipping.changes(since: key(c1))) == [c1, upper])
            let disabled = f.detector {
                $0.paths = ["app/"]
                $0.disableCISkip = true
            }
            #expect(commits(try disabled.changes(since: nil)) == [skip5])
            #expect(commits(try disabled.changes(since: key(c1))) == [c1, skip1, skip2, skip3, skip4, upper, skip5])
        }
    }

    @Test func commitFilterIncludeAndExcludeMatchTheMessage() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("feat: a", ["app/a": "1"])
            try f.work.change("fix: b", ["app/a": "2"])
            let c3 = try f.work.change("feat: c", ["app/a": "3"])
            try f.work.change("feat: d [ci skip]", ["app/a": "4"])
            try f.push()
            let include = f.detector { $0.commitFilter = CommitFilter(include: ["^feat"]) }
            #expect(commits(try include.changes(since: key(c1))) == [c1, c3])
            let exclude = f.detector { $0.commitFilter = CommitFilter(exclude: ["^fix"]) }
            #expect(commits(try exclude.changes(since: key(c1))) == [c1, c3])
            let allMatch = f.detector {
                $0.commitFilter = CommitFilter(include: ["feat", "c$"], includeAllMatch: true)
            }
            #expect(commits(try allMatch.changes(since: key(c1))) == [c3])
            // Include, exclude and [ci skip] together need several passes; the first check
            // still finds the newest commit that passes all of them.
            let both = f.detector { $0.commitFilter = CommitFilter(include: ["^feat"], exclude: ["c$"]) }
            #expect(commits(try both.changes(since: nil)) == [c1])
        }
    }

    @Test func versionDepthReturnsTheNewestMatchesOldestFirst() async throws {
        try await withGitFixture { f in
            try f.work.change("app 1", ["app/a": "1"])
            let c2 = try f.work.change("app 2", ["app/a": "2"])
            try f.work.change("docs", ["docs/x": "1"])
            let c4 = try f.work.change("app 3", ["app/a": "3"])
            try f.work.change("docs 2", ["docs/x": "2"])
            let c6 = try f.work.change("app 4", ["app/a": "4"])
            try f.push()
            let detector = f.detector {
                $0.paths = ["app/"]
                $0.versionDepth = 3
            }
            #expect(commits(try detector.changes(since: nil)) == [c2, c4, c6])
            // With a version, version_depth does not cut the list.
            #expect(commits(try detector.changes(since: key(c2))) == [c2, c4, c6])
        }
    }

    @Test func anAmendedSingleRootCommitDoesNotStall() async throws {
        try await withGitFixture { f in
            let root = try f.work.change("root", ["app/a": "1"])
            try f.push()
            let detector = f.detector()
            #expect(commits(try detector.changes(since: nil)) == [root])
            try f.work.git("commit", "--quiet", "--amend", "--message", "root, amended")
            let amended = try f.work.head()
            try f.push()
            #expect(commits(try detector.changes(since: key(root))) == [amended])
            #expect(commits(try detector.changes(since: key(amended))) == [amended])
        }
    }

    @Test func multipleRootCommits() async throws {
        try await withGitFixture { f in
            let root = try f.work.change("root", ["a.txt": "1"])
            let c1 = try f.work.change("a", ["a.txt": "2"])
            try f.work.git("checkout", "--quiet", "--orphan", "other")
            try f.work.git("rm", "--quiet", "-r", "--force", ".")
            try f.work.change("other root", ["b.txt": "1"])
            try f.work.checkout("main")
            try f.work.git(
                "merge", "--quiet", "--no-ff", "--allow-unrelated-histories", "--message", "join other", "other")
            let merge = try f.work.head()
            try f.push()
            let all = f.detector()
            #expect(commits(try all.changes(since: key(root))) == [root, c1, merge])
            let other = f.detector { $0.paths = ["b.txt"] }
            #expect(commits(try other.changes(since: nil)) == [merge])
            let first = f.detector { $0.paths = ["a.txt"] }
            #expect(commits(try first.changes(since: key(root))) == [root, c1])
        }
    }

    @Test func emptyCommitsCountOnlyWithoutPaths() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("file", ["f": "1"])
            let e1 = try f.work.emptyCommit("empty 1")
            let c2 = try f.work.change("file 2", ["f": "2"])
            let e2 = try f.work.emptyCommit("empty 2")
            try f.push()
            let everything = f.detector()
            #expect(commits(try everything.changes(since: nil)) == [e2])
            #expect(commits(try everything.changes(since: key(c1))) == [c1, e1, c2, e2])
            let filtered = f.detector { $0.paths = ["f"] }
            #expect(commits(try filtered.changes(since: nil)) == [c2])
            #expect(commits(try filtered.changes(since: key(c1))) == [c1, c2])
        }
    }

    @Test func commitsDatedInTheFutureKeepTopologicalOrder() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app 1", ["app/a": "1"], minute: 0)
            let future = try f.work.commit(
                "app from 2099", files: ["app/a": "2"], date: Date(timeIntervalSince1970: 4_070_908_800))
            let c3 = try f.work.change("app 3", ["app/a": "3"], minute: 2)
            try f.work.change("docs", ["docs/x": "1"], minute: 3)
            try f.push()
            let detector = f.detector { $0.paths = ["app/"] }
            #expect(commits(try detector.changes(since: nil)) == [c3])
            #expect(commits(try detector.changes(since: key(c1))) == [c1, future, c3])
            #expect(commits(try detector.changes(since: key(future))) == [future, c3])
        }
    }

    @Test func branchMasterNeverPicksFeatureMaster() async throws {
        try await withGitFixture(branch: "master") { f in
            let master = try f.work.change("on master", ["a": "1"])
            try f.work.branch("feature/master", checkout: true)
            try f.work.change("on feature/master", ["a": "2"])
            try f.work.checkout("master")
            try f.push()
            // git-resource's shortcut (no paths, ci skip disabled) took the first ls-remote
            // line matching "master", which is refs/heads/feature/master.
            let detector = try f.detector {
                $0.branch = try GitBranchName("master")
                $0.disableCISkip = true
            }
            #expect(commits(try detector.changes(since: nil)) == [master])
        }
    }

    @Test func noBranchFollowsTheRemotesDefaultBranch() async throws {
        try await withGitFixture { f in
            let main = try f.work.change("on main", ["a": "1"])
            try f.work.branch("dev", checkout: true)
            try f.work.change("on dev", ["a": "2"])
            try f.work.checkout("main")
            try f.push()
            let detector = f.detector { $0.branch = nil }
            #expect(commits(try detector.changes(since: nil)) == [main])
        }
    }

    @Test func aMissingBranchIsAClearError() async throws {
        try await withGitFixture { f in
            try f.work.change("a", ["a": "1"])
            try f.push()
            let detector = try f.detector { $0.branch = try GitBranchName("nope") }
            let error = try #require(throws: GitSourceError.self) { try detector.changes(since: nil) }
            #expect(error.kind == .unreadableRemote)
            #expect(error.message.contains("branch nope was not found in \(f.uri)"))
        }
    }

    @Test func metadataComesFromTheCommit() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("subject line\n\nbody", ["a": "1"], minute: 5)
            try f.push()
            let change = try #require(try f.detector().changes(since: nil).first)
            #expect(change.commit.rawValue == c1)
            #expect(change.author == TestGitRepository.authorName)
            #expect(change.date == FixedDates.at(5))
            #expect(change.message == "subject line")
            #expect(change.release == nil)
            #expect(change.tagFileValue == nil)
        }
    }
}
