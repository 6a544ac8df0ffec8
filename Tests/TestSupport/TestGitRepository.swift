import Foundation

/// A git repository in a temporary directory, built commit by commit by a test.
///
/// Every git command runs with an isolated environment (``environment``): no global or
/// system configuration, a fixed identity, no signing, no pager, no prompts, so the host's
/// git setup never leaks in. Dates are deterministic when a test passes them.
///
/// ```swift
/// try await withTestGitRepository(branch: "main") { repo in
///     let first = try repo.commit("add app", files: ["Dockerfile": "FROM scratch\n"])
///     try repo.tag("v1.0.0", message: "release")          // annotated
///     let remote = try repo.bareClone()                    // for "git clone <remote.url>"
/// }
/// ```
public final class TestGitRepository: Sendable {
    /// The work tree (or, for a bare repository, the repository directory).
    public let path: URL
    /// True for a bare repository (from ``bareClone(at:)``).
    public let isBare: Bool

    /// The `file://` URL of the repository, for `git clone` or a resource's `uri`.
    public var url: URL { URL(fileURLWithPath: path.path, isDirectory: true) }

    /// The name used for author and committer.
    public static let authorName = "Slipway Test"
    /// The e-mail used for author and committer.
    public static let authorEmail = "test@slipway.invalid"

    /// The isolated environment every git command of this type runs with: this process's
    /// environment without any `GIT_*` variable, plus a private `HOME`, no global or
    /// system config, a fixed identity and `LC_ALL=C`. Pass it to code under test that
    /// runs git itself, to get the same isolation.
    public static func environment(home: URL) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GIT_") }
        environment["HOME"] = home.path
        environment["XDG_CONFIG_HOME"] = home.appendingPathComponent(".config").path
        environment["GIT_CONFIG_GLOBAL"] = "/dev/null"
        environment["GIT_CONFIG_SYSTEM"] = "/dev/null"
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        environment["GIT_AUTHOR_NAME"] = authorName
        environment["GIT_AUTHOR_EMAIL"] = authorEmail
        environment["GIT_COMMITTER_NAME"] = authorName
        environment["GIT_COMMITTER_EMAIL"] = authorEmail
        environment["GIT_TERMINAL_PROMPT"] = "0"
        environment["GIT_PAGER"] = "cat"
        environment["LC_ALL"] = "C"
        return environment
    }

    /// Settings passed with `-c` on every command, so behaviour does not depend on the
    /// git version's defaults.
    private static let settings = [
        "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", "-c", "core.autocrlf=false",
        "-c", "advice.detachedHead=false", "-c", "protocol.file.allow=always",
        "-c", "init.defaultBranch=main",
    ]

    private let home: URL

    private init(path: URL, isBare: Bool, home: URL) {
        self.path = path
        self.isBare = isBare
        self.home = home
    }

    /// Creates an empty repository (no commits) at `directory`, which must not exist or be
    /// empty, with `branch` as the unborn current branch.
    ///
    /// - Parameter home: The `HOME` for git commands; by default a `.home` directory beside
    ///   `directory`, created here.
    public static func create(at directory: URL, branch: String = "main", home: URL? = nil) throws -> TestGitRepository
    {
        let home = home ?? directory.deletingLastPathComponent().appendingPathComponent(".home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let repository = TestGitRepository(path: directory.resolvingSymlinksInPath(), isBare: false, home: home)
        try repository.git("init", "--quiet", "--initial-branch=\(branch)")
        return repository
    }

    /// Runs `git <arguments>` in the repository with the isolated environment and returns
    /// standard output without its trailing newline.
    ///
    /// - Parameter environment: Extra variables for this command (e.g. dates).
    /// - Throws: ``TestSupportError`` with git's standard error when git fails.
    @discardableResult
    public func git(_ arguments: [String], environment extra: [String: String] = [:], stdin: Data? = nil) throws
        -> String
    {
        var environment = Self.environment(home: home)
        environment.merge(extra) { _, new in new }
        let result = try runProcess(
            "git", Self.settings + arguments, stdin: stdin, environment: environment, currentDirectory: path
        ).checked()
        var output = result.stdoutString
        while output.hasSuffix("\n") { output.removeLast() }
        return output
    }

    /// Runs `git <arguments…>`; see ``git(_:environment:stdin:)``.
    @discardableResult
    public func git(_ arguments: String...) throws -> String {
        try git(arguments)
    }

    /// Writes and deletes files, stages everything and commits.
    ///
    /// - Parameters:
    ///   - message: The commit message.
    ///   - files: Paths relative to the work tree; a string is written (directories are
    ///     created), `nil` deletes the file. Applied in path order.
    ///   - date: Author and committer date; nil uses the current time.
    ///   - allowEmpty: Commit even when nothing changed.
    /// - Returns: The new commit's full hash.
    @discardableResult
    public func commit(_ message: String, files: [String: String?] = [:], date: Date? = nil, allowEmpty: Bool = false)
        throws -> String
    {
        for (relativePath, content) in files.sorted(by: { $0.key < $1.key }) {
            let file = path.appendingPathComponent(relativePath)
            if let content {
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(content.utf8).write(to: file)
            } else if FileManager.default.fileExists(atPath: file.path) {
                try FileManager.default.removeItem(at: file)
            }
        }
        try git("add", "--all")
        var arguments = ["commit", "--quiet", "--no-verify", "--message", message]
        if allowEmpty { arguments.append("--allow-empty") }
        try git(arguments, environment: Self.dateEnvironment(date))
        return try head()
    }

    /// Commits without changing any file.
    @discardableResult
    public func emptyCommit(_ message: String, date: Date? = nil) throws -> String {
        try commit(message, date: date, allowEmpty: true)
    }

    /// Creates branch `name` at `startPoint` (HEAD by default); with `checkout`, switches to it.
    public func branch(_ name: String, at startPoint: String = "HEAD", checkout: Bool = false) throws {
        if checkout {
            try git("checkout", "--quiet", "-b", name, startPoint)
        } else {
            try git("branch", name, startPoint)
        }
    }

    /// Checks out a branch, tag or commit (a tag or commit gives a detached HEAD).
    public func checkout(_ reference: String) throws {
        try git("checkout", "--quiet", reference)
    }

    /// Merges `reference` into the current branch with a merge commit (`--no-ff`), even when a
    /// fast-forward would do.
    /// - Returns: The merge commit's hash.
    @discardableResult
    public func merge(_ reference: String, message: String? = nil, date: Date? = nil) throws -> String {
        try git(
            ["merge", "--quiet", "--no-ff", "--no-edit", "--message", message ?? "Merge \(reference)", reference],
            environment: Self.dateEnvironment(date)
        )
        return try head()
    }

    /// Creates a tag at `target`: annotated when `message` is given (tagger date `date`),
    /// lightweight otherwise.
    public func tag(_ name: String, at target: String = "HEAD", message: String? = nil, date: Date? = nil) throws {
        if let message {
            try git(["tag", "--annotate", "--message", message, name, target], environment: Self.dateEnvironment(date))
        } else {
            try git("tag", name, target)
        }
    }

    /// The full hash of HEAD's commit.
    public func head() throws -> String {
        try revParse("HEAD")
    }

    /// The full hash of the commit `revision` names; a tag gives the commit it points at.
    /// Use ``git(_:environment:stdin:)`` for other objects (`git rev-parse v1^{tag}`).
    public func revParse(_ revision: String) throws -> String {
        try git("rev-parse", "--verify", "--quiet", "\(revision)^{commit}")
    }

    /// The name of the current branch, or nil when HEAD is detached.
    public func currentBranch() throws -> String? {
        // symbolic-ref also names an unborn branch (no commits yet); it fails when detached.
        let result = try runProcess(
            "git", Self.settings + ["symbolic-ref", "--quiet", "--short", "HEAD"],
            environment: Self.environment(home: home), currentDirectory: path
        )
        guard result.succeeded else { return nil }
        return result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Makes a bare clone, to serve as a "remote" (clone it by ``url``), and adds it as
    /// remote `remoteName` of this repository so ``push(_:)`` can update it.
    ///
    /// - Parameter directory: Where to put it; by default `<name>.git` beside this repository.
    public func bareClone(at directory: URL? = nil, remoteName: String = "origin") throws -> TestGitRepository {
        let target =
            directory ?? path.deletingLastPathComponent().appendingPathComponent(path.lastPathComponent + ".git")
        try git("clone", "--quiet", "--bare", path.path, target.path)
        try git("remote", "add", remoteName, target.path)
        return TestGitRepository(path: target.resolvingSymlinksInPath(), isBare: true, home: home)
    }

    /// Pushes refspecs (default: all branches and tags) to remote `remoteName`, forcing.
    public func push(
        _ refspecs: [String] = ["refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"], remoteName: String = "origin"
    ) throws {
        try git(["push", "--quiet", "--force", remoteName] + refspecs)
    }

    private static func dateEnvironment(_ date: Date?) -> [String: String] {
        guard let date else { return [:] }
        // git's internal date format: seconds since the epoch and a zone.
        let value = "\(Int64(date.timeIntervalSince1970.rounded(.down))) +0000"
        return ["GIT_AUTHOR_DATE": value, "GIT_COMMITTER_DATE": value]
    }
}

/// Runs `body` with a new empty repository in a temporary directory (branch `branch`,
/// no commits yet) and removes the directory afterwards, also when `body` throws.
/// A ``TestGitRepository/bareClone(at:remoteName:)`` made inside lands in the same
/// directory and goes with it.
public func withTestGitRepository<R>(
    branch: String = "main",
    _ body: (TestGitRepository) async throws -> R
) async throws -> R {
    try await withTemporaryDirectory(prefix: "slipway-git") { directory in
        let repository = try TestGitRepository.create(
            at: directory.appending("repo"), branch: branch, home: directory.appending(".home")
        )
        return try await body(repository)
    }
}
