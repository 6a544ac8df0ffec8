import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Work to do before the process dies of SIGINT or SIGTERM: releasing build locks, so a
/// build task that Concourse aborts does not leave its lock behind.
///
/// The handlers, installed once with `sigaction`, only write the signal number to a pipe
/// (the one thing safe in a signal handler). A dedicated thread reads it, runs every
/// registered action (they may spawn git), then restores the default action and sends
/// the signal again, so the process ends as it would have without us.
public enum SignalCleanup {
    /// A registered action; ``cancel()`` it when its work is done.
    public struct Registration: Sendable {
        fileprivate let id: UInt64

        /// Removes the action; it will not run on a later signal.
        public func cancel() {
            registry.withLock { _ = $0.actions.removeValue(forKey: id) }
        }
    }

    /// Registers `action` to run on SIGINT or SIGTERM, installing the handlers on first use.
    public static func register(_ action: @escaping @Sendable () -> Void) -> Registration {
        _ = installation
        return registry.withLock { state in
            state.next += 1
            state.actions[state.next] = action
            return Registration(id: state.next)
        }
    }

    /// Runs and removes every registered action, oldest first, as a signal would.
    static func runActions() {
        let actions = registry.withLock { state in
            defer { state.actions.removeAll() }
            return state.actions.sorted { $0.key < $1.key }.map(\.value)
        }
        for action in actions { action() }
    }

    /// How many actions are registered (for tests).
    static var registeredCount: Int { registry.withLock { $0.actions.count } }
}

private struct Registry {
    var next: UInt64 = 0
    var actions: [UInt64: @Sendable () -> Void] = [:]
}

private let registry = Mutex(Registry())

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
        SignalCleanup.runActions()
        let signalNumber = Int32(byte)
        _ = signal(signalNumber, SIG_DFL)
        kill(getpid(), signalNumber)
    }
    watcher.name = "slipway-signal-cleanup"
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
