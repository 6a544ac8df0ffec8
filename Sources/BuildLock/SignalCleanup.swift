import Spawn

/// Work to do before the process dies of SIGINT or SIGTERM: releasing build locks, so a
/// build task that Concourse aborts does not leave its lock behind, and removing files
/// that hold secrets.
///
/// The mechanism lives beside the process runner in ``GitSource/TerminationCleanup``,
/// which also ends every program the process started; this is its name for build locks
/// and build-task.
public enum SignalCleanup {
    /// A registered action; cancel it when its work is done.
    public typealias Registration = TerminationCleanup.Registration

    /// Registers `action` to run on SIGINT or SIGTERM, installing the handlers on first use.
    public static func register(_ action: @escaping @Sendable () -> Void) -> Registration {
        TerminationCleanup.register(action)
    }

    /// Runs and removes every registered action, oldest first, as a signal would.
    static func runActions() {
        TerminationCleanup.runActions()
    }
}
