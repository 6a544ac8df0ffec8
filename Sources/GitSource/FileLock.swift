import Console
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An exclusive `flock` on a file, held for the duration of a closure.
///
/// Why `flock`: the kernel drops the lock when its holder dies (a killed check container
/// process), so no stale lock file ever needs cleaning up, and it serialises both
/// processes and threads (each call opens its own descriptor).
enum FileLock {
    /// Waits for the lock on `file` (created if missing), runs `body`, releases the lock.
    static func withExclusiveLock<R>(on file: URL, log: Log, _ body: () throws -> R) throws -> R {
        let fd = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw GitSourceError(
                .unusableCache,
                "cannot open the cache lock \(file.path): \(String(cString: strerror(errno))); is TMPDIR writable?")
        }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            log.info("waiting for another check of the same source to finish with the cache")
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    throw GitSourceError(
                        .unusableCache, "cannot lock the cache \(file.path): \(String(cString: strerror(errno)))")
                }
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
