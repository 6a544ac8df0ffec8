import Foundation
import OCI

extension ChangeDetector {
    /// One release tag: its name and the commit it points at (peeled through annotated tags).
    struct ReleaseTag: Equatable {
        var name: String
        var commit: GitCommitID
    }

    /// Release mode (`tag_filter` / `tag_regex`): versions are tags, ordered by creation
    /// (`git tag --sort=creatordate`: the tagger date of an annotated tag, the commit date
    /// of a lightweight one; ties by name), each one's commit filtered like a branch commit
    /// (paths, `[ci skip]`, `commit_filter`).
    ///
    /// Every tag is fetched, whatever branch it is on; with `branch` set, only tags merged
    /// into that branch count (as in git-resource). A moved tag is followed: the version
    /// keeps its release name and gets the new commit.
    func releaseChanges(in repository: inout CachedRepository, since: SourceChange.Key?) throws -> [SourceChange] {
        try repository.update()
        let tags = try releaseTags(in: repository)
        var candidates = tags
        var newestOnly = true
        if let since {
            if let release = since.release, let index = tags.firstIndex(where: { $0.name == release }) {
                candidates = Array(tags[index...])
                newestOnly = false
            } else {
                log.info(
                    "release \(since.release.map { quoted($0) } ?? "(none)") of version \(since.commit.short) is gone from \(remote.display); reporting the newest matching release"
                )
            }
        }
        let walker = HistoryWalker(configuration: configuration, repository: repository)
        let matching = try walker.matching(candidates.map(\.commit))
        var kept = candidates.filter { matching.contains($0.commit) }
        if newestOnly { kept = Array(kept.suffix(configuration.effectiveVersionDepth)) }
        return try describe(kept.map { ($0.commit, $0.name) }, in: repository)
    }

    /// The tags that match `tag_filter` / `tag_regex` (and are merged into `branch`, when
    /// set), oldest first.
    func releaseTags(in repository: CachedRepository) throws -> [ReleaseTag] {
        var arguments = [
            "tag", "--list", "--sort=creatordate",
            "--format=%(refname:strip=2)%1f%(objecttype)%1f%(objectname)%1f%(*objecttype)%1f%(*objectname)",
        ]
        if configuration.branch != nil {
            guard try repository.tip() != nil else {
                throw GitSourceError(
                    .gitFailed,
                    "the cached clone of \(remote.display) has no \(CachedRepository.tipReference) after a fetch")
            }
            arguments += ["--merged", CachedRepository.tipReference]
        }
        if let filter = configuration.tagFilter { arguments += ["--", filter] }
        let regex = try configuration.tagRegex.map { try PosixRegex($0, dialect: .extended, key: "git.tag_regex") }
        var tags: [ReleaseTag] = []
        for line in try repository.git.lines(arguments) {
            let fields = line.split(separator: "\u{1f}", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5 else { continue }
            let name = fields[0]
            if let regex, !regex.matchesWhole(name) { continue }
            let commit: GitCommitID
            if fields[1] == "commit" {
                commit = try commitID(fields[2])
            } else if fields[1] == "tag" && fields[3] == "commit" {
                commit = try commitID(fields[4])
            } else if fields[1] == "tag" && fields[3] == "tag" {
                // A tag of a tag: let git peel it all the way.
                let peeled = try repository.git.run(["rev-parse", "--verify", "--quiet", "refs/tags/\(name)^{commit}"])
                guard peeled.succeeded else { continue }
                commit = try commitID(peeled.outputText)
            } else {
                continue  // a tag of a tree or a blob is no release
            }
            tags.append(ReleaseTag(name: name, commit: commit))
        }
        return tags
    }
}
