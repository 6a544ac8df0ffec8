import Foundation

/// One transient line at the bottom of a terminal: a build's live progress. Lines logged
/// meanwhile stay; the status is redrawn under them. Disabled (every call a no-op) when
/// standard error is not a terminal, as in a Concourse task, whose log gets only the
/// concise lines.
public final class StatusLine: @unchecked Sendable {
    public let enabled: Bool
    private let lock = NSLock()
    private var shown = false
    private let width: Int
    private let output: @Sendable (String) -> Void

    /// Enabled when standard error is a terminal, unless `enabled` says otherwise.
    public init(enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
        var size = winsize()
        width = ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 10 ? Int(size.ws_col) : 100
        output = { text in FileHandle.standardError.write(Data(text.utf8)) }
    }

    /// A status line `width` columns wide whose control sequences and text go to `write`
    /// (tests record what a terminal would receive).
    public init(enabled: Bool, width: Int, write: @escaping @Sendable (String) -> Void) {
        self.enabled = enabled
        self.width = max(width, 11)
        output = write
    }

    /// Replaces the status with `text`, cut to the terminal's width.
    public func show(_ text: String) {
        guard enabled else { return }
        let printable = String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        let line = printable.count >= width ? String(printable.prefix(width - 2)) + "…" : printable
        write("\r\u{1B}[K" + line)
        lock.withLock { shown = true }
    }

    /// Removes the status (before a permanent line is written, and at the end).
    public func clear() {
        guard enabled, lock.withLock({ shown }) else { return }
        write("\r\u{1B}[K")
        lock.withLock { shown = false }
    }

    private func write(_ text: String) { output(text) }
}
