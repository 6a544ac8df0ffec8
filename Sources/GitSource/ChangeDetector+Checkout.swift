import Foundation
import OCI

extension ChangeDetector {
    /// Whether `ancestor` is `descendant` or one of its ancestors: `out` asks this before it
    /// moves a floating tag, so a tag never goes back to an older commit.
    ///
    /// Uses the check cache, deepening the window only until the answer is certain: found as
    /// an ancestor, or found the other way round (then it cannot be one), or the complete
    /// history has neither relation.
    /// - Throws: ``GitSourceError`` (`.commitNotFound`) naming the commit when the remote
    ///   does not have it at all.
    public func isAncestor(_ ancestor: GitCommitID, of descendant: GitCommitID) throws -> Bool {
        try configuration.validate()
        if ancestor == descendant { return true }
        return try withCache { repository in
            try repository.update()
            var fetchedDirectly = false
            while true {
                let shallow = repository.shallowCommits()
                let present = try (repository.hasCommit(ancestor), repository.hasCommit(descendant))
                if present.0 && present.1 {
                    if try repository.isAncestor(ancestor, of: descendant) { return true }
                    if try repository.isAncestor(descendant, of: ancestor) { return false }
                    if shallow.isEmpty { return false }
                } else if shallow.isEmpty {
                    // Complete history of the branch, yet a commit is missing: it lives on
                    // another branch (or nowhere). Ask for it by name, once.
                    let missing = [present.0 ? nil : ancestor, present.1 ? nil : descendant].compactMap { $0 }
                    if !fetchedDirectly {
                        fetchedDirectly = true
                        try? repository.fetchCommits(missing)
                        continue
                    }
                    throw GitSourceError(.commitNotFound, "commit \(missing[0].rawValue) is not in \(remote.display)")
                }
                guard try repository.deepen() else { return false }
            }
        }
    }

    /// The change `commit` stands for, its metadata, tag file value and (in release mode)
    /// release tag, exactly as `check` reports it: `out` returns this version for an image built from `commit`, so that
    /// Concourse sees one version, not two.
    ///
    /// Deepens the cache only until the commit is there; a commit off the branch is asked
    /// for by name, once.
    /// - Throws: ``GitSourceError`` (`.commitNotFound`) when the remote does not have it.
    public func change(at commit: GitCommitID) throws -> SourceChange {
        try configuration.validate()
        return try withCache { repository in
            try repository.update()
            try repository.ensureCommit(commit)
            var release: String?
            if configuration.isReleaseMode {
                // The version check would report: the newest matching release tag on the commit.
                guard let tag = try releaseTags(in: repository).last(where: { $0.commit == commit }) else {
                    let filter =
                        configuration.tagFilter.map { "tag_filter \(quoted($0))" }
                        ?? "tag_regex \(quoted(configuration.tagRegex ?? ""))"
                    throw GitSourceError(
                        .commitNotFound,
                        "commit \(commit.short) carries no release tag matching \(filter) in \(remote.display)")
                }
                release = tag.name
            }
            return try describe([(commit, release)], in: repository)[0]
        }
    }

    /// Writes a detached checkout of `commit` into `directory` (created if needed), for
    /// `in`'s `source/`, with the files git-resource writes into `.git/`: `ref` (the full
    /// commit), `short_ref` (its first 12 digits, the `{short_ref}` image tag) and `branch`
    /// (the configured branch, or the remote's default branch).
    ///
    /// The checkout is a shallow clone of that one commit with its files; the remote URL in
    /// its `.git/config` carries no credentials.
    public func checkout(_ commit: GitCommitID, into directory: URL) throws {
        try configuration.validate()
        let credentials = GitCredentials(configuration: configuration)
        let scratch = cacheRoot.appendingPathComponent("slipway-git", isDirectory: true)
        try credentials.withGit(runner: runner, log: log, scratch: scratch) { base in
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let git = base.at(directory)
            try git.output(["init", "--quiet"])
            let configured = try git.run(["config", "--get", "remote.origin.url"])
            if configured.succeeded {
                try git.output(["config", "remote.origin.url", remote.forGit])
            } else {
                try git.output(["remote", "add", "origin", remote.forGit])
            }
            // Most servers hand out a reachable commit by name (protocol v2); if this one
            // does not, fetch the branch and find the commit in it.
            let direct = try git.run(["fetch", "--quiet", "--no-tags", "--depth=1", "origin", commit.rawValue])
            if !direct.succeeded {
                let source = configuration.branch?.fullReference ?? "HEAD"
                let arguments = [
                    "fetch", "--quiet", "--no-tags", "origin", "+\(source):refs/remotes/origin/slipway-source",
                ]
                let result = try git.run(arguments)
                guard result.succeeded else { throw git.failure(arguments, result, kind: .unreadableRemote) }
            }
            let present = try git.run(["rev-parse", "--verify", "--quiet", commit.rawValue + "^{commit}"])
            guard present.succeeded else {
                throw GitSourceError(.commitNotFound, "commit \(commit.rawValue) is not in \(remote.display)")
            }
            try git.output(["checkout", "--quiet", "--detach", commit.rawValue])
            let branch = try configuration.branch?.rawValue ?? defaultBranch(git)
            let metadata = directory.appendingPathComponent(".git")
            try Data((commit.rawValue + "\n").utf8).write(to: metadata.appendingPathComponent("ref"), options: .atomic)
            try Data((commit.short + "\n").utf8).write(
                to: metadata.appendingPathComponent("short_ref"), options: .atomic)
            try Data((branch + "\n").utf8).write(to: metadata.appendingPathComponent("branch"), options: .atomic)
        }
    }

    /// The branch the remote's `HEAD` points at.
    private func defaultBranch(_ git: Git) throws -> String {
        for line in try git.lines(["ls-remote", "--symref", "origin", "HEAD"]) where line.hasPrefix("ref: refs/heads/")
        {
            let reference = line.dropFirst("ref: refs/heads/".count)
            return String(reference.prefix(while: { $0 != "\t" }))
        }
        throw GitSourceError(
            .unreadableRemote,
            "\(remote.display) does not say which branch is its default (no symbolic HEAD); set git.branch")
    }
}
