import Errors
import Foundation

/// One program to run: what `check` asks the operating system to do, as a value.
///
/// Secrets never go in ``arguments``: they are visible to every user of the machine in
/// `/proc/<pid>/cmdline` and end up in error messages. Pass them in ``environment``
/// (readable only by the same user) and let the program read them from there.
public struct Command: Sendable, Equatable {
    /// A path (contains `/`) or a name looked up in the `PATH` of the child's environment.
    public var executable: String
    /// The arguments, without the program name.
    public var arguments: [String]
    /// Variables set in the child on top of the runner's base environment; a nil value
    /// removes the variable.
    public var environment: [String: String?]
    /// Bytes written to the child's standard input; nil connects `/dev/null`.
    public var input: Data?
    /// When set, the child and everything it started are killed once it has made no
    /// progress for this long: no output, and (on Linux) no bytes read or written by the
    /// child, which a git fetch does while the remote sends. Nil waits as long as it takes.
    public var idleTimeout: Duration?
    /// The child's working directory; nil keeps ours.
    public var currentDirectory: String?

    /// Creates a command.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String?] = [:], input: Data? = nil,
        idleTimeout: Duration? = nil, currentDirectory: String? = nil
    ) {
        self.currentDirectory = currentDirectory
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.input = input
        self.idleTimeout = idleTimeout
    }

    /// The command line for messages: the program and its arguments, each quoted when it
    /// contains anything a shell would split or interpret. Contains no secret because
    /// ``arguments`` never holds one.
    public var displayString: String {
        ([executable] + arguments).map(shellQuoted).joined(separator: " ")
    }
}

/// How a finished program ended and what it wrote.
public struct CommandResult: Sendable, Equatable {
    /// The exit status, or the signal number when ``terminatedBySignal`` is true.
    public var status: Int32
    /// True when an uncaught signal ended the program.
    public var terminatedBySignal: Bool
    /// Everything written to standard output.
    public var standardOutput: Data
    /// Everything written to standard error.
    public var standardError: Data
    /// True when the runner killed the program for making no progress within
    /// ``Command/idleTimeout``.
    public var timedOut: Bool

    /// Creates a result.
    public init(
        status: Int32, terminatedBySignal: Bool = false, standardOutput: Data = Data(), standardError: Data = Data(),
        timedOut: Bool = false
    ) {
        self.status = status
        self.terminatedBySignal = terminatedBySignal
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.timedOut = timedOut
    }

    /// True when the program exited with status 0.
    public var succeeded: Bool { status == 0 && !terminatedBySignal }
    /// Standard output as UTF-8 (invalid bytes replaced).
    public var outputText: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error as UTF-8 (invalid bytes replaced).
    public var errorText: String { String(decoding: standardError, as: UTF8.self) }
}

/// Runs programs to completion. The seam between the change detector and the operating
/// system: production code uses ``SpawnCommandRunner``; a test may wrap it to observe
/// what is run (arguments, environment, files that exist while it runs).
public protocol CommandRunner: Sendable {
    /// Runs `command` and returns its status and output, whatever the status.
    /// - Throws: ``GitSourceError`` (kind `.command`) only when the program cannot be
    ///   started at all.
    func run(_ command: Command) throws -> CommandResult

    /// Runs `command`, handing each output line to `onOutputLine` as it arrives when the
    /// runner can (``SpawnCommandRunner`` does), else once the program has ended.
    func run(_ command: Command, onOutputLine: ((String) -> Void)?) throws -> CommandResult
}

extension CommandRunner {
    public func run(_ command: Command, onOutputLine: ((String) -> Void)?) throws -> CommandResult {
        let result = try run(command)
        if let onOutputLine {
            for line in (result.outputText + result.errorText).split(separator: "\n") { onOutputLine(String(line)) }
        }
        return result
    }
}

private func shellQuoted(_ word: String) -> String {
    let plain = word.unicodeScalars.allSatisfy {
        CharacterSet.alphanumerics.contains($0) || "-_./:=@%+,^".unicodeScalars.contains($0)
    }
    if plain && !word.isEmpty { return word }
    return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// A program that could not be started (not found, not executable, out of descriptors), in
/// one line. A program that starts and fails is a ``CommandResult``, not an error.
public struct SpawnError: SlipwayError {
    /// What kind of failure this is (one kind: the message says the rest).
    public typealias Kind = ErrorKind<SpawnError>
    public var kind: Kind { .cannotRun }
    /// What failed, with which value, and what to do.
    public let message: String
    public init(_ message: String) { self.message = message }
}

extension ErrorKind where Owner == SpawnError {
    /// A program could not be found or started, or a pipe or private directory made.
    public static var cannotRun: Self { Self("cannot run") }
}
