import Console
import Foundation
import GitSource
import Spawn
import Synchronization
import TestSupport

/// A work repository, its bare "remote" (served as `file://`, with partial clone enabled
/// as hosting services have it), and detectors that check that remote with an isolated git
/// environment and their own cache directory.
struct GitFixture: Sendable {
    let work: TestGitRepository
    let remote: TestGitRepository
    let directory: TemporaryDirectory
    /// The isolated environment (no host git config) every git of the detector runs with.
    let environment: [String: String]

    /// The remote's `file://` URL.
    var uri: String { remote.url.absoluteString }
    /// The default cache root (shared by detectors of this fixture unless one is given).
    var cacheRoot: URL { directory.appending("cache") }

    /// A configuration for this remote: branch `main` unless changed by `adjust`.
    func configuration(_ adjust: (inout GitSourceConfiguration) throws -> Void) rethrows -> GitSourceConfiguration {
        var configuration = GitSourceConfiguration(uri: uri, branch: try! GitBranchName("main"))
        try adjust(&configuration)
        return configuration
    }

    /// A detector with the isolated environment.
    func detector(
        _ configuration: GitSourceConfiguration,
        policy: FetchPolicy = .default,
        log: Log = .silent,
        cacheRoot: URL? = nil,
        runner: (any CommandRunner)? = nil
    ) -> ChangeDetector {
        ChangeDetector(
            configuration: configuration, cacheRoot: cacheRoot ?? self.cacheRoot, log: log,
            runner: runner ?? SpawnCommandRunner(baseEnvironment: environment), fetchPolicy: policy
        )
    }

    /// A detector configured by `adjust`.
    func detector(
        policy: FetchPolicy = .default, log: Log = .silent, _ adjust: (inout GitSourceConfiguration) throws -> Void
    ) rethrows -> ChangeDetector {
        detector(try configuration(adjust), policy: policy, log: log)
    }

    /// A detector for branch `main`, every commit counting.
    func detector(policy: FetchPolicy = .default, log: Log = .silent) -> ChangeDetector {
        detector(configuration { _ in }, policy: policy, log: log)
    }

    /// Force-pushes every branch and tag of the work repository to the remote.
    func push() throws {
        try work.push()
    }
}

/// Runs `body` with a fresh fixture whose work repository is on `branch` (no commits yet);
/// the remote is an empty bare repository until ``GitFixture/push()``.
func withGitFixture<R>(branch: String = "main", _ body: (GitFixture) async throws -> R) async throws -> R {
    try await withTemporaryDirectory(prefix: "slipway-gitsource") { directory in
        let home = directory.appending(".home")
        let work = try TestGitRepository.create(at: directory.appending("work"), branch: branch, home: home)
        let remote = try work.bareClone(at: directory.appending("remote.git"))
        try remote.git("config", "uploadpack.allowFilter", "true")
        try remote.git("config", "uploadpack.allowAnySHA1InWant", "true")
        let fixture = GitFixture(
            work: work, remote: remote, directory: directory, environment: TestGitRepository.environment(home: home)
        )
        return try await body(fixture)
    }
}

/// Deterministic commit dates: one minute apart from a fixed start.
enum FixedDates {
    static let start = Date(timeIntervalSince1970: 1_700_000_000)
    static func at(_ minute: Int) -> Date { start.addingTimeInterval(TimeInterval(minute * 60)) }
}

extension TestGitRepository {
    /// Commits `files` with a deterministic date derived from a counter in the message order.
    @discardableResult
    func change(_ message: String, _ files: [String: String?], minute: Int? = nil) throws -> String {
        try commit(message, files: files, date: minute.map(FixedDates.at))
    }
}

/// The commits of `changes`, as full names, in order.
func commits(_ changes: [SourceChange]) -> [String] {
    changes.map(\.commit.rawValue)
}

/// A key for a commit name.
func key(_ commit: String, release: String? = nil) throws -> SourceChange.Key {
    SourceChange.Key(commit: try GitCommitID(commit), release: release)
}

/// A log that keeps its lines, for tests that check what was said.
final class CollectedLog: Sendable {
    private let storage = Mutex<[String]>([])

    var log: Log {
        Log(verbose: true) { [self] line in self.storage.withLock { $0.append(line) } }
    }

    var lines: [String] { storage.withLock { $0 } }

    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }
}
