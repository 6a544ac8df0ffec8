import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What happens when the process gets SIGINT or SIGTERM (Concourse aborting a build, a
/// person pressing Ctrl-C): the programs it started end with it, and registered actions
/// (removing a key file, releasing a build lock) run before it dies.
///
/// The handlers, installed once with `sigaction` on first use, only write the signal number
/// to a pipe (the one thing safe in a signal handler). A dedicated thread reads it and:
/// 1. sends SIGTERM to every running child's process group (``SpawnCommandRunner`` starts
///    each child as the leader of a group of its own, so git's ssh, its credential helper
///    and buildah's helpers are in it);
/// 2. runs every registered action, oldest first (they may start programs themselves);
/// 3. lets no other thread start a program any more, waits up to ``gracePeriod`` for the
///    children to end, then sends SIGKILL to every group it signalled or that is still
///    running;
/// 4. restores the default action and sends the signal again, so the process ends as it
///    would have without us.
///
/// Why process groups and not `PR_SET_PDEATHSIG`: `posix_spawn` cannot set it, and Linux
/// fires it when the spawning *thread* ends, which a Dispatch or concurrency thread does at
/// any time. A run killed with SIGKILL cannot clean up at all; its key directory is swept by
/// the next run (``GitCredentials/removeAbandonedKeyDirectories(under:)``) and its children
/// end with the container.
public enum TerminationCleanup {
    /// How long children get to end after SIGTERM before they get SIGKILL.
    public static let gracePeriod: Duration = .seconds(2)

    /// Runs `body` with `action` registered to run on SIGINT or SIGTERM, installing the
    /// handlers on first use. When `body` returns or throws the action is removed without
    /// running: whoever registered it does its work on that path (releasing the lock,
    /// removing the directory) itself. Scoped, so no action outlives its work.
    public static func onSignal<R>(_ action: @escaping @Sendable () -> Void, during body: () throws -> R) rethrows -> R
    {
        _ = installation
        let id = state.withLock { state in
            state.next += 1
            state.actions[state.next] = action
            return state.next
        }
        defer { state.withLock { _ = $0.actions.removeValue(forKey: id) } }
        return try body()
    }

    /// Runs and removes every registered action, oldest first.
    private static func runActions() {
        let actions = state.withLock { state in
            defer { state.actions.removeAll() }
            return state.actions.sorted { $0.key < $1.key }.map(\.value)
        }
        for action in actions { action() }
    }

    // MARK: Children

    /// Starts a child through `spawn` (which returns its process ID, also its process group
    /// ID) and records it, so a signal ends it. Once the process is ending, a thread other
    /// than the cleanup thread is not allowed to start anything: it waits for the end.
    static func startChild(_ spawn: () throws -> pid_t) throws -> pid_t {
        _ = installation
        let outcome: Result<pid_t, any Error>? = state.withLock { state in
            if state.terminating && !onCleanupThread { return nil }
            return Result { try spawn() }.map { pid in
                state.children.insert(pid)
                return pid
            }
        }
        guard let outcome else { waitForTheEnd() }
        return try outcome.get()
    }

    /// Forgets a child that has been reaped. Once the process is ending, the calling thread
    /// (unless it is the cleanup thread) waits here for the end rather than go on with the
    /// child's failure as if it were a real one.
    static func childEnded(_ pid: pid_t) {
        let terminating = state.withLock { state in
            state.children.remove(pid)
            return state.terminating
        }
        if terminating && !onCleanupThread { waitForTheEnd() }
    }

    private static var onCleanupThread: Bool {
        Thread.current.name == cleanupThreadName
    }

    private static func waitForTheEnd() -> Never {
        while true { sleep(3600) }
    }

    /// Steps 1 to 3 of the cleanup.
    fileprivate static func endEverything() {
        var signalled = state.withLock { $0.children }
        for pid in signalled { kill(-pid, SIGTERM) }
        runActions()
        let remaining = state.withLock { state in
            state.terminating = true
            return state.children
        }
        for pid in remaining.subtracting(signalled) { kill(-pid, SIGTERM) }
        signalled.formUnion(remaining)
        let clock = ContinuousClock()
        let deadline = clock.now + gracePeriod
        while clock.now < deadline && !(state.withLock { $0.children.isEmpty }) {
            usleep(20_000)
        }
        // Every group, ended or not: a child's own children (ssh under git) may outlive it.
        for pid in signalled.union(state.withLock { $0.children }) { kill(-pid, SIGKILL) }
    }
}

private struct CleanupState {
    var next: UInt64 = 0
    var actions: [UInt64: @Sendable () -> Void] = [:]
    var children: Set<pid_t> = []
    var terminating = false
}

private let state = Mutex(CleanupState())

private let cleanupThreadName = "slipway-signal-cleanup"

/// The write end of the signal pipe; set once before any handler is installed.
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

private let installation: Void = {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    signalPipeWrite = fds[1]
    let readEnd = fds[0]

    let watcher = Thread {
        // Threads started from Swift concurrency may block every signal; this one must be
        // able to receive the one it sends again.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        var byte: UInt8 = 0
        while true {
            let count = read(readEnd, &byte, 1)
            if count == 1 { break }
            if count < 0 && errno == EINTR { continue }
            return
        }
        TerminationCleanup.endEverything()
        let signalNumber = Int32(byte)
        _ = signal(signalNumber, SIG_DFL)
        kill(getpid(), signalNumber)
    }
    watcher.name = cleanupThreadName
    watcher.start()

    for signalNumber in [SIGINT, SIGTERM] {
        var action = sigaction()
        #if canImport(Darwin)
            action.__sigaction_u.__sa_handler = forwardSignal
        #else
            action.__sigaction_handler.sa_handler = forwardSignal
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(signalNumber, &action, nil)
    }
}()

private func forwardSignal(_ signalNumber: Int32) {
    var byte = UInt8(truncatingIfNeeded: signalNumber)
    _ = write(signalPipeWrite, &byte, 1)
}
