import Foundation

extension ChangeDetector {
    /// The branches the remote has now (`git ls-remote --heads`), for pruning the images of
    /// deleted ones. No clone, no cache: one round trip, with the source's credentials.
    public func remoteBranches() throws -> Set<String> {
        try configuration.validate()
        let credentials = GitCredentials(configuration: configuration)
        let scratch = cacheRoot.appendingPathComponent("slipway-git", isDirectory: true)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return try credentials.withGit(runner: runner, log: log, scratch: scratch) { git in
            let arguments = ["ls-remote", "--heads", remote.forGit]
            let result = try git.run(arguments)
            guard result.succeeded else { throw git.failure(arguments, result, kind: .unreadableRemote) }
            var branches = Set<String>()
            for line in result.outputText.split(separator: "\n") {
                guard let tab = line.firstIndex(of: "\t") else { continue }
                let reference = line[line.index(after: tab)...]
                if reference.hasPrefix("refs/heads/") {
                    branches.insert(String(reference.dropFirst("refs/heads/".count)))
                }
            }
            return branches
        }
    }
}
