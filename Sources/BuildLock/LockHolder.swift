import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Who holds a lock, as the holder wrote it down: shown while others wait, and used to
/// decide whether the holder is gone.
public struct LockHolder: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The holder's host name.
    public var host: String
    /// The holder's process id on ``host``.
    public var pid: Int32
    /// When the holder took the lock, in seconds since 1970.
    public var started: Double
    /// The holder's `LOCK_TTL` in seconds (informational: waiters apply their own).
    public var ttl: Double
    /// The lock key.
    public var key: String

    /// Creates a record.
    public init(host: String, pid: Int32, started: Double, ttl: Double, key: String) {
        self.host = host
        self.pid = pid
        self.started = started
        self.ttl = ttl
        self.key = key
    }

    /// This process, now.
    static func current(key: LockKey, ttl: Duration) -> LockHolder {
        LockHolder(
            host: hostName(), pid: getpid(), started: Date().timeIntervalSince1970, ttl: ttl.seconds, key: key.rawValue)
    }

    public var description: String {
        let since = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: started))
        return "pid \(pid) on \(host) since \(since)"
    }

    /// True when the holder ran on this host and its process no longer exists.
    var isDeadOnThisHost: Bool {
        guard host == hostName(), pid > 0 else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// One line of JSON, keys sorted.
    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    /// The record in `data`, or nil when it holds none (a lock taken by another program,
    /// or by a holder that has not written its record yet).
    static func decode(_ data: Data) -> LockHolder? {
        guard let start = data.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        let end = data.lastIndex(of: UInt8(ascii: "}")) ?? data.endIndex
        guard end > start else { return nil }
        return try? JSONDecoder().decode(LockHolder.self, from: data[start...end])
    }
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// How a waiter describes a holder that left no record.
func describe(_ holder: LockHolder?) -> String {
    holder.map(\.description) ?? "an unknown holder (no holder record)"
}
