import Foundation
import GitSource
import TestSupport
import Testing

/// `change(atOrBefore:)`: the version of the source at a (release) commit, which `out`'s
/// `promote.from` a release-mode get uses to find the image this source published for it.
@Suite struct AtOrBeforeTests {
    @Test func theNewestSelectedCommitAtOrBeforeAlongFirstParents() async throws {
        try await withGitFixture { f in
            let a = try f.work.change("x 1", ["images/x/Dockerfile": "1", "VERSION": "2.0"])
            try f.work.change("x 2 [ci skip]", ["images/x/Dockerfile": "2"])
            try f.work.change("x readme", ["images/x/README.md": "ignored"])
            let release = try f.work.change("other", ["other/notes": "1"])
            let later = try f.work.change("x 3", ["images/x/Dockerfile": "3"])
            try f.push()
            let detector = f.detector {
                $0.paths = ["images/x/"]
                $0.ignorePaths = ["images/x/README.md"]
                $0.tagFile = TagFileSpec(path: "VERSION")
            }
            let change = try #require(try detector.change(atOrBefore: try GitCommitID(release)))
            #expect(
                change.commit.rawValue == a,
                "[ci skip] and ignore_paths are honoured; the release commit itself touches nothing watched")
            #expect(change.tagFileValue == "2.0")
            #expect(
                try detector.change(atOrBefore: try GitCommitID(later))?.commit.rawValue == later,
                "a selected commit is its own version")
            #expect(try f.detector { $0.paths = ["nowhere/"] }.change(atOrBefore: try GitCommitID(release)) == nil)
        }
    }

    @Test func aShallowCacheDeepensUntilTheAnswerIsCertain() async throws {
        try await withGitFixture { f in
            let a = try f.work.change("x", ["images/x/Dockerfile": "1"])
            var release = a
            for index in 1...12 { release = try f.work.change("other \(index)", ["other/notes": "\(index)"]) }
            for index in 1...6 { try f.work.change("newer \(index)", ["other/more": "\(index)"]) }
            try f.push()
            let detector = f.detector(policy: FetchPolicy(initialDepth: 2, completeHistoryAbove: 64)) {
                $0.paths = ["images/x/"]
            }
            #expect(try detector.change(atOrBefore: try GitCommitID(release))?.commit.rawValue == a)
        }
    }

    @Test func aReleaseModeSourceIsRefused() async throws {
        try await withGitFixture { f in
            let a = try f.work.change("x", ["images/x/Dockerfile": "1"])
            try f.push()
            let error = #expect(throws: GitSourceError.self) {
                try f.detector { $0.tagFilter = "v*" }.change(atOrBefore: try GitCommitID(a))
            }
            #expect(error?.kind == .invalidConfiguration)
        }
    }
}
