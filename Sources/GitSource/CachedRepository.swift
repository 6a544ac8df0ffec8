import Console
import Foundation
import OCI
import Spawn

/// The bare, blobless clone a check keeps between runs, and the git operations on it.
///
/// Layout: a bare repository whose only refs are `refs/slipway/tip` (the followed branch)
/// and, in release mode, `refs/tags/*`; and `slipway-cache.json` beside git's files with
/// the size of the shallow window (absent when the history is complete). A directory
/// without that file or without the tip ref is unfinished (a check was killed while
/// cloning) and is replaced.
struct CachedRepository {
    /// What to fetch on every update.
    struct Refspecs: Sendable, Equatable {
        /// The ref that `refs/slipway/tip` follows (`refs/heads/<branch>` or `HEAD`), if any.
        var tipSource: String?
        /// Whether every tag is fetched too (release mode).
        var tags: Bool
    }

    struct State: Codable, Equatable {
        var format = 1
        /// The remote this cache clones (without credentials).
        var remote: String
        /// Commits in the shallow window; nil when the history is complete.
        var window: Int?
    }

    static let tipReference = "refs/slipway/tip"
    static let stateFileName = "slipway-cache.json"

    let directory: URL
    let git: Git
    let refspecs: Refspecs
    let remote: RemoteURL
    let policy: FetchPolicy
    private(set) var state: State

    var isShallow: Bool { state.window != nil }
    private var stateFile: URL { directory.appendingPathComponent(Self.stateFileName) }

    // MARK: Opening and creating

    /// Opens an existing cache; nil when it is missing, unfinished or made for another remote.
    static func open(at directory: URL, git: Git, refspecs: Refspecs, remote: RemoteURL, policy: FetchPolicy)
        -> CachedRepository?
    {
        let file = directory.appendingPathComponent(stateFileName)
        guard let data = try? Data(contentsOf: file), let state = try? JSONDecoder().decode(State.self, from: data),
            state.remote == remote.forGit
        else { return nil }
        return CachedRepository(
            directory: directory, git: git.at(directory), refspecs: refspecs, remote: remote, policy: policy,
            state: state)
    }

    /// Makes an empty bare repository set up as a blobless partial clone of `remote`; the
    /// first ``update()`` fills it.
    static func create(at directory: URL, git: Git, refspecs: Refspecs, remote: RemoteURL, policy: FetchPolicy) throws
        -> CachedRepository
    {
        try initializeRepository(at: directory, git: git, remote: remote)
        return CachedRepository(
            directory: directory, git: git.at(directory), refspecs: refspecs, remote: remote, policy: policy,
            state: State(remote: remote.forGit, window: nil)
        )
    }

    private static func initializeRepository(at directory: URL, git: Git, remote: RemoteURL) throws {
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(
            at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
        try git.at(nil).output(["init", "--quiet", "--bare", directory.path])
        try git.at(directory).output(["config", "remote.origin.url", remote.forGit])
    }

    private func saveState() throws {
        let data = try JSONEncoder().encode(state)
        let temporary = directory.appendingPathComponent(Self.stateFileName + ".tmp")
        try data.write(to: temporary)
        guard rename(temporary.path, stateFile.path) == 0 else {
            throw GitSourceError(.unusableCache, "cannot write \(stateFile.path): \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Fetching

    /// Brings the cache up to date with the remote: a shallow window of
    /// ``FetchPolicy/initialDepth`` commits on the first fetch (unless the refspecs ask for
    /// tags, which need the complete history), the same window size while the cache is
    /// shallow (so a rewritten branch never drags its whole history in), otherwise
    /// everything new.
    ///
    /// A shallow cache first asks the remote for its tip (`ls-remote`, no pack): a fetch with
    /// `--depth` makes the server recompute the window even when nothing changed, and "nothing
    /// changed" is the answer of most checks.
    ///
    /// A rewritten branch (force-push) needs nothing special: the refspec forces the update,
    /// the window bounds what a shallow cache fetches, and the old commits simply stop
    /// being reachable from the tip.
    /// - Returns: The tip after the update (nil when there is no tip ref: release mode
    ///   without a branch).
    @discardableResult
    mutating func update() throws -> GitCommitID? {
        let fresh = !FileManager.default.fileExists(atPath: stateFile.path)
        let before = fresh ? nil : try tip()
        if let window = state.window, let before, !fresh {
            if let remoteTip = try remoteTip(), remoteTip == before.rawValue {
                git.log.debug("\(remote.display) is unchanged at \(before.short)")
                return before
            }
            try fetch(["--depth=\(window)"])
            try afterFetch(requestedWindow: window)
        } else {
            let depth = fresh && !refspecs.tags ? policy.initialDepth : nil
            try fetch(depth.map { ["--depth=\($0)"] } ?? [])
            try afterFetch(requestedWindow: depth)
        }
        let after = try tip()
        if let before, let after, before != after, !isShallow, try !isAncestor(before, of: after) {
            git.log.info(
                "\(refspecs.tipSource ?? "the branch") of \(remote.display) was rewritten (force-push): \(before.short) is no longer on it"
            )
        }
        return after
    }

    /// The commit the remote's followed ref points at now, or nil when it cannot tell.
    private func remoteTip() throws -> String? {
        guard let source = refspecs.tipSource else { return nil }
        let result = try git.run(["ls-remote", "origin", source])
        guard result.succeeded else { return nil }  // the fetch will report the problem
        for line in result.outputText.split(separator: "\n") {
            let fields = line.split(separator: "\t")
            if fields.count == 2, fields[1] == source { return String(fields[0]) }
        }
        return nil
    }

    /// Makes the shallow window four times larger, or fetches the complete history once the
    /// window would pass ``FetchPolicy/completeHistoryAbove``. Four, not two: each round is a
    /// round trip and a server-side walk, and with four the rounds before the complete
    /// history are half as many (Benchmarks/git-check, rare path: 1.4 s → 0.5 s).
    /// - Returns: False when the history is already complete.
    mutating func deepen() throws -> Bool {
        guard let window = state.window else { return false }
        let next = window * 4
        if next > policy.completeHistoryAbove {
            git.log.info(
                "fetching the complete history of \(remote.display) (the answer is older than \(window) commits)")
            try fetchCompleteHistory()
        } else {
            git.log.debug("deepening the cached clone to \(next) commits")
            try fetch(["--depth=\(next)"])
            try afterFetch(requestedWindow: next)
        }
        return true
    }

    /// Replaces the shallow cache with a complete blobless clone. A fresh full fetch rather
    /// than `--unshallow`: the server answers it from its bitmaps (about half the time in
    /// Benchmarks/git-check), while an unshallow request makes it walk every object.
    private mutating func fetchCompleteHistory() throws {
        let complete = directory.deletingLastPathComponent().appendingPathComponent(
            directory.lastPathComponent + ".complete")
        try Self.initializeRepository(at: complete, git: git, remote: remote)
        do {
            try fetch([], in: git.at(complete))
        } catch {
            try? FileManager.default.removeItem(at: complete)
            throw error
        }
        let old = directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + ".old")
        try? FileManager.default.removeItem(at: old)
        try FileManager.default.moveItem(at: directory, to: old)
        try FileManager.default.moveItem(at: complete, to: directory)
        try? FileManager.default.removeItem(at: old)
        try afterFetch(requestedWindow: nil)
    }

    private func fetch(_ extra: [String], in target: Git? = nil) throws {
        var refspecs: [String] = []
        if let source = self.refspecs.tipSource { refspecs.append("+\(source):\(Self.tipReference)") }
        if self.refspecs.tags { refspecs.append("+refs/tags/*:refs/tags/*") }
        let arguments =
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--prune", "--filter=blob:none"] + extra + [
                "origin"
            ] + refspecs
        let result = try (target ?? git).run(arguments)
        guard result.succeeded else { throw remoteFailure(arguments, result) }
    }

    /// A fetch failure: `.remote` when git's message says the remote refused or could not be
    /// reached, `.command` otherwise. (Both make ``ChangeDetector`` retry on a fresh clone.)
    func remoteFailure(_ arguments: [String], _ result: CommandResult) -> GitSourceError {
        let text = result.errorText
        if let source = refspecs.tipSource, text.contains("couldn't find remote ref") {
            let what =
                source == "HEAD"
                ? "the default branch (HEAD)" : "branch \(source.replacingOccurrences(of: "refs/heads/", with: ""))"
            return GitSourceError(
                .unreadableRemote,
                "\(what) was not found in \(remote.display): check git.branch and git.uri (an empty repository has no branch)"
            )
        }
        let remoteSigns = [
            "Authentication failed", "could not read Username", "could not read Password", "Permission denied",
            "Could not read from remote repository", "does not appear to be a git repository", "unable to access",
            "Repository not found", "not found", "Host key verification failed", "Could not resolve host",
            "Connection refused", "Connection timed out", "terminal prompts disabled", "HTTP Basic: Access denied",
        ]
        let kind: GitSourceError.Kind = remoteSigns.contains(where: text.contains) ? .unreadableRemote : .gitFailed
        return git.failure(arguments, result, kind: kind)
    }

    private mutating func afterFetch(requestedWindow: Int?) throws {
        let shallowFile = directory.appendingPathComponent("shallow")
        let shallow = FileManager.default.fileExists(atPath: shallowFile.path)
        state.window = shallow ? (requestedWindow ?? state.window ?? policy.initialDepth) : nil
        try saveState()
        if !shallow { try writeCommitGraph() }
        try maintain()
    }

    /// Adds the new commits to the commit-graph, with changed-path Bloom filters, as a new
    /// layer (`--split`), so the cost is the new commits', not the history's.
    private func writeCommitGraph() throws {
        try git.output(["commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress"])
    }

    /// Fetches leave a loose object or a pack each time; past a threshold, a geometric
    /// repack rolls the small ones up without rewriting the big pack.
    private func maintain() throws {
        let objects = directory.appendingPathComponent("objects")
        let files = FileManager.default
        let packs = ((try? files.contentsOfDirectory(atPath: objects.appendingPathComponent("pack").path)) ?? [])
            .filter { $0.hasSuffix(".pack") }.count
        var loose = 0
        for name in (try? files.contentsOfDirectory(atPath: objects.path)) ?? [] where name.count == 2 {
            loose += ((try? files.contentsOfDirectory(atPath: objects.appendingPathComponent(name).path)) ?? []).count
        }
        if loose > policy.repackAboveLooseObjects || packs > policy.repackAbovePacks {
            git.log.debug("repacking the cached clone (\(loose) loose objects, \(packs) packs)")
            try git.output(["repack", "-d", "-q", "--geometric=2", "--no-write-bitmap-index"])
        }
    }

    // MARK: Reading

    /// The commit `refs/slipway/tip` points at, or nil when there is none.
    func tip() throws -> GitCommitID? {
        let result = try git.run(["rev-parse", "--verify", "--quiet", Self.tipReference + "^{commit}"])
        guard result.succeeded else { return nil }
        return try commitID(result.outputText)
    }

    /// The commits whose parents the shallow window cuts off (git's `shallow` file).
    func shallowCommits() -> Set<String> {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("shallow"), encoding: .utf8) else {
            return []
        }
        return Set(text.split(whereSeparator: \.isNewline).map(String.init))
    }

    /// True when the commit's object is in the cache. Never fetches it: a plain lookup of a
    /// missing object in a partial clone would fetch that single commit from the remote.
    func hasCommit(_ commit: GitCommitID) throws -> Bool {
        let result = try git.run(["rev-list", "--no-walk", "--missing=print", commit.rawValue])
        return result.succeeded && result.outputText.hasPrefix(commit.rawValue)
    }

    /// Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor).
    /// Both must be present (see ``hasCommit(_:)``).
    func isAncestor(_ ancestor: GitCommitID, of descendant: GitCommitID) throws -> Bool {
        if ancestor == descendant { return true }
        let arguments = ["merge-base", "--is-ancestor", ancestor.rawValue, descendant.rawValue]
        let result = try git.run(arguments)
        switch result.status {
        case 0: return true
        case 1: return false
        default: throw git.failure(arguments, result)
        }
    }

    /// The parents of a commit (none for a root), or nil when the commit is not in the
    /// cache. Never fetches it (see ``hasCommit(_:)``).
    func parentsIfPresent(of commit: GitCommitID) throws -> [String]? {
        let result = try git.run(["rev-list", "--no-walk", "--parents", "--missing=print", commit.rawValue])
        guard result.succeeded else { return nil }
        let fields = result.outputText.split(whereSeparator: { $0 == " " || $0.isNewline }).map(String.init)
        guard fields.first == commit.rawValue else { return nil }
        return Array(fields.dropFirst())
    }

    /// Whether the first-parent chain from `tip` ends at the window's edge rather than at
    /// a real root commit.
    func firstParentChainIsCut(from tip: GitCommitID) throws -> Bool {
        let shallow = shallowCommits()
        guard !shallow.isEmpty else { return false }
        let ends = try git.lines(["rev-list", "--first-parent", "--max-parents=0", tip.rawValue])
        return ends.contains(where: shallow.contains)
    }

    /// Whether a commit-graph exists (so Bloom filters can answer path questions).
    var hasCommitGraph: Bool {
        let info = directory.appendingPathComponent("objects/info")
        return FileManager.default.fileExists(atPath: info.appendingPathComponent("commit-graph").path)
            || FileManager.default.fileExists(
                atPath: info.appendingPathComponent("commit-graphs/commit-graph-chain").path)
    }

    /// Fetches commits by name (with their history down to what the cache has), for commits
    /// that are not on the followed branch.
    /// Makes `commit` present: deepens a shallow cache until it is there, else asks the
    /// remote for it by name, once (a commit off the branch).
    /// - Throws: ``GitSourceError`` (`.commitNotFound`) when the remote does not have it.
    mutating func ensureCommit(_ commit: GitCommitID) throws {
        var fetchedDirectly = false
        while try !hasCommit(commit) {
            let deepened = shallowCommits().isEmpty ? false : try deepen()
            if !deepened {
                guard !fetchedDirectly else {
                    throw GitSourceError(.commitNotFound, "commit \(commit.rawValue) is not in \(remote.display)")
                }
                fetchedDirectly = true
                try? fetchCommits([commit])
            }
        }
    }

    func fetchCommits(_ commits: [GitCommitID]) throws {
        let arguments =
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=blob:none", "origin"]
            + commits.map(\.rawValue)
        let result = try git.run(arguments)
        guard result.succeeded else { throw remoteFailure(arguments, result) }
    }

    /// Fetches the objects (blobs) with these names that are not here yet, in one request.
    /// git skips the request when all of them are present.
    func prefetch(objects: [String]) throws {
        guard !objects.isEmpty else { return }
        let arguments = [
            "-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
            "--recurse-submodules=no", "--filter=blob:none", "--stdin", "origin",
        ]
        let result = try git.run(arguments, input: Data((objects.joined(separator: "\n") + "\n").utf8))
        guard result.succeeded else { throw remoteFailure(arguments, result) }
    }
}

/// Parses git's output (one full commit name, trailing newline allowed).
func commitID(_ output: String) throws -> GitCommitID {
    let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
    do {
        return try GitCommitID(text)
    } catch {
        throw GitSourceError(
            .gitFailed,
            "git printed \(quoted(String(text.prefix(100)))) where a commit name was expected (is this a SHA-256 repository? only SHA-1 is supported)"
        )
    }
}
