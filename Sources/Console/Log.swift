import Foundation

/// Where diagnostic lines go. Concourse reads a resource's stdout as its answer, so every
/// log line goes to stderr; tests capture lines instead.
public struct Log: Sendable {
    private let sink: @Sendable (String) -> Void
    /// Whether `debug` lines are written (`source.debug: true`).
    public let verbose: Bool

    public init(verbose: Bool = false, sink: @escaping @Sendable (String) -> Void) {
        self.verbose = verbose
        self.sink = sink
    }

    /// Lines to standard error.
    public static func standardError(verbose: Bool = false) -> Log {
        Log(verbose: verbose) { line in
            // In a terminal, a status line may be drawn at the bottom: the line goes above it.
            StatusLine.aboveStatus { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
    }

    /// Nothing.
    public static let silent = Log { _ in }

    public func info(_ line: @autoclosure () -> String) { sink(line()) }
    public func debug(_ line: @autoclosure () -> String) { if verbose { sink(line()) } }
}
