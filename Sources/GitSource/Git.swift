import Console
import Foundation
import Spawn

/// Runs `git` with the settings every command of the detector needs, in one repository.
///
/// Why the `-c` settings on every command rather than in the repository's config: the same
/// runner also clones and checks out into directories we did not create, and a setting
/// given on the command line is passed on to the git processes git starts itself (the lazy
/// fetch of a partial clone, `git-remote-https`).
struct Git: Sendable {
    let runner: any CommandRunner
    let log: Log
    /// Credential variables (see ``GitCredentials``) and the fixed variables below.
    let environment: [String: String?]
    /// `-c` settings from the credentials (the helper definition; never a secret).
    let credentialSettings: [String]
    /// Values scrubbed from anything git prints before it reaches a message.
    let secrets: [String]
    /// The repository (`git -C`); nil for commands that need none (`ls-remote`, `clone`).
    let directory: URL?

    static let settings = [
        "-c", "gc.auto=0",  // no surprise repack in the middle of a check; see CloneCache.maintain
        "-c", "maintenance.auto=false",
        "-c", "fetch.writeCommitGraph=false",  // we write it ourselves, with changed-path filters
        "-c", "fetch.showForcedUpdates=false",  // that report walks history; we never read it
        "-c", "advice.fetchShowForcedUpdates=false",
        "-c", "core.commitGraph=true",
        "-c", "commitGraph.readChangedPaths=true",
        "-c", "log.showSignature=false",
        "-c", "advice.detachedHead=false",
        "-c", "core.hooksPath=/dev/null",
        "-c", "protocol.version=2",
    ]

    /// Variables that would point git at another repository or change its output.
    static let fixedEnvironment: [String: String?] = [
        "GIT_TERMINAL_PROMPT": "0",  // never wait for a password on a terminal nobody watches
        "GIT_DIR": nil, "GIT_WORK_TREE": nil, "GIT_INDEX_FILE": nil, "GIT_OBJECT_DIRECTORY": nil,
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": nil, "GIT_NAMESPACE": nil, "GIT_COMMON_DIR": nil,
        "GIT_CONFIG_PARAMETERS": nil, "GIT_CONFIG_COUNT": nil, "GIT_PAGER": "cat", "LC_ALL": "C",
        "GIT_LFS_SKIP_SMUDGE": "1",  // a check never needs large files
    ]

    func at(_ directory: URL?) -> Git {
        Git(
            runner: runner, log: log, environment: environment, credentialSettings: credentialSettings,
            secrets: secrets, directory: directory)
    }

    /// Runs `git arguments…` and returns the result whatever the status.
    func run(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
        var full = Self.settings + credentialSettings
        if let directory { full += ["-C", directory.path] }
        full += arguments
        let started = Date()
        let idle: Duration? = Self.talksToRemote(arguments) ? .seconds(GitTransport.stallTimeout) : nil
        let result: CommandResult
        do {
            result = try runner.run(Command("git", full, environment: environment, input: input, idleTimeout: idle))
        } catch let error as SpawnError {
            throw GitSourceError(.gitFailed, error.description)
        }
        log.debug(
            "git \(arguments.prefix(12).joined(separator: " ")) → \(result.status) in \(Int(Date().timeIntervalSince(started) * 1000)) ms"
        )
        return result
    }

    /// True for the subcommands that talk to a remote (after any `-c name=value`).
    static func talksToRemote(_ arguments: [String]) -> Bool {
        var index = 0
        while index < arguments.count, arguments[index] == "-c" { index += 2 }
        guard index < arguments.count else { return false }
        return ["fetch", "ls-remote", "clone", "push"].contains(arguments[index])
    }

    /// Runs `git arguments…` and returns standard output.
    /// - Throws: ``GitSourceError`` (`.command`) naming the command, its status and the end
    ///   of git's standard error, when git fails.
    @discardableResult
    func output(_ arguments: [String], input: Data? = nil) throws -> String {
        let result = try run(arguments, input: input)
        guard result.succeeded else { throw failure(arguments, result) }
        return result.outputText
    }

    /// Standard output split into lines, without empty ones.
    func lines(_ arguments: [String], input: Data? = nil) throws -> [String] {
        try output(arguments, input: input).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// The error for a failed git command, with secrets scrubbed.
    func failure(_ arguments: [String], _ result: CommandResult, kind: GitSourceError.Kind = .gitFailed)
        -> GitSourceError
    {
        let how =
            result.timedOut
            ? "was stopped: the remote sent nothing for \(GitTransport.stallTimeout) s (it accepted the connection but does not answer)"
            : result.terminatedBySignal
                ? "was killed by signal \(result.status)" : "failed with status \(result.status)"
        // git's message spans lines ("fatal: …", "Please make sure …", ssh's "\r\n"); an
        // error is one line, so they are joined.
        var detail = scrub(result.errorText).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " | ")
        if detail.count > 1500 { detail = "…" + detail.suffix(1500) }
        let shown = Command("git", Array(arguments.prefix(16))).displayString + (arguments.count > 16 ? " …" : "")
        return GitSourceError(kind, "`\(shown)` \(how)" + (detail.isEmpty ? "" : ": \(detail)"))
    }

    /// Replaces every secret (and every line of a private key) in `text` with `***`.
    func scrub(_ text: String) -> String {
        var result = text
        for secret in secrets where secret.count >= 4 {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        return result
    }
}
