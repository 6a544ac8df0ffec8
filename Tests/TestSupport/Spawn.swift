import Foundation
import Spawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// The tests' long-running servers start as Slipway's own children do, through `Spawn`'s
// `ChildProcess` (see there why not Foundation's `Process`), but in the test process's
// group: a server is stopped by its supervisor, and Ctrl-C on a test run reaches it.
// Programs run to completion go through `runProcess`, which is `SpawnCommandRunner`.

typealias ExitStatus = ChildProcess.ExitStatus

/// Starts `executable` with the given standard streams; nil `environment` inherits ours.
/// - Returns: The child's process id; the caller must reap it with ``waitForExit(_:)``.
func spawnChild(
    executable: URL, arguments: [String], environment: [String: String]?, currentDirectory: URL?,
    stdin: Int32, stdout: Int32, stderr: Int32
) throws -> pid_t {
    do {
        return try ChildProcess.start(
            executable: executable.path, arguments: arguments,
            environment: environment ?? ProcessInfo.processInfo.environment,
            currentDirectory: currentDirectory?.path, stdin: stdin, stdout: stdout, stderr: stderr,
            ownProcessGroup: false)
    } catch {
        throw TestSupportError("\(error)")
    }
}

/// Blocks until the child exits and reaps it.
func waitForExit(_ pid: pid_t) -> ExitStatus { ChildProcess.wait(for: pid) }

/// Reaps the child if it has exited; nil while it runs.
func pollExit(_ pid: pid_t) -> ExitStatus? { ChildProcess.poll(pid) }
