import Foundation
import GitSource

/// The name two builds must share to be serialised (`LOCK=<key>`).
///
/// The caller computes the default (repository plus inputs digest). A key is any
/// non-empty text without control characters; ``fileName`` and ``refComponent`` turn it
/// into a safe file name and git ref component, with a hash of the whole key appended so
/// two keys that sanitise alike never share a lock.
public struct LockKey: Sendable, Hashable, CustomStringConvertible {
    /// The key as given.
    public let rawValue: String

    /// Validates `rawValue`.
    /// - Throws: ``LockError`` (kind `.configuration`) when it is empty or holds a control character.
    public init(_ rawValue: String) throws {
        guard !rawValue.isEmpty, rawValue.count <= 1024 else {
            throw LockError(
                .invalidSetting,
                "the lock key must be 1 to 1024 characters, got \(rawValue.count); set LOCK to a short name such as the image repository"
            )
        }
        guard !rawValue.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw LockError(
                .invalidSetting,
                "the lock key \(rawValue.debugDescription) holds a control character; remove it from LOCK")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// A name safe as a file name and a git ref component: letters, digits, `-` and `_`
    /// (everything else becomes `_`), at most 80 of them, then `-` and 16 hex digits of
    /// the key's FNV-1a hash.
    public var safeName: String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        let readable = String(rawValue.map { allowed.contains($0) ? $0 : "_" }.prefix(80))
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in rawValue.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return readable + "-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Where a lock lives and how long to wait for it: `LOCK`, `LOCK_TIMEOUT`, `LOCK_TTL`
/// and the backend text (`file:<dir>` or `git:<uri>`).
public struct LockSpec: Sendable {
    /// Where the lock is kept.
    public enum Backend: Sendable, Equatable {
        /// A `flock`ed file in this directory: serialises builds on one host.
        case file(URL)
        /// A ref under `refs/slipway-locks/` in the git repository at this URI, created
        /// atomically by a push: serialises builds across Concourse workers.
        case git(String)
    }

    /// Where the lock is kept.
    public var backend: Backend
    /// What is locked.
    public var key: LockKey
    /// How long to wait for a held lock before failing (`LOCK_TIMEOUT`).
    public var timeout: Duration
    /// How old a holder's sign of life may get before its lock is taken over (`LOCK_TTL`).
    /// File backend: the heartbeat (the lock file's modification time, refreshed by the
    /// holder); a holder on this host whose process is gone is taken over at once.
    /// Git backend: the lock commit's time, so it must exceed the longest build.
    public var ttl: Duration
    /// How often a held lock is tried again: 0.1 s for files, 1 s for git by default.
    public var pollInterval: Duration
    /// How often a "still waiting" line is logged.
    public var reportInterval: Duration
    /// The lock repository's credentials (git backend only): `LOCK_PRIVATE_KEY`,
    /// `LOCK_USERNAME`, `LOCK_PASSWORD`.
    public var credentials: GitCredentials

    /// Creates a spec from its parts.
    public init(
        backend: Backend, key: LockKey, timeout: Duration, ttl: Duration, pollInterval: Duration? = nil,
        reportInterval: Duration = .seconds(10),
        credentials: GitCredentials = GitCredentials()
    ) {
        self.backend = backend
        self.credentials = credentials
        self.key = key
        self.timeout = timeout
        self.ttl = ttl
        switch backend {
        case .file: self.pollInterval = pollInterval ?? .milliseconds(100)
        case .git: self.pollInterval = pollInterval ?? .seconds(1)
        }
        self.reportInterval = reportInterval
    }

    /// Parses the backend text, `file:<absolute dir>` or `git:<uri>`.
    /// - Parameter credentials: for the git backend's lock repository; refused with a file backend.
    /// - Throws: ``LockError`` (kind `.configuration`) naming the text and the forms accepted.
    public init(
        parsing text: String, key: String, timeout: Duration, ttl: Duration,
        credentials: GitCredentials = GitCredentials()
    ) throws {
        let lockKey = try LockKey(key)
        if text.hasPrefix("file:") {
            let path = String(text.dropFirst("file:".count))
            guard path.hasPrefix("/") else {
                throw LockError(
                    .invalidSetting,
                    "lock backend \(text.debugDescription): the directory must be an absolute path, as in file:/var/lock/slipway"
                )
            }
            guard credentials.isEmpty else {
                throw LockError(
                    .invalidSetting,
                    "lock backend \(text.debugDescription) takes no credentials; LOCK_PRIVATE_KEY, LOCK_USERNAME and LOCK_PASSWORD are for a git:<uri> lock repository"
                )
            }
            self.init(
                backend: .file(URL(fileURLWithPath: path, isDirectory: true)), key: lockKey, timeout: timeout, ttl: ttl)
        } else if text.hasPrefix("git:") {
            let uri = String(text.dropFirst("git:".count))
            guard !uri.isEmpty, !uri.hasPrefix("-") else {
                throw LockError(
                    .invalidSetting,
                    "lock backend \(text.debugDescription): give the lock repository after git:, as in git:https://git.example.com/locks.git"
                )
            }
            self.init(backend: .git(uri), key: lockKey, timeout: timeout, ttl: ttl, credentials: credentials)
        } else {
            throw LockError(
                .invalidSetting,
                "lock backend \(text.debugDescription) is not file:<dir> (one host) or git:<uri> (across workers)")
        }
    }

    /// Parses a duration as `LOCK_TIMEOUT` / `LOCK_TTL` give it: a number of seconds, or a
    /// number followed by `s`, `m` or `h` (`90`, `90s`, `15m`, `2h`).
    /// - Throws: ``LockError`` (kind `.configuration`) naming `name` and the text.
    public static func parseDuration(_ text: String, name: String) throws -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(trimmed)
        var scale = 1.0
        if let last = trimmed.last, let unit = units[last] {
            number = trimmed.dropLast()
            scale = unit
        }
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw LockError(
                .invalidSetting,
                "\(name)=\(text.debugDescription) is not a duration; write seconds or a number with s, m or h, as in 15m"
            )
        }
        return .milliseconds(Int64(value * scale * 1000))
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
