import Console
import Foundation
import Spawn
import Synchronization

/// What one try at a lock gave.
enum LockAttempt {
    /// Taken; call the closure once to release.
    case acquired(release: @Sendable () -> Void)
    /// Held by someone else (nil: no record of who).
    case held(LockHolder?)
    /// The state changed under us (a stale lock was taken over, a file replaced): try again now.
    case retry
}

/// A lock backend: one non-blocking try at a time; the waiting, logging and timeout are shared.
protocol LockBackend {
    /// What the log calls the lock's place (`file:/dir`, `git:uri`).
    var location: String { get }
    /// Tries once; takes over a lock whose holder is gone (logging it) and returns `.retry`.
    func attempt() throws -> LockAttempt
}

/// Runs `body` while holding the lock `spec` names, and releases the lock when `body`
/// returns or throws, or when the process gets SIGINT or SIGTERM (see ``TerminationCleanup``).
///
/// While the lock is held elsewhere it logs one line naming the holder, then one about
/// every ``LockSpec/reportInterval``, and fails after ``LockSpec/timeout``. A holder that
/// is gone is taken over as ``LockSpec/ttl`` describes.
///
/// - Parameters:
///   - runner: Runs git for the git backend.
/// - Throws: ``LockError`` when the lock cannot be taken in time or its backend cannot be
///   used; whatever `body` throws.
public func withBuildLock<R>(
    _ spec: LockSpec,
    log: Log,
    runner: any CommandRunner = SpawnCommandRunner(),
    _ body: () throws -> R
) throws -> R {
    let release: @Sendable () -> Void
    switch spec.backend {
    case .file(let directory):
        release = try acquire(
            FileLockBackend(directory: directory, key: spec.key, ttl: spec.ttl, log: log), spec: spec, log: log)
    case .git(let uri):
        let backend = try GitLockBackend(
            uri: uri, key: spec.key, ttl: spec.ttl, credentials: spec.credentials, runner: runner, log: log)
        do {
            release = try acquire(backend, spec: spec, log: log)
        } catch {
            backend.removeScratch()
            throw error
        }
    }
    let once = ReleaseOnce(release)
    defer {
        once.run()
        log.debug("released lock \(spec.key)")
    }
    return try TerminationCleanup.onSignal({ once.run() }, during: body)
}

/// Releases at most once, whichever comes first: the scope's end or a signal.
final class ReleaseOnce: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = Mutex(action)
    }

    func run() {
        let taken = action.withLock { action -> (@Sendable () -> Void)? in
            defer { action = nil }
            return action
        }
        taken?()
    }
}

private func acquire(_ backend: some LockBackend, spec: LockSpec, log: Log) throws -> @Sendable () -> Void {
    let clock = ContinuousClock()
    let start = clock.now
    var lastReport: ContinuousClock.Instant?
    var lastHolder: LockHolder?
    while true {
        switch try backend.attempt() {
        case .acquired(let release):
            if lastReport != nil {
                log.info("took lock \(spec.key) after \(Int((clock.now - start).seconds)) s")
            }
            return release
        case .retry:
            continue
        case .held(let holder):
            lastHolder = holder
            let waited = clock.now - start
            if lastReport == nil {
                log.info(
                    "waiting for lock \(spec.key) (\(backend.location)), held by \(describe(holder)); giving up after \(Int(spec.timeout.seconds)) s (LOCK_TIMEOUT)"
                )
                lastReport = clock.now
            } else if let last = lastReport, clock.now - last >= spec.reportInterval {
                log.info(
                    "still waiting for lock \(spec.key) after \(Int(waited.seconds)) s, held by \(describe(holder))")
                lastReport = clock.now
            }
            if waited >= spec.timeout {
                throw LockError(
                    .timedOut,
                    "lock \(spec.key) (\(backend.location)) is still held by \(describe(lastHolder)) after \(Int(waited.seconds)) s; raise LOCK_TIMEOUT, or if that holder is gone it is taken over once LOCK_TTL (\(Int(spec.ttl.seconds)) s) has passed"
                )
            }
            let remaining = spec.timeout - waited
            Thread.sleep(forTimeInterval: min(spec.pollInterval, remaining).seconds)
        }
    }
}
