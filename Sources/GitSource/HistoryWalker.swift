import Foundation

/// The first-parent walks that decide which commits are changes: path filtering (see
/// ``PathFilter``) and message filtering (`[ci skip]`, `commit_filter`), done by git itself
/// so that pathspecs and regular expressions mean exactly what they mean in git.
struct HistoryWalker {
    let configuration: GitSourceConfiguration
    let repository: CachedRepository

    /// One `--grep` pass. git ORs several `--grep`s (ANDs them with `--all-match`) and
    /// `--invert-grep` negates the result, so an include list and an exclude list cannot
    /// share a pass.
    struct MessageStage: Equatable {
        var patterns: [String]
        var invert: Bool
        var allMatch: Bool

        var arguments: [String] {
            ["--basic-regexp"] + patterns.map { "--grep=" + $0 } + (invert ? ["--invert-grep"] : [])
                + (allMatch ? ["--all-match"] : [])
        }
    }

    /// git-resource's patterns: `\s` is any whitespace; case matters.
    static let ciSkipPatterns = [#"\[ci\sskip\]"#, #"\[skip\sci\]"#]

    /// The message passes; the first one runs inside the walk itself.
    var messageStages: [MessageStage] { Self.messageStages(for: configuration) }

    /// The message passes for a configuration: one pass for `[ci skip]` and the excludes
    /// (unless `exclude_all_match` needs its own), then the includes.
    static func messageStages(for configuration: GitSourceConfiguration) -> [MessageStage] {
        var stages: [MessageStage] = []
        let filter = configuration.commitFilter ?? CommitFilter()
        let skip = configuration.disableCISkip ? [] : Self.ciSkipPatterns
        if filter.excludeAllMatch && !filter.exclude.isEmpty {
            stages.append(MessageStage(patterns: filter.exclude, invert: true, allMatch: true))
            if !skip.isEmpty { stages.append(MessageStage(patterns: skip, invert: true, allMatch: false)) }
        } else if !(filter.exclude + skip).isEmpty {
            stages.append(MessageStage(patterns: filter.exclude + skip, invert: true, allMatch: false))
        }
        if !filter.include.isEmpty {
            stages.append(MessageStage(patterns: filter.include, invert: false, allMatch: filter.includeAllMatch))
        }
        return stages
    }

    var pathFilter: PathFilter {
        PathFilter(
            paths: configuration.paths, ignorePaths: configuration.ignorePaths,
            tagFile: configuration.tagFile?.normalizedPath, splitLiterals: repository.hasCommitGraph
        )
    }

    /// The changes on the first-parent chain from `tip`, newest first, stopping at (not
    /// including) the commits in `excluding` and their ancestors.
    /// - Parameter limit: At most this many (the newest); nil for all.
    func walk(from tip: GitCommitID, excluding: [String], limit: Int?) throws -> [GitCommitID] {
        let filter = pathFilter
        let groups: [[String]?] = filter.isUnfiltered ? [nil] : filter.groups.map { $0 }
        let range = [tip.rawValue] + (excluding.isEmpty ? [] : ["--not"] + excluding)
        let perGroup = try groups.map { try walkGroup(range: range, pathspecs: $0, limit: limit) }
        if perGroup.count == 1 { return perGroup[0] }

        // Several walks: order their union along the chain itself.
        let chain = try repository.git.lines(["rev-list", "--first-parent"] + range)
        var position: [String: Int] = [:]
        for (index, commit) in chain.enumerated() { position[commit] = index }
        let union = Set(perGroup.joined())
        let ordered = union.sorted { (position[$0.rawValue] ?? .max) < (position[$1.rawValue] ?? .max) }
        return limit.map { Array(ordered.prefix($0)) } ?? ordered
    }

    private func walkGroup(range: [String], pathspecs: [String]?, limit: Int?) throws -> [GitCommitID] {
        let stages = messageStages
        let first = stages.first?.arguments ?? []
        let rest = Array(stages.dropFirst())
        let paths = pathspecs.map { ["--"] + $0 } ?? []
        guard let limit, !rest.isEmpty else {
            // One pass filters completely, so git can stop at `limit` itself.
            let count = limit.map { ["--max-count=\($0)"] } ?? []
            let candidates = try repository.git.lines(["rev-list", "--first-parent"] + count + first + range + paths)
            return try applyStages(rest, to: candidates).map(commitID)
        }
        // Later passes may drop commits: ask for more until enough survive or the walk ends.
        var batch = max(limit * 4, 32)
        while true {
            let candidates = try repository.git.lines(
                ["rev-list", "--first-parent", "--max-count=\(batch)"] + first + range + paths)
            let kept = try applyStages(rest, to: candidates)
            if kept.count >= limit || candidates.count < batch {
                return try kept.prefix(limit).map(commitID)
            }
            batch *= 4
        }
    }

    /// Keeps the commits (in order) that pass every stage.
    func applyStages(_ stages: [MessageStage], to commits: [String]) throws -> [String] {
        var current = commits
        for stage in stages where !current.isEmpty {
            let input = Data((current.joined(separator: "\n") + "\n").utf8)
            current = try repository.git.lines(
                ["rev-list", "--stdin", "--no-walk=unsorted"] + stage.arguments, input: input)
        }
        return current
    }

    /// The commits among `commits` that are changes by themselves (release mode): they
    /// touch the watched paths compared with their first parent, and their messages pass.
    func matching(_ commits: [GitCommitID]) throws -> Set<GitCommitID> {
        guard !commits.isEmpty else { return [] }
        let unique = Array(Set(commits.map(\.rawValue)))
        let filter = pathFilter
        var touched: Set<String>
        if filter.isUnfiltered {
            touched = Set(unique)
        } else {
            touched = []
            let input = Data((unique.joined(separator: "\n") + "\n").utf8)
            for group in filter.groups {
                let lines = try repository.git.lines(
                    ["rev-list", "--first-parent", "--stdin", "--no-walk=unsorted", "--"] + group, input: input)
                touched.formUnion(lines)
            }
        }
        let kept = try applyStages(messageStages, to: unique.filter(touched.contains))
        return Set(try kept.map(commitID))
    }
}
