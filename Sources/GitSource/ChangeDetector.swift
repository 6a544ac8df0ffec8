import Console
import Foundation
import OCI
import Spawn

/// The engine of `check` in source-keyed mode: which commits of a branch (or
/// which release tags) are versions, found in a cached blobless clone that fetches only as
/// much history as the answer needs.
///
/// Semantics are git-resource's `paths` behaviour as its test suite defines it, with its
/// known bugs fixed:
/// - history is walked along first parents (a merge is one change, compared with its first
///   parent), in topological order, never by date;
/// - `check` without a version returns the newest matching commit (the newest
///   `version_depth` ones, oldest first);
/// - `check` with a version returns it (when it still matches) and every newer match,
///   oldest first; a version that is no longer on the branch (force-push, amended root)
///   gives the newest matching commit instead of an error or an endless stall;
/// - `branch: master` means `refs/heads/master`, never `refs/heads/feature/master`.
///
/// Safe to use from several processes or threads at once: each operation holds an
/// exclusive lock on its source's cache.
public struct ChangeDetector: Sendable {
    /// The source.
    public let configuration: GitSourceConfiguration
    /// Where caches live (Concourse keeps a check container's `TMPDIR` between checks).
    public let cacheRoot: URL
    /// Where progress and diagnostics go.
    public let log: Log
    /// How programs are run.
    public let runner: any CommandRunner
    /// How much history is fetched.
    public let fetchPolicy: FetchPolicy

    /// Creates a detector; nothing runs until a method is called. Key directories that a
    /// killed run left under `cacheRoot` are removed here, so `check`, `in` and `out` all
    /// sweep them as they start.
    public init(
        configuration: GitSourceConfiguration,
        cacheRoot: URL,
        log: Log,
        runner: any CommandRunner = SpawnCommandRunner(),
        fetchPolicy: FetchPolicy = .default
    ) {
        self.configuration = configuration
        self.cacheRoot = cacheRoot
        self.log = log
        self.runner = runner
        self.fetchPolicy = fetchPolicy
        GitCredentials.removeAbandonedKeyDirectories(under: cacheRoot)
    }

    var remote: RemoteURL { RemoteURL(configuration.uri) }

    // MARK: - check

    /// The versions `check` reports, oldest first.
    ///
    /// - Parameter since: The version Concourse gave (`ref`, and `release` in release
    ///   mode), or nil on a first check.
    /// - Returns: With `since == nil`, the newest matching change (the newest
    ///   `version_depth` ones); otherwise `since` when it still matches and every newer
    ///   matching change. When `since` is no longer on the branch (or its release tag is
    ///   gone), the newest matching change. May be empty when nothing matches.
    /// - Throws: ``GitSourceError``: `.configuration` for a bad source, `.remote` when the
    ///   remote or branch cannot be read, `.tagFile` for a missing tag file or key.
    public func changes(since: SourceChange.Key?) throws -> [SourceChange] {
        try configuration.validate()
        return try withCache { repository in
            if configuration.isReleaseMode {
                return try releaseChanges(in: &repository, since: since)
            }
            return try branchChanges(in: &repository, since: since)
        }
    }

    /// Branch mode: commits of the first-parent chain, deepening the window until the
    /// answer is certain.
    private func branchChanges(in repository: inout CachedRepository, since: SourceChange.Key?) throws -> [SourceChange]
    {
        var updated: GitCommitID? = try repository.update()
        while true {
            let current = try updated ?? repository.tip()
            updated = nil
            guard let tip = current else {
                // The fetch succeeded, so the ref must exist: the cache is broken.
                throw GitSourceError(
                    .gitFailed,
                    "the cached clone of \(remote.display) has no \(CachedRepository.tipReference) after a fetch")
            }
            if let commits = try listBranch(repository, tip: tip, since: since?.commit) {
                return try describe(commits.map { ($0, nil) }, in: repository)
            }
            guard try repository.deepen() else {
                throw GitSourceError(
                    .gitFailed,
                    "the complete history of \(remote.display) is fetched, yet the answer still needs older commits; please report this"
                )
            }
        }
    }

    /// The matching commits, oldest first, or nil when the window is too shallow to know.
    private func listBranch(_ repository: CachedRepository, tip: GitCommitID, since: GitCommitID?) throws
        -> [GitCommitID]?
    {
        let shallow = repository.shallowCommits()
        let walker = HistoryWalker(configuration: configuration, repository: repository)
        if let since {
            if !shallow.contains(since.rawValue), let parents = try repository.parentsIfPresent(of: since),
                try repository.isAncestor(since, of: tip)
            {
                let commits = try walker.walk(from: tip, excluding: parents, limit: nil)
                if commits.contains(where: { shallow.contains($0.rawValue) }) { return nil }
                return commits.reversed()
            }
            // Not in the window: either older than the window, or gone from the branch.
            if !shallow.isEmpty { return nil }
            log.info(
                "version \(since.short) is no longer on \(branchDescription) of \(remote.display) (history rewritten?); reporting the newest matching commit"
            )
        }
        let wanted = configuration.effectiveVersionDepth
        var commits = try walker.walk(from: tip, excluding: [], limit: wanted)
        if let cut = commits.firstIndex(where: { shallow.contains($0.rawValue) }) {
            // The window's edge looks like a root commit that adds every file: not a real match.
            commits.removeSubrange(cut...)
            return commits.count >= wanted ? commits.reversed() : nil
        }
        if commits.count < wanted, try repository.firstParentChainIsCut(from: tip) { return nil }
        return commits.reversed()
    }

    var branchDescription: String {
        configuration.branch.map { "branch \($0)" } ?? "the default branch"
    }

    // MARK: - Describing commits

    /// Metadata and tag file values for `commits` (in order), each with its release name.
    func describe(_ commits: [(GitCommitID, String?)], in repository: CachedRepository) throws -> [SourceChange] {
        guard !commits.isEmpty else { return [] }
        let unique = Array(Set(commits.map(\.0)))
        let metadata = try commitMetadata(unique, git: repository.git)
        let values = try tagFileValues(unique, in: repository)
        return try commits.map { commit, release in
            guard let info = metadata[commit] else {
                throw GitSourceError(.gitFailed, "git printed no metadata for commit \(commit.rawValue)")
            }
            return SourceChange(
                commit: commit, tagFileValue: values[commit], release: release,
                author: info.author, date: info.date, message: info.subject
            )
        }
    }

    private struct CommitInfo {
        var author: String
        var date: Date
        var subject: String
    }

    private func commitMetadata(_ commits: [GitCommitID], git: Git) throws -> [GitCommitID: CommitInfo] {
        let input = Data((commits.map(\.rawValue).joined(separator: "\n") + "\n").utf8)
        let output = try git.output(
            [
                "log", "--no-walk=unsorted", "--stdin", "--no-decorate", "--no-color",
                "--format=%H%x1f%an%x1f%at%x1f%s%x1e",
            ], input: input)
        var result: [GitCommitID: CommitInfo] = [:]
        for record in output.split(separator: "\u{1e}") {
            let fields = record.trimmingCharacters(in: .newlines).split(
                separator: "\u{1f}", omittingEmptySubsequences: false
            ).map(String.init)
            guard fields.count == 4, let commit = try? GitCommitID(fields[0]) else { continue }
            result[commit] = CommitInfo(
                author: fields[1], date: Date(timeIntervalSince1970: TimeInterval(fields[2]) ?? 0), subject: fields[3])
        }
        return result
    }

    /// The tag file's value at each commit: object names from the trees (no fetch), the
    /// missing blobs in one fetch, then all contents in one `cat-file --batch`.
    private func tagFileValues(_ commits: [GitCommitID], in repository: CachedRepository) throws -> [GitCommitID:
        String]
    {
        guard let spec = configuration.tagFile else { return [:] }
        let path = spec.normalizedPath
        let git = repository.git
        let names = commits.map { "\($0.rawValue):\(path)" }
        let resolved = try git.run(["rev-parse", "--verify", "--end-of-options"] + names)
        var objects: [String]
        if resolved.succeeded {
            objects = resolved.outputText.split(whereSeparator: \.isNewline).map(String.init)
        } else {
            objects = []
            for commit in commits {
                let one = try git.run([
                    "rev-parse", "--verify", "--quiet", "--end-of-options", "\(commit.rawValue):\(path)",
                ])
                guard one.succeeded else {
                    throw GitSourceError(
                        .unusableTagFile,
                        "tag file \(quoted(path)) does not exist at commit \(commit.short) of \(remote.display): add it, or fix tag_file's path"
                    )
                }
                objects.append(one.outputText.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        guard objects.count == commits.count else {
            throw GitSourceError(
                .gitFailed, "git resolved \(objects.count) tag file objects for \(commits.count) commits")
        }
        try refuseSymlinkedTagFile(path, commits: commits, git: git)
        let distinct = Array(Set(objects))
        try repository.prefetch(objects: distinct)
        let contents = try catFileBatch(distinct, git: git, path: path)
        var values: [GitCommitID: String] = [:]
        for (commit, object) in zip(commits, objects) {
            guard let content = contents[object] else {
                throw GitSourceError(
                    .unusableTagFile,
                    "tag file \(quoted(path)) at commit \(commit.short) could not be read (object \(object) missing)")
            }
            guard content.type == "blob" else {
                throw GitSourceError(
                    .unusableTagFile,
                    "tag file \(quoted(path)) at commit \(commit.short) is a \(content.type == "tree" ? "directory" : content.type), not a file"
                )
            }
            values[commit] = try TagFileValue.read(content.data, spec: spec, commit: commit)
        }
        return values
    }

    func catFileBatch(_ objects: [String], git: Git, path: String) throws -> [String: (type: String, data: Data)] {
        let input = Data((objects.joined(separator: "\n") + "\n").utf8)
        let result = try git.run(["cat-file", "--batch"], input: input)
        guard result.succeeded else { throw git.failure(["cat-file", "--batch"], result) }
        var contents: [String: (type: String, data: Data)] = [:]
        let bytes = result.standardOutput
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            let header = String(decoding: bytes[index..<newline], as: UTF8.self).split(separator: " ").map(String.init)
            index = bytes.index(after: newline)
            guard header.count == 3, let size = Int(header[2]) else { continue }  // "<name> missing"
            let end = bytes.index(index, offsetBy: size)
            guard end <= bytes.endIndex else { break }
            contents[header[0]] = (header[1], Data(bytes[index..<end]))
            index = end < bytes.endIndex ? bytes.index(after: end) : end  // the newline after the content
        }
        return contents
    }

    // MARK: - The cache

    /// Runs `body` on this source's cached clone, under the cache's lock. When the cache is
    /// unusable (corrupt, half-written, or git fails in it), `body` runs again on a fresh
    /// clone, which replaces the old cache only if it works: a network failure never
    /// throws a good cache away. Errors about the configuration or the tag file are not
    /// the cache's fault and are thrown at once.
    func withCache<R>(_ body: (inout CachedRepository) throws -> R) throws -> R {
        let credentials = GitCredentials(configuration: configuration)
        let root = cacheRoot.appendingPathComponent("slipway-git", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw GitSourceError(
                .unusableCache,
                "cannot create the clone cache in \(root.path): \(error.localizedDescription); is TMPDIR writable?")
        }
        let name = cacheName
        let directory = root.appendingPathComponent(name, isDirectory: true)
        let refspecs = self.refspecs
        return try credentials.withGit(runner: runner, log: log, scratch: root) { git in
            try FileLock.withExclusiveLock(on: root.appendingPathComponent(name + ".lock"), log: log) {
                if var cached = CachedRepository.open(
                    at: directory, git: git, refspecs: refspecs, remote: remote, policy: fetchPolicy)
                {
                    do {
                        return try body(&cached)
                    } catch let error as GitSourceError
                        where error.kind == .gitFailed || error.kind == .unreadableRemote
                    {
                        // A broken cache can look like a remote problem ("'origin' does not
                        // appear to be a git repository" from a damaged config), so both are
                        // retried on a fresh clone; a real remote problem fails there too, and
                        // that error is the one reported.
                        log.info("the cached clone of \(remote.display) failed, cloning afresh: \(error.message)")
                    }
                } else if FileManager.default.fileExists(atPath: directory.path) {
                    log.info(
                        "the cached clone of \(remote.display) is incomplete or for another source; cloning afresh")
                }
                let freshDirectory = root.appendingPathComponent(name + ".fresh", isDirectory: true)
                do {
                    var fresh = try CachedRepository.create(
                        at: freshDirectory, git: git, refspecs: refspecs, remote: remote, policy: fetchPolicy)
                    log.debug("cloning \(remote.display) into \(freshDirectory.path)")
                    let result = try body(&fresh)
                    try? FileManager.default.removeItem(at: directory)
                    try FileManager.default.moveItem(at: freshDirectory, to: directory)
                    return result
                } catch {
                    try? FileManager.default.removeItem(at: freshDirectory)
                    throw error
                }
            }
        }
    }

    /// What the tip ref follows and whether tags come along.
    var refspecs: CachedRepository.Refspecs {
        if configuration.isReleaseMode {
            // Tags may be on any branch; with a branch, only tags merged into it count.
            return .init(tipSource: configuration.branch?.fullReference, tags: true)
        }
        return .init(tipSource: configuration.branch?.fullReference ?? "HEAD", tags: false)
    }

    /// One cache per remote, followed ref and mode: a hash, so no URL (and nothing secret)
    /// appears in a file name.
    var cacheName: String {
        let identity = [
            "slipway-git-cache-v1", remote.forGit, refspecs.tipSource ?? "-", refspecs.tags ? "tags" : "branch",
        ].joined(separator: "\n")
        let digest = Digest.sha256(Data(identity.utf8)).rawValue
        return String(digest.dropFirst("sha256:".count).prefix(24))
    }
}
