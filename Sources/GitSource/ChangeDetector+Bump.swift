import Foundation
import OCI

extension ChangeDetector {
    /// What `bump_tag_file` did.
    public struct TagFileBump: Sendable, Equatable {
        public var commit: GitCommitID
        public var oldValue: String
        public var newValue: String
    }

    /// Commits a new tag file value to the branch and pushes it (`bump_tag_file`:
    /// a base release bumps the file that derived images watch).
    ///
    /// The branch is cloned shallowly, the value rewritten in place (see
    /// `TagFileValue.replacing`) and read back, then committed as `Slipway <slipway@localhost>`
    /// and pushed. A push rejected because the branch moved meanwhile is tried again on the
    /// new tip, three times at most. A file that already holds the new value is left as it is.
    /// - Parameter newValue: the new value, given the current one.
    public func bumpTagFile(message: String, _ newValue: (String) throws -> String) throws -> TagFileBump {
        try configuration.validate()
        guard let spec = configuration.tagFile else {
            throw GitSourceError(.configuration, "bump_tag_file needs source.tag_file: the file to bump")
        }
        guard let branch = configuration.branch else {
            throw GitSourceError(.configuration, "bump_tag_file needs git.branch: the branch to push the new value to")
        }
        try FileManager.default.createDirectory(at: cacheRoot, withIntermediateDirectories: true)
        return try GitCredentials(configuration: configuration).withGit(runner: runner, log: log, scratch: cacheRoot) { git in
            var attempt = 0
            while true {
                attempt += 1
                let work = cacheRoot.appendingPathComponent("slipway-bump-\(UUID().uuidString.prefix(8))")
                defer { try? FileManager.default.removeItem(at: work) }
                try git.output(["clone", "--quiet", "--depth", "1", "--single-branch", "--branch", branch.rawValue, "--", remote.forGit, work.path])
                let repository = git.at(work)
                let head = try GitCommitID(try repository.output(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines))
                let file = work.appendingPathComponent(spec.normalizedPath)
                guard let data = FileManager.default.contents(atPath: file.path), let text = String(data: data, encoding: .utf8) else {
                    throw GitSourceError(.tagFile, "tag file \(quoted(spec.normalizedPath)) does not exist on \(branch) of \(remote.display)")
                }
                let old = try TagFileValue.read(data, spec: spec, commit: head)
                let new = try newValue(old)
                if new == old {
                    // A retried put, or a release run again: the file already says so. An empty
                    // commit would fail, and a new one would make a version for nothing.
                    log.info("\(spec.normalizedPath) already holds \(new) on \(branch) of \(remote.display); nothing to commit")
                    return TagFileBump(commit: head, oldValue: old, newValue: new)
                }
                let rewritten = try TagFileValue.replacing(text, spec: spec, with: new)
                guard try TagFileValue.read(Data(rewritten.utf8), spec: spec, commit: head) == new else {
                    throw GitSourceError(.tagFile, "rewriting tag file \(quoted(spec.normalizedPath)) did not give \(quoted(new)) when read back")
                }
                try Data(rewritten.utf8).write(to: file)
                try repository.output(["-c", "user.name=Slipway", "-c", "user.email=slipway@localhost", "commit", "--quiet",
                                       "--message", message.replacingOccurrences(of: "{old}", with: old).replacingOccurrences(of: "{new}", with: new),
                                       "--", spec.normalizedPath])
                let commit = try GitCommitID(try repository.output(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines))
                let pushed = try repository.run(["push", "--quiet", "origin", "HEAD:refs/heads/\(branch.rawValue)"])
                if pushed.succeeded {
                    log.info("bumped \(spec.normalizedPath) from \(old) to \(new) in \(commit.short) on \(branch) of \(remote.display)")
                    return TagFileBump(commit: commit, oldValue: old, newValue: new)
                }
                guard attempt < 3, pushed.errorText.contains("rejected") || pushed.errorText.contains("fetch first") else {
                    throw repository.failure(["push", "origin", "HEAD:refs/heads/\(branch.rawValue)"], pushed)
                }
                log.info("\(branch) moved while bumping \(spec.normalizedPath); trying again on its new tip")
            }
        }
    }
}
