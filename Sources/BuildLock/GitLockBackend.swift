import Console
import Foundation
import GitSource
import Spawn

/// `git:<uri>`: the lock is the ref `refs/slipway-locks/<key>` in the lock repository,
/// as Concourse's pool resource keeps its locks, so it works across workers.
///
/// Taking it pushes a fresh commit (empty tree; the holder's record as its message) with
/// `--force-with-lease=<ref>:` — "the ref must not exist" — which the server checks under
/// its ref lock, so of two pushers exactly one creates it. Releasing deletes it with
/// `--force-with-lease=<ref>:<our commit>`, so a lock that was taken over is left alone.
/// A lock whose commit is older than the TTL is deleted the same way, leased on the commit
/// that was judged stale, so of two takers-over only one deletes it.
///
/// The commit time is the holder's clock at the time it took the lock: the TTL must exceed
/// the longest build plus the clock skew between workers.
///
/// The lock repository's credentials (`LOCK_PRIVATE_KEY`, `LOCK_USERNAME`/`LOCK_PASSWORD`)
/// reach git only for the commands that talk to it (push, fetch), the way the resource's
/// `git:` source passes its own (``GitCredentials``): a helper reading variables, a key
/// file of mode 0600 that exists only while that command runs. git's output is scrubbed of
/// them before it reaches a message.
final class GitLockBackend: LockBackend, Sendable {
    let uri: String
    let key: LockKey
    let ttl: Duration
    let credentials: GitCredentials
    let runner: any CommandRunner
    let log: Log
    /// A private bare repository where lock commits are made and fetched.
    private let scratch: URL

    var location: String { "git:\(uri)" }
    var ref: String { "refs/slipway-locks/" + key.safeName }

    init(
        uri: String, key: LockKey, ttl: Duration, credentials: GitCredentials = GitCredentials(),
        runner: any CommandRunner, log: Log
    ) throws {
        self.uri = uri
        self.key = key
        self.ttl = ttl
        self.credentials = credentials
        self.runner = runner
        self.log = log
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-lock-\(UUID().uuidString)")
        try git(
            ["init", "--bare", "--quiet", scratch.path], inScratch: false,
            what: "create a scratch repository for lock commits")
    }

    func removeScratch() {
        try? FileManager.default.removeItem(at: scratch)
    }

    func attempt() throws -> LockAttempt {
        let holder = LockHolder.current(key: key, ttl: ttl)
        let tree = try git(["mktree"], input: Data(), what: "make the empty tree").outputText.trimmed
        let message = "slipway lock \(key)\n\n" + String(decoding: holder.encoded(), as: UTF8.self) + "\n"
        let commit = try git(["commit-tree", tree, "-m", message], what: "make the lock commit").outputText.trimmed

        let push = try run(
            ["push", "--quiet", "--no-verify", "--force-with-lease=\(ref):", uri, "\(commit):\(ref)"], remote: true)
        if push.succeeded {
            return .acquired(release: { [self] in release(commit: commit) })
        }
        // Rejected because the ref exists, or the push failed outright: reading the lock
        // tells which.
        let fetch = try run(
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", uri, "+\(ref):refs/observed"], remote: true)
        if !fetch.succeeded {
            if fetch.errorText.contains("couldn't find remote ref") {
                return .retry  // released between our push and our fetch
            }
            throw LockError(
                .unusableBackend,
                "cannot take lock \(key) in \(uri): git push said: \(push.errorText.oneLine); git fetch said: \(fetch.errorText.oneLine). Check the URI and the credentials for the lock repository"
            )
        }
        let shown = try git(["log", "-1", "--format=%H%n%ct%n%B", "refs/observed"], what: "read the lock commit")
            .outputText
        let lines = shown.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count >= 2, let committed = Double(lines[1]) else {
            throw LockError(.unusableBackend, "cannot read the lock commit of \(ref) in \(uri): \(shown.prefix(200))")
        }
        let observed = String(lines[0])
        let owner = lines.count > 2 ? LockHolder.decode(Data(lines[2].utf8)) : nil
        let age = Date().timeIntervalSince1970 - committed
        guard age > ttl.seconds else { return .held(owner) }

        let delete = try run(
            ["push", "--quiet", "--no-verify", "--force-with-lease=\(ref):\(observed)", uri, ":\(ref)"], remote: true)
        if delete.succeeded {
            log.info(
                "took over lock \(key) from \(describe(owner)): its lock commit is \(Int(age)) s old, more than LOCK_TTL (\(Int(ttl.seconds)) s)"
            )
        }
        // Lost the race to another taker-over, or won: either way look again.
        return .retry
    }

    private func release(commit: String) {
        defer { removeScratch() }
        let result = try? run(
            ["push", "--quiet", "--no-verify", "--force-with-lease=\(ref):\(commit)", uri, ":\(ref)"], remote: true)
        if result?.succeeded != true {
            log.info(
                "could not release lock \(key) in \(uri) (taken over after LOCK_TTL, or the repository is unreachable): \(result?.errorText.oneLine ?? "git did not start")"
            )
        }
    }

    /// Runs git in the scratch repository; a failure to start becomes a ``LockError``.
    /// - Parameter remote: the command talks to the lock repository, so it gets the
    ///   credentials; its standard error comes back with them scrubbed.
    private func run(_ arguments: [String], input: Data? = nil, inScratch: Bool = true, remote: Bool = false) throws
        -> CommandResult
    {
        let prefix = inScratch ? ["--git-dir", scratch.path] : []
        var environment: [String: String?] = [
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "slipway", "GIT_AUTHOR_EMAIL": "slipway@localhost",
            "GIT_COMMITTER_NAME": "slipway", "GIT_COMMITTER_EMAIL": "slipway@localhost",
            "GIT_AUTHOR_DATE": nil, "GIT_COMMITTER_DATE": nil,
        ]
        let fixed = ["-c", "commit.gpgSign=false", "-c", "protocol.file.allow=always"]
        // A remote that accepts and never answers (git:// has no timeout of its own) is
        // stopped as check's git is: no progress for GitTransport.stallTimeout.
        let idle: Duration? = remote ? .seconds(GitTransport.stallTimeout) : nil
        guard remote, !credentials.isEmpty else {
            return try stalled(
                start(
                    Command(
                        "git", prefix + fixed + arguments, environment: environment, input: input, idleTimeout: idle)))
        }
        let result = try credentials.withCommandSettings(scratch: FileManager.default.temporaryDirectory) {
            settings, secrets in
            environment.merge(secrets) { $1 }
            return try start(
                Command(
                    "git", prefix + fixed + settings + arguments, environment: environment, input: input,
                    idleTimeout: idle))
        }
        return try stalled(
            CommandResult(
                status: result.status, terminatedBySignal: result.terminatedBySignal,
                standardOutput: result.standardOutput,
                standardError: Data(credentials.scrub(result.errorText).utf8), timedOut: result.timedOut))
    }

    /// `result`, unless the runner stopped it for making no progress: then one line saying so.
    private func stalled(_ result: CommandResult) throws -> CommandResult {
        guard result.timedOut else { return result }
        throw LockError(
            .unusableBackend,
            "cannot reach the repository of lock \(key) (\(uri)): it sent nothing for \(GitTransport.stallTimeout) s "
                + "(it accepted the connection but does not answer)")
    }

    private func start(_ command: Command) throws -> CommandResult {
        do {
            return try runner.run(command)
        } catch {
            throw LockError(.unusableBackend, "cannot run git for lock \(key): \(error); install git")
        }
    }

    /// Runs git and requires success.
    @discardableResult
    private func git(_ arguments: [String], input: Data? = nil, inScratch: Bool = true, what: String) throws
        -> CommandResult
    {
        let result = try run(arguments, input: input, inScratch: inScratch)
        guard result.succeeded else {
            throw LockError(
                .unusableBackend,
                "cannot \(what) for lock \(key): git \(arguments.first ?? "") exited with \(result.status): \(result.errorText.oneLine)"
            )
        }
        return result
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
    /// git's message, which spans lines, as one line of an error.
    var oneLine: String {
        split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .joined(separator: " | ")
    }
}
