import Console
import Foundation
import OCI
import Registry
import Synchronization

/// Which way a blob moves.
public enum TransferDirection: Sendable, Hashable {
    /// To a registry.
    case push
    /// From a registry.
    case pull
}

/// Why a blob did not move.
public enum SkippedBlob: Sendable, Hashable {
    /// The destination repository already has it.
    case present
    /// The registry linked it from this repository of its own.
    case mounted(from: Repository)
    /// A pull found it already in the layout.
    case inLayout
}

/// Observes the blobs of a push, pull or copy while they move: the seam that progress
/// reporting hangs on. Called from several threads at once (blobs move in parallel).
public protocol TransferObserver: Sendable {
    /// `bytes` of `blob` have moved so far: 0 when it starts, and 0 again when a transfer
    /// starts over (a retry).
    func moved(_ blob: Descriptor, _ direction: TransferDirection, bytes: Int64)
    /// `blob` moved whole and was verified.
    func finished(_ blob: Descriptor, _ direction: TransferDirection)
    /// `blob` did not need to move.
    func skipped(_ blob: Descriptor, _ reason: SkippedBlob)
    /// The push, pull or copy is over; `succeeded` is false when it is failing with an error.
    func ended(succeeded: Bool)
}

/// Renders a transfer's progress on the resource's log (stderr; stdout is the answer).
///
/// Not a terminal (a Concourse build log): a line when a blob starts (digest, size), a line
/// when it ends (size, time, rate), and meanwhile a line at most every `interval` (5 s) with
/// bytes done of total, percent and rate, so a stalled or slow push is visible without
/// flooding the log. Blobs under `smallBlob` (1 MiB: configs, tiny layers) get no lines of
/// their own; one summary line per successful transfer counts them. A blob that did not move (already
/// present, mounted, already in the layout) gets one line saying so.
///
/// A terminal (and `debug` off, whose HTTP lines would tear it): one status line redrawn in
/// place with each moving blob's short digest, bytes done of total and rate; the end and
/// skip lines stay, the start and periodic lines are left to the status line.
public final class ProgressReporter: TransferObserver {
    /// The least time between two periodic lines of one blob in a log.
    public static let interval: Duration = .seconds(5)
    /// Blobs smaller than this are summarised rather than logged one by one.
    public static let smallBlob: Int64 = 1 << 20

    private let log: Log
    private let status: StatusLine?
    private let now: @Sendable () -> Duration
    private let interval: Duration
    private let redrawInterval: Duration
    private let state = Mutex(State())

    private struct Key: Hashable {
        var digest: Digest
        var direction: TransferDirection
    }

    private struct Active {
        var blob: Descriptor
        var direction: TransferDirection
        var started: Duration
        var lastLine: Duration
        var done: Int64
    }

    private struct State {
        var active: [Key: Active] = [:]
        var order: [Key] = []
        var lastDraw: Duration?
        var smallMoved: [TransferDirection: (count: Int, bytes: Int64)] = [:]
        var smallSkipped: [String: Int] = [:]
    }

    /// - Parameters:
    ///   - log: where lines go (stderr in the commands).
    ///   - terminal: the status line; when enabled (stderr is a terminal) and `log` is not
    ///     verbose, progress is drawn there instead of logged periodically.
    ///   - now: a monotonic clock (tests inject one so they do not sleep).
    ///   - interval: the least time between two periodic lines of one blob.
    ///   - redrawInterval: the least time between two redraws of the status line.
    public init(
        log: Log,
        terminal: StatusLine = StatusLine(),
        now: (@Sendable () -> Duration)? = nil,
        interval: Duration = ProgressReporter.interval,
        redrawInterval: Duration = .milliseconds(200)
    ) {
        self.log = log
        self.status = terminal.enabled && !log.verbose ? terminal : nil
        if let now {
            self.now = now
        } else {
            let origin = ContinuousClock.now
            self.now = { ContinuousClock.now - origin }
        }
        self.interval = interval
        self.redrawInterval = redrawInterval
    }

    public func moved(_ blob: Descriptor, _ direction: TransferDirection, bytes: Int64) {
        let time = now()
        let key = Key(digest: blob.digest, direction: direction)
        state.withLock { state in
            guard var active = state.active[key] else {
                state.active[key] = Active(blob: blob, direction: direction, started: time, lastLine: time, done: bytes)
                state.order.append(key)
                if status == nil, !isSmall(blob) {
                    log.info("\(verb(direction, done: false)) \(name(blob)) (\(ByteCount(blob.size)))")
                }
                draw(&state, time: time, force: true)
                return
            }
            active.done = bytes
            if status == nil, !isSmall(blob), bytes < blob.size, time - active.lastLine >= interval {
                active.lastLine = time
                log.info(
                    "\(verb(direction, done: false)) \(name(blob)): \(ByteCount(bytes)) of \(ByteCount(blob.size))"
                        + " (\(percent(bytes, of: blob.size))%), \(rate(bytes, time - active.started))")
            }
            state.active[key] = active
            draw(&state, time: time, force: false)
        }
    }

    public func finished(_ blob: Descriptor, _ direction: TransferDirection) {
        let time = now()
        let key = Key(digest: blob.digest, direction: direction)
        state.withLock { state in
            let started = state.active.removeValue(forKey: key)?.started ?? time
            state.order.removeAll { $0 == key }
            if isSmall(blob) {
                var moved = state.smallMoved[direction] ?? (0, 0)
                moved.count += 1
                moved.bytes += blob.size
                state.smallMoved[direction] = moved
            } else {
                let elapsed = time - started
                permanent(
                    "\(verb(direction, done: true)) \(name(blob)) (\(ByteCount(blob.size)))"
                        + " in \(seconds(elapsed)), \(rate(blob.size, elapsed))", &state, time: time)
            }
            draw(&state, time: time, force: true)
        }
    }

    public func skipped(_ blob: Descriptor, _ reason: SkippedBlob) {
        let time = now()
        state.withLock { state in
            let why: String
            switch reason {
            case .present: why = "already in the repository, not sent"
            case .mounted(let repository): why = "mounted from \(repository), not sent"
            case .inLayout: why = "already in the layout, not fetched"
            }
            if isSmall(blob) {
                let summary: String
                switch reason {
                case .present: summary = "already in the repository"
                case .mounted: summary = "mounted"
                case .inLayout: summary = "already in the layout"
                }
                state.smallSkipped[summary, default: 0] += 1
            } else {
                permanent("\(name(blob)) (\(ByteCount(blob.size))) \(why)", &state, time: time)
            }
        }
    }

    /// Clears the status line; after a success, writes the summary of small blobs. A failed
    /// transfer gets no summary: its last line is its error.
    public func ended(succeeded: Bool) {
        state.withLock { state in
            status?.clear()
            var parts: [String] = []
            for direction in [TransferDirection.push, .pull] {
                if let moved = state.smallMoved[direction] {
                    parts.append("\(moved.count) \(verb(direction, done: true)) (\(ByteCount(moved.bytes)))")
                }
            }
            for (reason, count) in state.smallSkipped.sorted(by: { $0.key < $1.key }) {
                parts.append("\(count) \(reason)")
            }
            if succeeded, !parts.isEmpty {
                log.info("blobs under \(ByteCount(Self.smallBlob)): " + parts.joined(separator: ", "))
            }
            state = State()
        }
    }

    // MARK: rendering

    /// A line that stays: in a terminal, written under the status line, which is redrawn.
    private func permanent(_ line: String, _ state: inout State, time: Duration) {
        status?.clear()
        log.info(line)
        draw(&state, time: time, force: true)
    }

    private func draw(_ state: inout State, time: Duration, force: Bool) {
        guard let status else { return }
        if !force, let last = state.lastDraw, time - last < redrawInterval { return }
        state.lastDraw = time
        let parts = state.order.compactMap { state.active[$0] }.map { active in
            "\(arrow(active.direction)) \(active.blob.digest.encoded.prefix(12)) "
                + "\(ByteCount(active.done).value(in: ByteCount(active.blob.size).unit))/\(ByteCount(active.blob.size)) "
                + rate(active.done, time - active.started)
        }
        if parts.isEmpty { status.clear() } else { status.show(parts.joined(separator: "  ")) }
    }

    private func isSmall(_ blob: Descriptor) -> Bool { blob.size < Self.smallBlob }

    private func name(_ blob: Descriptor) -> String {
        let kind = blob.mediaType == .ociConfig || blob.mediaType == .dockerConfig ? "config" : "layer"
        return "\(kind) \(blob.digest.algorithm):\(blob.digest.encoded.prefix(12))"
    }

    private func verb(_ direction: TransferDirection, done: Bool) -> String {
        switch direction {
        case .push: done ? "pushed" : "pushing"
        case .pull: done ? "pulled" : "pulling"
        }
    }

    private func arrow(_ direction: TransferDirection) -> String { direction == .push ? "↑" : "↓" }

    private func percent(_ done: Int64, of total: Int64) -> Int {
        total > 0 ? Int(done * 100 / total) : 100
    }

    private func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    private func rate(_ bytes: Int64, _ elapsed: Duration) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard seconds > 0.000_001 else { return "— /s" }
        return "\(ByteCount(Int64(Double(bytes) / seconds)))/s"
    }
}

/// A byte count as people read it: binary units, one decimal (`512 B`, `1.5 KiB`, `6.0 MiB`).
public struct ByteCount: Sendable, Hashable, CustomStringConvertible {
    public let bytes: Int64
    public init(_ bytes: Int64) { self.bytes = bytes }

    private static let units = ["B", "KiB", "MiB", "GiB", "TiB"]

    /// The unit `description` uses: the largest under which the count is at least 1.
    public var unit: Int {
        var unit = 0
        var value = Double(bytes)
        while value >= 1024, unit < Self.units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit
    }

    /// The number alone in `unit` (an index into B, KiB, MiB…), for `done/total MiB`.
    public func value(in unit: Int) -> String {
        if unit == 0 { return "\(bytes)" }
        return String(format: "%.1f", Double(bytes) / pow(1024, Double(unit)))
    }

    public var description: String { "\(value(in: unit)) \(Self.units[unit])" }
}
