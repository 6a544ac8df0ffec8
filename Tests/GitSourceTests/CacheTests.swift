import Console
import Foundation
import GitSource
import Synchronization
import TestSupport
import Testing

/// The clone cache and its commit-graph with Bloom filters, plus the
/// two other operations on the cache: `isAncestor` and `checkout`.
@Suite struct CacheTests {
    /// The one cache repository under a cache root.
    private func cacheRepository(_ root: URL) throws -> URL {
        let base = root.appendingPathComponent("slipway-git")
        let entries = try FileManager.default.contentsOfDirectory(atPath: base.path)
            .filter { !$0.hasSuffix(".lock") && !$0.hasPrefix("slipway-key") }
        try #require(entries.count == 1, "cache entries: \(entries)")
        return base.appendingPathComponent(entries[0])
    }

    private func state(_ repository: URL) throws -> String {
        try String(contentsOf: repository.appendingPathComponent("slipway-cache.json"), encoding: .utf8)
    }

    @Test func aFirstCheckFetchesAShallowBloblessWindowAndDeepensOnlyAsFarAsNeeded() async throws {
        try await withGitFixture { f in
            for index in 1...140 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            let app = try f.work.change("app", ["app/a": "1"])
            for index in 141...160 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            try f.push()
            let detector = f.detector(policy: FetchPolicy(initialDepth: 2, completeHistoryAbove: 1024)) {
                $0.paths = ["app/"]
            }
            #expect(commits(try detector.changes(since: nil)) == [app])
            let repository = try cacheRepository(f.cacheRoot)
            // 21 commits from the tip to the match (of 161): a window of 2 → 8 → 32.
            #expect(try state(repository).contains("\"window\":32"))
            #expect(FileManager.default.fileExists(atPath: repository.appendingPathComponent("shallow").path))
            // No file contents were fetched: every blob is missing.
            let blobs = try runProcess(
                "git", ["-C", repository.path, "rev-list", "--objects", "--missing=print", "refs/slipway/tip"],
                environment: f.environment
            ).checked()
            #expect(blobs.stdoutString.split(separator: "\n").filter { $0.hasPrefix("?") }.count > 0)

            // An incremental check with the version 52 commits deep: the window slides
            // with the tip and deepens again.
            for index in 161...190 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            let app2 = try f.work.change("app 2", ["app/a": "2"])
            try f.push()
            #expect(commits(try detector.changes(since: key(app))) == [app, app2])
            #expect(try state(repository).contains("\"window\":128"))
        }
    }

    @Test func pastTheThresholdTheCompleteHistoryIsFetchedWithBloomFilters() async throws {
        try await withGitFixture { f in
            let app = try f.work.change("app", ["app/a": "1"])
            for index in 1...20 { try f.work.change("docs \(index)", ["docs/\(index)": "x"]) }
            try f.push()
            let log = CollectedLog()
            let detector = f.detector(policy: FetchPolicy(initialDepth: 2, completeHistoryAbove: 8), log: log.log) {
                $0.paths = ["app/"]
            }
            #expect(commits(try detector.changes(since: nil)) == [app])
            let repository = try cacheRepository(f.cacheRoot)
            #expect(!FileManager.default.fileExists(atPath: repository.appendingPathComponent("shallow").path))
            #expect(try !state(repository).contains("window"))
            #expect(log.contains("fetching the complete history"))
            // The commit-graph has changed-path Bloom filters, and git uses them for the walk.
            let trace = f.directory.appending("trace2.json")
            var environment = f.environment
            environment["GIT_TRACE2_EVENT"] = trace.path
            try runProcess(
                "git", ["-C", repository.path, "rev-list", "--first-parent", "refs/slipway/tip", "--", "app/"],
                environment: environment
            ).checked()
            let events = try String(contentsOf: trace, encoding: .utf8)
            #expect(events.contains("\"definitely_not\""), "no Bloom filter statistics in the trace")
            // Later fetches add a layer to the commit-graph.
            let app2 = try f.work.change("app 2", ["app/a": "2"])
            try f.push()
            #expect(commits(try detector.changes(since: key(app))) == [app, app2])
            let chain = try String(
                contentsOf: repository.appendingPathComponent("objects/info/commit-graphs/commit-graph-chain"),
                encoding: .utf8)
            #expect(chain.split(separator: "\n").count >= 1)
        }
    }

    enum Corruption: String, CaseIterable, Sendable {
        case packs, config, tipReference, shallowFile
    }

    @Test(arguments: Corruption.allCases)
    func aCorruptCacheIsReplacedByAFreshClone(corruption: Corruption) async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"])
            try f.push()
            let log = CollectedLog()
            let detector = f.detector(log: log.log)
            #expect(commits(try detector.changes(since: nil)) == [c1])
            let repository = try cacheRepository(f.cacheRoot)
            let garbage = Data("garbage\n".utf8)
            switch corruption {
            case .packs:
                let packs = repository.appendingPathComponent("objects/pack")
                for file in try FileManager.default.contentsOfDirectory(atPath: packs.path) {
                    try garbage.write(to: packs.appendingPathComponent(file))
                }
            case .config:
                try garbage.write(to: repository.appendingPathComponent("config"))
            case .tipReference:
                try runProcess("git", ["-C", repository.path, "pack-refs", "--all"], environment: f.environment)
                    .checked()
                try garbage.write(to: repository.appendingPathComponent("packed-refs"))
            case .shallowFile:
                try garbage.write(to: repository.appendingPathComponent("shallow"))
            }
            let c2 = try f.work.change("two", ["a": "2"])
            try f.push()
            #expect(commits(try detector.changes(since: key(c1))) == [c1, c2])
            if corruption != .packs {
                // (git reads around unreadable packs and fetches the objects again.)
                #expect(log.contains("cloning afresh"), "\(log.lines)")
            }
            // The fresh clone is the cache now, and it works incrementally.
            let c3 = try f.work.change("three", ["a": "3"])
            try f.push()
            #expect(commits(try detector.changes(since: key(c2))) == [c2, c3])
        }
    }

    @Test func anUnfinishedCacheIsReplaced() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"])
            try f.push()
            let detector = f.detector()
            #expect(commits(try detector.changes(since: nil)) == [c1])
            // A check killed during its first clone leaves a repository without the state file.
            let repository = try cacheRepository(f.cacheRoot)
            try FileManager.default.removeItem(at: repository.appendingPathComponent("slipway-cache.json"))
            #expect(commits(try detector.changes(since: nil)) == [c1])
        }
    }

    @Test func concurrentChecksOfOneSourceShareTheCacheSafely() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("app", ["app/a": "1"])
            for index in 1...5 { try f.work.change("more app \(index)", ["app/a": "\(index + 1)"]) }
            let newest = try f.work.head()
            try f.push()
            let configuration = f.configuration { $0.paths = ["app/"] }
            let results = Mutex<[Result<[String], any Error>]>([])
            // Real threads, each with its own detector, as separate check processes would be.
            DispatchQueue.concurrentPerform(iterations: 4) { index in
                let detector = f.detector(configuration)
                let result = Result(catching: {
                    commits(try detector.changes(since: index.isMultiple(of: 2) ? nil : key(c1)))
                })
                results.withLock { $0.append(result) }
            }
            let outcomes = results.withLock { $0 }
            #expect(outcomes.count == 4)
            for outcome in outcomes {
                let list = try outcome.get()
                #expect(list.last == newest)
                #expect(list.count == 1 || list.count == 6)
            }
        }
    }

    @Test func manyFetchesTriggerAGeometricRepackThatKeepsTheCacheWorking() async throws {
        try await withGitFixture { f in
            var previous = try f.work.change("app 0", ["app/a": "0"])
            try f.push()
            let detector = f.detector(policy: FetchPolicy(repackAboveLooseObjects: 3, repackAbovePacks: 2)) {
                $0.paths = ["app/"]
            }
            #expect(commits(try detector.changes(since: nil)) == [previous])
            for index in 1...4 {
                let next = try f.work.change("app \(index)", ["app/a": "\(index)", "docs/\(index)": "x"])
                try f.push()
                #expect(commits(try detector.changes(since: key(previous))) == [previous, next])
                previous = next
            }
            let repository = try cacheRepository(f.cacheRoot)
            let counts = try runProcess(
                "git", ["-C", repository.path, "count-objects", "-v"], environment: f.environment
            ).checked().stdoutString
            let packs = counts.split(separator: "\n").first { $0.hasPrefix("packs:") }
            #expect(
                packs.map { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 99 }.map { $0 <= 4 } == true,
                "\(counts)")
        }
    }

    @Test(arguments: [FetchPolicy.default, FetchPolicy(initialDepth: 1, completeHistoryAbove: 16)])
    func isAncestorFollowsTheBranchAndFindsOtherBranches(policy: FetchPolicy) async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1"])
            let c2 = try f.work.change("two", ["a": "2"])
            try f.work.branch("side", checkout: true)
            let side = try f.work.change("side", ["b": "1"])
            try f.work.checkout("main")
            for index in 3...8 { try f.work.change("main \(index)", ["a": "\(index)"]) }
            let tip = try f.work.head()
            try f.push()
            let detector = f.detector(policy: policy)
            #expect(try detector.isAncestor(GitCommitID(c1), of: GitCommitID(tip)))
            #expect(try !detector.isAncestor(GitCommitID(tip), of: GitCommitID(c1)))
            #expect(try detector.isAncestor(GitCommitID(c2), of: GitCommitID(c2)))
            #expect(try detector.isAncestor(GitCommitID(c2), of: GitCommitID(side)))
            #expect(try !detector.isAncestor(GitCommitID(side), of: GitCommitID(tip)))
            let unknown = try GitCommitID(String(repeating: "0", count: 40))
            let error = try #require(throws: GitSourceError.self) {
                try detector.isAncestor(unknown, of: GitCommitID(tip))
            }
            #expect(error.kind == .commitNotFound)
            #expect(error.message.contains(unknown.rawValue))
        }
    }

    @Test func checkoutWritesADetachedWorkTreeWithGitResourceFiles() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["app/Dockerfile": "FROM scratch\n", "README": "one"])
            try f.work.change("two", ["README": "two"])
            try f.push()
            let target = f.directory.appending("source")
            let detector = f.detector()
            try detector.checkout(GitCommitID(c1), into: target)
            #expect(try String(contentsOf: target.appendingPathComponent("README"), encoding: .utf8) == "one")
            #expect(
                try String(contentsOf: target.appendingPathComponent("app/Dockerfile"), encoding: .utf8)
                    == "FROM scratch\n")
            #expect(try String(contentsOf: target.appendingPathComponent(".git/ref"), encoding: .utf8) == c1 + "\n")
            #expect(
                try String(contentsOf: target.appendingPathComponent(".git/short_ref"), encoding: .utf8) == String(
                    c1.prefix(12)) + "\n")
            #expect(try String(contentsOf: target.appendingPathComponent(".git/branch"), encoding: .utf8) == "main\n")
            let head = try runProcess("git", ["-C", target.path, "rev-parse", "HEAD"], environment: f.environment)
                .checked()
            #expect(head.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines) == c1)
            let symbolic = try runProcess(
                "git", ["-C", target.path, "symbolic-ref", "-q", "HEAD"], environment: f.environment)
            #expect(!symbolic.succeeded, "HEAD should be detached")
            // Without a configured branch, the remote's default branch is named.
            let unnamed = f.directory.appending("source-default")
            try f.detector { $0.branch = nil }.checkout(GitCommitID(c1), into: unnamed)
            #expect(try String(contentsOf: unnamed.appendingPathComponent(".git/branch"), encoding: .utf8) == "main\n")
        }
    }
}
