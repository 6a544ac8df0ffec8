import Foundation

/// One transient line at the bottom of a terminal: a build's live progress. Lines logged
/// meanwhile stay; the status is redrawn under them. Disabled (every call a no-op) when
/// standard error is not a terminal, as in a Concourse task, whose log gets only the
/// concise lines.
public final class StatusLine: @unchecked Sendable {
    public let enabled: Bool
    private let lock = NSLock()
    private var shown: String?
    private let width: Int
    private let output: @Sendable (String) -> Void
    /// Whether this line draws on the process's stderr, where `Log.standardError` writes.
    private let onStandardError: Bool

    /// The status line last drawn on stderr, so that a line logged meanwhile from anywhere
    /// (a retry, a warning) clears it first and is not overwritten by the next redraw.
    private static let onScreen = LockedReference()

    /// Enabled when standard error is a terminal, unless `enabled` says otherwise.
    public init(enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
        var size = winsize()
        width = ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 10 ? Int(size.ws_col) : 100
        output = { text in FileHandle.standardError.write(Data(text.utf8)) }
        onStandardError = true
    }

    /// A status line `width` columns wide whose control sequences and text go to `write`
    /// (tests record what a terminal would receive).
    public init(enabled: Bool, width: Int, write: @escaping @Sendable (String) -> Void) {
        self.enabled = enabled
        self.width = max(width, 11)
        output = write
        onStandardError = false
    }

    /// Replaces the status with `text`, cut to the terminal's width.
    public func show(_ text: String) {
        guard enabled else { return }
        let printable = String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        let line = printable.count >= width ? String(printable.prefix(width - 2)) + "…" : printable
        write("\r\u{1B}[K" + line)
        lock.withLock { shown = line }
        if onStandardError { Self.onScreen.set(self) }
    }

    /// Removes the status (before a permanent line is written, and at the end).
    public func clear() {
        guard enabled, lock.withLock({ shown != nil }) else { return }
        write("\r\u{1B}[K")
        lock.withLock { shown = nil }
    }

    /// Runs `writeLine` (which writes whole lines to stderr) with the status line on stderr,
    /// if one is shown, cleared before and drawn again after.
    static func aboveStatus(_ writeLine: () -> Void) {
        guard let status = onScreen.get(), let text = status.lock.withLock({ status.shown }) else {
            writeLine()
            return
        }
        status.clear()
        writeLine()
        status.show(text)
    }

    private func write(_ text: String) { output(text) }
}

/// A lock-protected optional reference to a status line.
private final class LockedReference: @unchecked Sendable {
    private let lock = NSLock()
    private var value: StatusLine?
    func set(_ line: StatusLine) { lock.withLock { value = line } }
    func get() -> StatusLine? { lock.withLock { value } }
}
