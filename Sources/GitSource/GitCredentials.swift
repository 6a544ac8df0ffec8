import Console
import Foundation
import Spawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How git gets the source's secrets without any of them reaching a process argument, a
/// URL, a log line or a message.
///
/// - https: a credential helper defined on the command line (`-c credential.helper=…`)
///   that prints `username=`/`password=` from two environment variables. The helper's text
///   holds only the variable names; a process's environment is readable by its own user
///   only. The helper list is reset first so no configured helper (`store`, a keychain)
///   saves the password anywhere.
/// - ssh: the key is written to a new file of mode 0600 in a new directory of mode 0700,
///   used through `GIT_SSH_COMMAND`, and removed when the operation ends, whatever
///   happens: also on SIGTERM and SIGINT (through ``TerminationCleanup``), and after
///   SIGKILL by the next run's sweep. `IdentitiesOnly` keeps ssh from offering any other key;
///   `StrictHostKeyChecking=no` because a check container has no `known_hosts` (as in
///   git-resource).
///
/// Public so that other git users with their own secrets (build-task's `LOCK=git:` lock
/// repository) give them to git exactly this way, through ``withCommandSettings(scratch:_:)``.
public struct GitCredentials: Sendable, Equatable {
    public var username: String?
    public var password: String?
    public var privateKey: String?

    /// Credentials given explicitly (nil: none of that kind).
    public init(username: String? = nil, password: String? = nil, privateKey: String? = nil) {
        self.username = username
        self.password = password
        self.privateKey = privateKey
    }

    /// True when no credential is set.
    public var isEmpty: Bool { username == nil && password == nil && privateKey == nil }

    static let usernameVariable = "SLIPWAY_GIT_USERNAME"
    static let passwordVariable = "SLIPWAY_GIT_PASSWORD"

    /// The helper git runs as `sh -c '<helper> get'`; it answers only `get`.
    static let helper =
        #"!f() { test "$1" = get || return 0; printf 'username=%s\npassword=%s\n' "$SLIPWAY_GIT_USERNAME" "$SLIPWAY_GIT_PASSWORD"; }; f"#

    init(configuration: GitSourceConfiguration) {
        let url = RemoteURL(configuration.uri)
        username = configuration.username ?? url.username
        password = configuration.password ?? url.password
        privateKey = configuration.privateKey
    }

    /// The strings to scrub from git's output: the password and each line of the key.
    public var secrets: [String] {
        var values: [String] = []
        if let password, !password.isEmpty { values.append(password) }
        if let privateKey {
            values += privateKey.split(whereSeparator: \.isNewline).map(String.init)
                .filter { !$0.hasPrefix("-----") && $0.count >= 16 }
        }
        return values
    }

    /// Runs `body` with the environment and settings that give git the credentials, then
    /// removes the key file (if one was written).
    ///
    /// - Parameter scratch: Where the private directory for the key file is made (the
    ///   cache root, which is `TMPDIR` in a check container).
    func withGit<R>(runner: any CommandRunner, log: Log, scratch: URL, _ body: (Git) throws -> R) throws -> R {
        try withCommandSettings(scratch: scratch) { settings, environment in
            var all = Git.fixedEnvironment
            all.merge(environment) { $1 }
            return try body(
                Git(
                    runner: runner, log: log, environment: all, credentialSettings: settings, secrets: secrets,
                    directory: nil))
        }
    }

    /// Runs `body` with what a `git` command needs to use these credentials: `-c` settings
    /// to put before its subcommand (the credential helper's definition, never a secret; the
    /// http time bound) and variables to add to its environment (the username and password,
    /// `GIT_SSH_COMMAND` naming the key file and the ssh time bounds, `GIT_ALLOW_PROTOCOL`;
    /// see ``GitTransport``). The key file, written with mode 0600 into a new 0700 directory
    /// under `scratch`, exists only while `body` runs. Nothing secret is in the settings.
    public func withCommandSettings<R>(
        scratch: URL, _ body: (_ settings: [String], _ environment: [String: String?]) throws -> R
    ) throws -> R {
        var environment: [String: String?] = [
            "GIT_ALLOW_PROTOCOL": GitTransport.allowedProtocols,
            "GIT_SSH_COMMAND": (["ssh"] + GitTransport.sshOptions).joined(separator: " "),
            "GIT_SSH_VARIANT": "ssh",
            // Children run in a process group of their own, away from any terminal: a
            // prompt there would stop them (SIGTTIN) rather than fail.
            "GIT_TERMINAL_PROMPT": "0",
        ]
        var settings = GitTransport.httpSettings
        if username != nil || password != nil {
            settings += ["-c", "credential.helper=", "-c", "credential.helper=" + Self.helper]
            environment[Self.usernameVariable] = username ?? ""
            environment[Self.passwordVariable] = password ?? ""
        }
        PrivateDirectory.sweep(scratch, prefix: Self.keyDirectoryPrefix)
        guard let privateKey else { return try body(settings, environment) }
        var made = false
        do {
            // Removed when `body` is done, and by the cleanup thread on SIGTERM or SIGINT (an
            // aborted build), which end the process without unwinding to here.
            return try PrivateDirectory.with(in: scratch, prefix: Self.keyDirectoryPrefix) { directory in
                made = true
                let keyFile = directory.appendingPathComponent("key")
                try writePrivateFile(keyFile, contents: normalizedKey(privateKey))
                environment["GIT_SSH_COMMAND"] =
                    ([
                        "ssh", "-i", shellQuote(keyFile.path), "-o", "IdentitiesOnly=yes", "-o",
                        "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    ] + GitTransport.sshOptions).joined(separator: " ")
                return try body(settings, environment)
            }
        } catch let error where !made {
            throw GitSourceError(.unusableCache, "\(error)")
        }
    }

    /// Removes the key directories that runs killed outright (SIGKILL, a container
    /// timeout) left in `cacheRoot` or its `slipway-git` cache: every one whose process no
    /// longer exists. `check`, `in` and `out` call it as they start.
    public static func removeAbandonedKeyDirectories(under cacheRoot: URL) {
        PrivateDirectory.sweep(cacheRoot, prefix: keyDirectoryPrefix)
        PrivateDirectory.sweep(
            cacheRoot.appendingPathComponent("slipway-git", isDirectory: true), prefix: keyDirectoryPrefix)
    }

    /// Key directories are `slipway-key.<pid>.XXXXXX` (``PrivateDirectory``).
    static let keyDirectoryPrefix = "slipway-key."

    /// `text` with the password and every line of the key replaced by `***`.
    public func scrub(_ text: String) -> String {
        var result = text
        for secret in secrets where secret.count >= 4 {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        return result
    }

    /// Concourse variables often lose the final newline, and Windows-edited keys carry
    /// carriage returns; OpenSSH rejects both.
    private func normalizedKey(_ key: String) -> String {
        var text = key.replacingOccurrences(of: "\r\n", with: "\n")
        if !text.hasSuffix("\n") { text += "\n" }
        return text
    }
}

private func shellQuote(_ value: String) -> String {
    "'" + value.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// Creates `file` with mode 0600 (never a moment with wider permissions) and writes it.
private func writePrivateFile(_ file: URL, contents: String) throws {
    let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        throw GitSourceError(
            .unusableCache,
            "cannot create the key file in \(file.deletingLastPathComponent().path): \(String(cString: strerror(errno)))"
        )
    }
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    var offset = 0
    while offset < bytes.count {
        let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if count < 0 {
            if errno == EINTR { continue }
            throw GitSourceError(
                .unusableCache,
                "cannot write the key file in \(file.deletingLastPathComponent().path): \(String(cString: strerror(errno)))"
            )
        }
        offset += count
    }
}
