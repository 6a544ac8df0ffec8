import Console
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `file:<dir>`: an exclusive `flock` on `<dir>/<key>.lock`, which also holds the
/// holder's record (JSON); its modification time is the holder's heartbeat.
///
/// Why `flock`: the kernel drops it when the holder dies, so the usual stale lock (a killed
/// build) needs no recovery at all. Recovery is for the rest: the descriptor leaked into a
/// process that outlived the holder (the recorded pid is gone on this host), or a holder
/// that stopped beating for longer than the TTL. Taking over means unlinking the lock file,
/// so newcomers lock a fresh one.
///
/// Why a second file, `<key>.guard`: a holder counts as holding only once it has checked,
/// under the guard's `flock`, that its descriptor is still the file at the path and has
/// written its record there; a taker-over re-checks staleness and unlinks under the same
/// guard. So a holder that got the `flock` of a file being unlinked notices and tries again,
/// and two takers-over cannot both unlink (the second sees a different file).
struct FileLockBackend: LockBackend {
    let directory: URL
    let key: LockKey
    let ttl: Duration
    let log: Log

    var location: String { "file:\(directory.path)" }
    private var lockPath: String { directory.appendingPathComponent(key.safeName + ".lock").path }
    private var guardPath: String { directory.appendingPathComponent(key.safeName + ".guard").path }

    func attempt() throws -> LockAttempt {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw LockError(
                .unusableBackend,
                "cannot create the lock directory \(directory.path): \(error.localizedDescription); point LOCK's file: backend at a writable directory"
            )
        }
        let fd = try Self.openPlainFile(lockPath, what: "lock file")
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            let holder = LockHolder.current(key: key, ttl: ttl)
            let committed = try underGuard { () -> Bool in
                guard isStillAtPath(fd) else { return false }
                let record = holder.encoded() + Data("\n".utf8)
                _ = ftruncate(fd, 0)
                _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                return true
            }
            guard committed else {
                close(fd)
                return .retry
            }
            let heartbeat = Heartbeat(fd: fd, interval: heartbeatInterval)
            return .acquired(release: {
                heartbeat.stop()
                _ = ftruncate(fd, 0)
                _ = flock(fd, LOCK_UN)
                close(fd)
            })
        }
        let busyError = errno
        defer { close(fd) }
        guard busyError == EWOULDBLOCK || busyError == EINTR else {
            throw LockError(
                .unusableBackend,
                "cannot lock \(lockPath): \(String(cString: strerror(busyError))); is the directory on a file system that supports flock?"
            )
        }
        let observed = readRecord(fd)
        guard staleness(observed) != nil else { return .held(observed.holder) }
        let tookOver = try underGuard { () -> Bool in
            // Another taker-over may have been first: only the file we judged is removed.
            guard isStillAtPath(fd), let reason = staleness(readRecord(fd)) else { return false }
            guard unlink(lockPath) == 0 else { return false }
            log.info("took over lock \(key) from \(describe(observed.holder)): \(reason)")
            return true
        }
        return tookOver ? .retry : .held(observed.holder)
    }

    /// Why the holder counts as gone, or nil while it may be alive. A file without a
    /// record (another program's flock, or a holder between lock and record) never is.
    private func staleness(_ record: (holder: LockHolder?, heartbeat: Date)) -> String? {
        guard let holder = record.holder else { return nil }
        if holder.isDeadOnThisHost {
            return "its process \(holder.pid) no longer exists on this host"
        }
        let age = Date().timeIntervalSince(record.heartbeat)
        if age > ttl.seconds {
            return "its heartbeat is \(Int(age)) s old, more than LOCK_TTL (\(Int(ttl.seconds)) s)"
        }
        return nil
    }

    private var heartbeatInterval: Duration {
        min(max(ttl / 4, .milliseconds(200)), .seconds(30))
    }

    private func readRecord(_ fd: Int32) -> (holder: LockHolder?, heartbeat: Date) {
        var info = stat()
        let heartbeat: Date
        if fstat(fd, &info) == 0 {
            heartbeat = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        } else {
            heartbeat = Date()
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return (nil, heartbeat) }
        return (LockHolder.decode(Data(buffer[0..<count])), heartbeat)
    }

    private func isStillAtPath(_ fd: Int32) -> Bool {
        var opened = stat()
        var named = stat()
        guard fstat(fd, &opened) == 0, lstat(lockPath, &named) == 0 else { return false }
        return opened.st_dev == named.st_dev && opened.st_ino == named.st_ino
    }

    /// Opens (creating) a file of the lock directory for writing, never through a link: a
    /// link planted at the lock file would have its target truncated and overwritten with the
    /// holder's record. A second name for another file (a hard link) is refused for the same reason.
    static func openPlainFile(_ path: String, what: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == ELOOP {
                throw LockError(
                    .unusableBackend,
                    "the \(what) \(path) is a symbolic link; Slipway never writes through one: remove it (and check who can write to the lock directory)"
                )
            }
            throw LockError(
                .unusableBackend,
                "cannot open the \(what) \(path): \(errnoText()); check that the directory is writable")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1 else {
            close(fd)
            throw LockError(
                .unusableBackend,
                "the \(what) \(path) is not a plain file of its own (a hard link, a device or a FIFO); Slipway never writes to it: remove it (and check who can write to the lock directory)"
            )
        }
        return fd
    }

    private func underGuard<R>(_ body: () throws -> R) throws -> R {
        let fd = try Self.openPlainFile(guardPath, what: "lock guard")
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw LockError(.unusableBackend, "cannot lock the lock guard \(guardPath): \(errnoText())")
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// Touches the lock file every `interval` while the lock is held, so waiters can tell a
/// live holder from one that stopped.
final class Heartbeat: @unchecked Sendable {
    // @unchecked: the timer is only resumed here and cancelled in `stop`, which then drains
    // the serial queue, so the handler never touches a closed descriptor.
    private let queue = DispatchQueue(label: "slipway.lock-heartbeat")
    private let timer: DispatchSourceTimer

    init(fd: Int32, interval: Duration) {
        timer = DispatchSource.makeTimerSource(queue: queue)
        let nanoseconds = Int(interval.seconds * 1e9)
        timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds))
        timer.setEventHandler { _ = futimens(fd, nil) }
        timer.resume()
    }

    func stop() {
        timer.cancel()
        queue.sync {}
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
