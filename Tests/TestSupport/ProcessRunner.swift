import Foundation
import Spawn
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The outcome of a finished child process, with everything it wrote.
public struct ProcessResult: Sendable {
    /// The command as it was run, for messages: executable path and arguments.
    public let command: [String]
    /// The exit status, or the signal number when ``terminatedBySignal`` is true.
    public let status: Int32
    /// True when the process was ended by an uncaught signal rather than `exit`.
    public let terminatedBySignal: Bool
    /// All bytes the process wrote to standard output.
    public let stdout: Data
    /// All bytes the process wrote to standard error.
    public let stderr: Data

    /// Standard output decoded as UTF-8 (invalid bytes replaced).
    public var stdoutString: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid bytes replaced).
    public var stderrString: String { String(decoding: stderr, as: UTF8.self) }
    /// True when the process exited normally with status 0.
    public var succeeded: Bool { status == 0 && !terminatedBySignal }

    /// Returns `self` when the process succeeded; otherwise throws a ``TestSupportError``
    /// that names the command, its status and the tail of its standard error.
    @discardableResult
    public func checked() throws -> ProcessResult {
        guard succeeded else {
            let how = terminatedBySignal ? "was killed by signal \(status)" : "exited with status \(status)"
            throw TestSupportError(
                "`\(command.joined(separator: " "))` \(how): \(stderrString.suffix(2000))"
            )
        }
        return self
    }
}

/// An error from the test harness itself (not from the code under test).
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    /// What failed, with the values involved.
    public let description: String

    /// Creates an error with the given message.
    public init(_ description: String) {
        self.description = description
    }
}

/// Runs a program to completion and returns its status and output, through the runner
/// production uses (``SpawnCommandRunner``: one `poll` loop feeds standard input and drains
/// both outputs, so a child that writes megabytes to both pipes, or reads its input only
/// after writing, cannot deadlock against us).
///
/// - Parameters:
///   - executable: An absolute or relative path (it contains a `/`), or a name looked up in
///     `PATH` (from `environment` when given, else from this process).
///   - arguments: The arguments, without the program name.
///   - stdin: Bytes for standard input; `nil` connects `/dev/null`.
///   - environment: The complete environment of the child; `nil` inherits ours.
///   - currentDirectory: The child's working directory; `nil` inherits ours.
/// - Returns: The result, whatever the exit status. Use ``ProcessResult/checked()`` to
///   require success.
/// - Throws: ``TestSupportError`` when the program cannot be found or started.
public func runProcess(
    _ executable: String,
    _ arguments: [String] = [],
    stdin: Data? = nil,
    environment: [String: String]? = nil,
    currentDirectory: URL? = nil
) throws -> ProcessResult {
    let executableURL = try resolveExecutable(executable, environment: environment)
    let runner = SpawnCommandRunner(baseEnvironment: environment ?? ProcessInfo.processInfo.environment)
    let result: CommandResult
    do {
        result = try runner.run(
            Command(executableURL.path, arguments, input: stdin, currentDirectory: currentDirectory?.path))
    } catch {
        throw TestSupportError("\(error)")
    }
    return ProcessResult(
        command: [executableURL.path] + arguments,
        status: result.status,
        terminatedBySignal: result.terminatedBySignal,
        stdout: result.standardOutput,
        stderr: result.standardError
    )
}

/// A ``runProcess`` started now on a thread of its own, for programs that must run at the
/// same time (two builds contending for a lock). Not a Swift concurrency task: the
/// cooperative pool has one thread per core, and other tests' blocking waits can hold such
/// a task back until the program it should overlap has ended.
public final class BackgroundProcess: Sendable {
    private let outcome = Mutex<Result<ProcessResult, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    public init(
        _ executable: String, _ arguments: [String] = [], stdin: Data? = nil, environment: [String: String]? = nil,
        currentDirectory: URL? = nil
    ) {
        Thread {
            let result = Result {
                try runProcess(
                    executable, arguments, stdin: stdin, environment: environment, currentDirectory: currentDirectory)
            }
            self.outcome.withLock { $0 = result }
            self.done.signal()
        }.start()
    }

    /// Waits for the program to end and returns what it did.
    public func result() throws -> ProcessResult {
        done.wait()
        done.signal()  // a second call returns at once
        return try outcome.withLock { $0! }.get()
    }
}

/// Finds `name` the way a shell would: a path when it contains `/`, else the first
/// executable file of that name in `PATH`.
func resolveExecutable(_ name: String, environment: [String: String]? = nil) throws -> URL {
    if name.contains("/") {
        return URL(fileURLWithPath: name)
    }
    let path = environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    throw TestSupportError("`\(name)` was not found in PATH (\(path)); install it or pass a full path")
}

/// Writing to a pipe whose reader has gone must fail with EPIPE, not kill the test process.
private let sigpipeIgnored: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

func ignoreSIGPIPE() {
    _ = sigpipeIgnored
}
