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
            throw GitSourceError(.invalidConfiguration, "bump_tag_file needs source.tag_file: the file to bump")
        }
        guard let branch = configuration.branch else {
            throw GitSourceError(
                .invalidConfiguration, "bump_tag_file needs git.branch: the branch to push the new value to")
        }
        try FileManager.default.createDirectory(at: cacheRoot, withIntermediateDirectories: true)
        return try GitCredentials(configuration: configuration).withGit(runner: runner, log: log, scratch: cacheRoot) {
            git in
            var attempt = 0
            while true {
                attempt += 1
                let work = cacheRoot.appendingPathComponent("slipway-bump-\(UUID().uuidString.prefix(8))")
                defer { try? FileManager.default.removeItem(at: work) }
                try git.output([
                    "clone", "--quiet", "--depth", "1", "--single-branch", "--branch", branch.rawValue, "--",
                    remote.forGit, work.path,
                ])
                let repository = git.at(work)
                let head = try GitCommitID(
                    try repository.output(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines))
                let file = work.appendingPathComponent(spec.normalizedPath)
                // Read from git's tree, never through the work tree: a tag file committed as a
                // link (or below a directory that is one) would otherwise read and write a
                // file outside the clone.
                let (data, text) = try readTagFile(spec, at: head, in: repository, branch: branch)
                let old = try TagFileValue.read(data, spec: spec, commit: head)
                let new = try newValue(old)
                if new == old {
                    // A retried put, or a release run again: the file already says so. An empty
                    // commit would fail, and a new one would make a version for nothing.
                    log.info(
                        "\(spec.normalizedPath) already holds \(new) on \(branch) of \(remote.display); nothing to commit"
                    )
                    return TagFileBump(commit: head, oldValue: old, newValue: new)
                }
                let rewritten = try Self.rewriting(text, spec: spec, to: new, commit: head)
                // Atomically: the rename replaces the path itself, so nothing is written through a link.
                try Data(rewritten.utf8).write(to: file, options: .atomic)
                try repository.output([
                    "-c", "user.name=Slipway", "-c", "user.email=slipway@localhost", "commit", "--quiet",
                    "--message", Self.bumpMessage(message, old: old, new: new),
                    "--", spec.normalizedPath,
                ])
                let commit = try GitCommitID(
                    try repository.output(["rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines))
                let pushed = try repository.run(["push", "--quiet", "origin", "HEAD:refs/heads/\(branch.rawValue)"])
                if pushed.succeeded {
                    log.info(
                        "bumped \(spec.normalizedPath) from \(old) to \(new) in \(commit.short) on \(branch) of \(remote.display)"
                    )
                    return TagFileBump(commit: commit, oldValue: old, newValue: new)
                }
                guard attempt < 3, pushed.errorText.contains("rejected") || pushed.errorText.contains("fetch first")
                else {
                    throw repository.failure(["push", "origin", "HEAD:refs/heads/\(branch.rawValue)"], pushed)
                }
                log.info("\(branch) moved while bumping \(spec.normalizedPath); trying again on its new tip")
            }
        }
    }

    /// The tag file at `head` as bytes and as text, read from git's tree (see `regularTagFile`).
    private func readTagFile(_ spec: TagFileSpec, at head: GitCommitID, in repository: Git, branch: GitBranchName)
        throws -> (Data, String)
    {
        let object = try regularTagFile(spec.normalizedPath, at: head, in: repository, branch: branch)
        let blob = try repository.run(["cat-file", "blob", object])
        guard blob.succeeded, case let data = blob.standardOutput, let text = String(data: data, encoding: .utf8) else {
            throw GitSourceError(
                .unusableTagFile,
                "tag file \(quoted(spec.normalizedPath)) on \(branch) of \(remote.display) could not be read")
        }
        return (data, text)
    }

    /// `text` with its tag value replaced by `new`, checked by reading it back.
    static func rewriting(_ text: String, spec: TagFileSpec, to new: String, commit: GitCommitID) throws -> String {
        let rewritten = try TagFileValue.replacing(text, spec: spec, with: new)
        guard try TagFileValue.read(Data(rewritten.utf8), spec: spec, commit: commit) == new else {
            throw GitSourceError(
                .unusableTagFile,
                "rewriting tag file \(quoted(spec.normalizedPath)) did not give \(quoted(new)) when read back"
            )
        }
        return rewritten
    }

    /// The bump's commit message: `template` with `{old}` and `{new}` filled in.
    static func bumpMessage(_ template: String, old: String, new: String) -> String {
        template.replacingOccurrences(of: "{old}", with: old).replacingOccurrences(of: "{new}", with: new)
    }

    /// The blob of the tag file at `commit` when it is a regular file; one line otherwise.
    /// `ls-tree` shows the entry's mode: a link is stored as a blob of mode 120000 whose
    /// content is its target, so reading it as a file would follow it out of the clone.
    func regularTagFile(_ path: String, at commit: GitCommitID, in repository: Git, branch: GitBranchName) throws
        -> String
    {
        let listed = try repository.output(["ls-tree", "--full-tree", commit.rawValue, "--", path])
        // "<mode> <type> <object>\t<path>"; nothing when the path (or a directory on the way) is not a tree entry.
        let fields = listed.split(separator: "\t", maxSplits: 1).first?.split(separator: " ") ?? []
        guard fields.count == 3 else {
            throw GitSourceError(
                .unusableTagFile,
                "tag file \(quoted(path)) does not exist on \(branch) of \(remote.display) (or a directory on its path is a symbolic link)"
            )
        }
        guard fields[0] != "120000" else {
            throw GitSourceError(.unusableTagFile, Self.symlinkRefusal(path, at: commit, remote: remote.display))
        }
        guard fields[1] == "blob" else {
            throw GitSourceError(
                .unusableTagFile,
                "tag file \(quoted(path)) on \(branch) of \(remote.display) is a \(fields[1] == "tree" ? "directory" : String(fields[1])), not a file"
            )
        }
        return String(fields[2])
    }

    static func symlinkRefusal(_ path: String, at commit: GitCommitID, remote: String) -> String {
        "tag file \(quoted(path)) at commit \(commit.short) of \(remote) is a symbolic link; a tag file must be a regular file in the repository"
    }

    /// Refuses a tag file that is a symbolic link at any of `commits`: its content (a blob)
    /// is the link's target, not a value. The mode is in the entry of the file's parent
    /// tree, read with the blobs in one `cat-file --batch`.
    func refuseSymlinkedTagFile(_ path: String, commits: [GitCommitID], git: Git) throws {
        let slash = path.lastIndex(of: "/")
        let parent = slash.map { String(path[..<$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // One name per line, answered in order ("<name> missing" for none).
        let names = Data(commits.map { "\($0.rawValue):\(parent)\n" }.joined().utf8)
        let resolved = try git.run(["cat-file", "--batch-check=%(objectname)"], input: names)
        guard resolved.succeeded else { throw git.failure(["cat-file", "--batch-check"], resolved) }
        let trees = resolved.outputText.split(whereSeparator: \.isNewline).map {
            String($0.split(separator: " ").first ?? "")
        }
        let contents = try catFileBatch(Array(Set(trees)), git: git, path: parent)
        for (commit, tree) in zip(commits, trees) {
            guard let content = contents[tree], content.type == "tree" else { continue }
            if Self.treeEntryMode(named: name, in: content.data, hashLength: tree.count / 2) == "120000" {
                throw GitSourceError(.unusableTagFile, Self.symlinkRefusal(path, at: commit, remote: remote.display))
            }
        }
    }

    /// The mode of entry `name` of a raw tree object (`<mode> <name>\0<hash>` entries).
    static func treeEntryMode(named name: String, in tree: Data, hashLength: Int) -> String? {
        let bytes = [UInt8](tree)
        var index = 0
        while index < bytes.count {
            guard let space = bytes[index...].firstIndex(of: 0x20), let nul = bytes[space...].firstIndex(of: 0) else {
                return nil
            }
            let mode = String(decoding: bytes[index..<space], as: UTF8.self)
            let entry = String(decoding: bytes[(space + 1)..<nul], as: UTF8.self)
            if entry == name { return mode }
            index = nul + 1 + hashLength
        }
        return nil
    }
}
