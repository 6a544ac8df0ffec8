import Foundation

extension ChangeDetector {
    /// The content of `path` at `commit`, or nil when the commit has no such file: what
    /// `track_base` reads a Dockerfile with. From the cached clone; the commit must be one
    /// `changes(since:)` or `change(at:)` returned, so it is in the cache.
    public func file(_ path: String, at commit: GitCommitID) throws -> Data? {
        let normalized = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return try withCache { repository in
            let git = repository.git
            let object = try git.run([
                "rev-parse", "--verify", "--quiet", "--end-of-options", "\(commit.rawValue):\(normalized)",
            ])
            guard object.succeeded else { return nil }
            let name = object.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
            try repository.prefetch(objects: [name])
            guard let content = try catFileBatch([name], git: git, path: normalized)[name], content.type == "blob"
            else { return nil }
            return content.data
        }
    }
}
