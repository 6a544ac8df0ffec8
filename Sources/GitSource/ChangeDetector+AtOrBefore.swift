import Foundation
import OCI

extension ChangeDetector {
    /// The version of this source at `commit`: the newest commit at or before it along first
    /// parents that the source selects (`paths`, `ignore_paths`, `[ci skip]`,
    /// `commit_filter`, with the same ``HistoryWalker`` `check` uses), described as `check`
    /// describes it. What `check` would have reported as newest had the branch ended at
    /// `commit`: `out`'s `promote.from` a release commit uses it to find the image this
    /// resource published for that commit.
    ///
    /// Deepens the cache only until the answer is certain; a commit off the branch is asked
    /// for by name, once. Branch mode only (a release-mode source's versions are tags).
    /// - Returns: nil when no commit at or before `commit` matches.
    /// - Throws: ``GitSourceError``: `.commitNotFound` when the remote does not have the
    ///   commit, `.configuration` for a release-mode source.
    public func change(atOrBefore commit: GitCommitID) throws -> SourceChange? {
        try configuration.validate()
        guard !configuration.isReleaseMode else {
            throw GitSourceError(
                .invalidConfiguration,
                "the version of a release-mode source at a commit is its release tag, not a commit at or before it; use a branch-mode source (no tag_filter or tag_regex)"
            )
        }
        return try withCache { repository in
            try repository.update()
            try repository.ensureCommit(commit)
            while true {
                let shallow = repository.shallowCommits()
                let found = try HistoryWalker(configuration: configuration, repository: repository).walk(
                    from: commit, excluding: [], limit: 1)
                // The window's edge looks like a root commit that adds every file: not a real match.
                let certain: Bool
                if let first = found.first {
                    certain = !shallow.contains(first.rawValue)
                } else {
                    certain = try !repository.firstParentChainIsCut(from: commit)
                }
                if certain {
                    guard let match = found.first else { return nil }
                    return try describe([(match, nil)], in: repository)[0]
                }
                guard try repository.deepen() else {
                    throw GitSourceError(
                        .gitFailed,
                        "the history of \(remote.display) before \(commit.short) cannot be fetched completely (is the commit on \(branchDescription)?)"
                    )
                }
            }
        }
    }
}
