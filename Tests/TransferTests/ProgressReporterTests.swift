import Console
import Foundation
import OCI
import Synchronization
import Testing
import Transfer

/// A clock the test moves by hand, so rate limiting is tested without sleeping.
private final class ManualClock: Sendable {
    private let time = Mutex<Duration>(.zero)
    func advance(to seconds: Double) { time.withLock { $0 = .milliseconds(Int(seconds * 1000)) } }
    var now: @Sendable () -> Duration { { [self] in self.time.withLock { $0 } } }
}

/// What reached the log, and what a terminal would have been sent.
private final class Captured: Sendable {
    private let storage = Mutex<[String]>([])
    private let terminal = Mutex<[String]>([])
    var lines: [String] { storage.withLock { $0 } }
    var writes: [String] { terminal.withLock { $0 } }
    func log(verbose: Bool = false) -> Log {
        Log(verbose: verbose) { [self] line in self.storage.withLock { $0.append(line) } }
    }
    func statusLine(enabled: Bool = true) -> StatusLine {
        StatusLine(enabled: enabled, width: 200) { [self] text in self.terminal.withLock { $0.append(text) } }
    }
}

private let mebibyte: Int64 = 1 << 20

private func blob(_ seed: String, size: Int64, mediaType: MediaType = .ociLayerGzip) -> Descriptor {
    Descriptor(mediaType: mediaType, digest: Digest.sha256(Data(seed.utf8)), size: size)
}

private func short(_ descriptor: Descriptor) -> String { "sha256:" + descriptor.digest.encoded.prefix(12) }

@Suite("Progress of blob transfers, as logged and as drawn in a terminal")
struct ProgressReporterTests {
    @Test func aLargeBlobGetsOneLineWhenItStartsAndOneWhenItEnds() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let layer = blob("layer", size: 6 * mebibyte)
        reporter.moved(layer, .push, bytes: 0)
        for second in 1...3 {
            clock.advance(to: Double(second))
            reporter.moved(layer, .push, bytes: Int64(second) * 2 * mebibyte)
        }
        reporter.finished(layer, .push)
        reporter.ended(succeeded: true)
        #expect(
            captured.lines == [
                "pushing layer \(short(layer)) (6.0 MiB)",
                "pushed layer \(short(layer)) (6.0 MiB) in 3.0 s, 2.0 MiB/s",
            ])
        #expect(captured.writes.isEmpty)
    }

    @Test func aSlowBlobGetsAProgressLineAtMostEveryInterval() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let layer = blob("slow", size: 20 * mebibyte)
        reporter.moved(layer, .pull, bytes: 0)
        // A chunk every half second at 1 MiB/s: ten callbacks per 5 s interval.
        for step in 1...39 {
            clock.advance(to: Double(step) / 2)
            reporter.moved(layer, .pull, bytes: Int64(step) * mebibyte / 2)
        }
        clock.advance(to: 20)
        reporter.moved(layer, .pull, bytes: 20 * mebibyte)
        reporter.finished(layer, .pull)
        #expect(
            captured.lines == [
                "pulling layer \(short(layer)) (20.0 MiB)",
                "pulling layer \(short(layer)): 5.0 MiB of 20.0 MiB (25%), 1.0 MiB/s",
                "pulling layer \(short(layer)): 10.0 MiB of 20.0 MiB (50%), 1.0 MiB/s",
                "pulling layer \(short(layer)): 15.0 MiB of 20.0 MiB (75%), 1.0 MiB/s",
                "pulled layer \(short(layer)) (20.0 MiB) in 20.0 s, 1.0 MiB/s",
            ])
    }

    @Test func aTransferFasterThanTheIntervalHasNoProgressLine() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let layer = blob("fast", size: 4 * mebibyte)
        reporter.moved(layer, .push, bytes: 0)
        for step in 1...49 {
            clock.advance(to: Double(step) / 10)
            reporter.moved(layer, .push, bytes: min(4 * mebibyte, Int64(step) * mebibyte / 10))
        }
        reporter.finished(layer, .push)
        #expect(captured.lines.count == 2)
        #expect(captured.lines.allSatisfy { !$0.contains("%") })
    }

    @Test func eachParallelBlobIsRateLimitedOnItsOwn() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let first = blob("first", size: 10 * mebibyte)
        let second = blob("second", size: 10 * mebibyte)
        reporter.moved(first, .push, bytes: 0)
        clock.advance(to: 2)
        reporter.moved(second, .push, bytes: 0)
        clock.advance(to: 5)
        reporter.moved(first, .push, bytes: 5 * mebibyte)
        reporter.moved(second, .push, bytes: 3 * mebibyte)
        clock.advance(to: 7)
        reporter.moved(second, .push, bytes: 5 * mebibyte)
        #expect(
            captured.lines == [
                "pushing layer \(short(first)) (10.0 MiB)",
                "pushing layer \(short(second)) (10.0 MiB)",
                "pushing layer \(short(first)): 5.0 MiB of 10.0 MiB (50%), 1.0 MiB/s",
                "pushing layer \(short(second)): 5.0 MiB of 10.0 MiB (50%), 1.0 MiB/s",
            ])
    }

    @Test func skippedBlobsSayWhyAndSmallBlobsAreSummarised() throws {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let present = blob("present", size: 2 * mebibyte)
        let mounted = blob("mounted", size: 3 * mebibyte)
        let config = blob("config", size: 1024, mediaType: .ociConfig)
        let tiny = blob("tiny", size: 2048)
        let tinyPresent = blob("tiny-present", size: 100)
        reporter.skipped(present, .present)
        reporter.skipped(mounted, .mounted(from: try Repository("library/base")))
        for small in [config, tiny] {
            reporter.moved(small, .push, bytes: 0)
            reporter.moved(small, .push, bytes: small.size)
            reporter.finished(small, .push)
        }
        reporter.skipped(tinyPresent, .present)
        reporter.ended(succeeded: true)
        #expect(
            captured.lines == [
                "layer \(short(present)) (2.0 MiB) already in the repository, not sent",
                "layer \(short(mounted)) (3.0 MiB) mounted from library/base, not sent",
                "blobs under 1.0 MiB: 2 pushed (3.0 KiB), 1 already in the repository",
            ])
        // The summary is per transfer: a second one starts from nothing.
        reporter.ended(succeeded: true)
        #expect(captured.lines.count == 3)
    }

    @Test func aFailedTransferClearsTheStatusLineAndWritesNoSummary() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(log: captured.log(), terminal: captured.statusLine(), now: clock.now)
        let config = blob("config", size: 500, mediaType: .ociConfig)
        let layer = blob("failing", size: 100)
        reporter.moved(config, .pull, bytes: 0)
        reporter.moved(config, .pull, bytes: 500)
        reporter.finished(config, .pull)
        reporter.moved(layer, .pull, bytes: 0)
        reporter.ended(succeeded: false)
        // The error the command prints next is the log's last line.
        #expect(captured.lines.isEmpty)
        #expect(captured.writes.last == "\r\u{1B}[K")
    }

    @Test func aTerminalGetsALiveStatusLineAndOnlyTheLinesThatStay() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(log: captured.log(), terminal: captured.statusLine(), now: clock.now)
        let layer = blob("terminal", size: 8 * mebibyte)
        let hex = String(layer.digest.encoded.prefix(12))
        reporter.moved(layer, .push, bytes: 0)
        clock.advance(to: 0.1)
        reporter.moved(layer, .push, bytes: mebibyte / 2)  // within the redraw interval: not drawn
        clock.advance(to: 2)
        reporter.moved(layer, .push, bytes: 4 * mebibyte)
        clock.advance(to: 12)
        reporter.moved(layer, .push, bytes: 7 * mebibyte)  // no periodic log line in a terminal
        reporter.finished(layer, .push)
        reporter.ended(succeeded: true)
        #expect(
            captured.writes == [
                "\r\u{1B}[K↑ \(hex) 0.0/8.0 MiB — /s",
                "\r\u{1B}[K↑ \(hex) 4.0/8.0 MiB 2.0 MiB/s",
                "\r\u{1B}[K↑ \(hex) 7.0/8.0 MiB 597.3 KiB/s",
                "\r\u{1B}[K",
            ])
        #expect(captured.lines == ["pushed layer \(short(layer)) (8.0 MiB) in 12.0 s, 682.7 KiB/s"])
    }

    @Test func aTerminalWithDebugOnGetsThePlainLines() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(verbose: true), terminal: captured.statusLine(), now: clock.now)
        let layer = blob("debug", size: 2 * mebibyte)
        reporter.moved(layer, .pull, bytes: 0)
        clock.advance(to: 1)
        reporter.finished(layer, .pull)
        #expect(captured.writes.isEmpty)
        #expect(
            captured.lines == [
                "pulling layer \(short(layer)) (2.0 MiB)",
                "pulled layer \(short(layer)) (2.0 MiB) in 1.0 s, 2.0 MiB/s",
            ])
    }

    @Test func aRestartedTransferCountsFromZeroAgain() {
        let clock = ManualClock()
        let captured = Captured()
        let reporter = ProgressReporter(
            log: captured.log(), terminal: captured.statusLine(enabled: false), now: clock.now)
        let layer = blob("retried", size: 10 * mebibyte)
        reporter.moved(layer, .push, bytes: 0)
        clock.advance(to: 1)
        reporter.moved(layer, .push, bytes: 6 * mebibyte)
        reporter.moved(layer, .push, bytes: 0)  // the upload started over
        clock.advance(to: 5)
        reporter.moved(layer, .push, bytes: 2 * mebibyte)
        #expect(captured.lines.last == "pushing layer \(short(layer)): 2.0 MiB of 10.0 MiB (20%), 409.6 KiB/s")
    }

    static let byteCounts: [(Int64, String)] = [
        (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (6 << 20, "6.0 MiB"), ((3 << 30) + (1 << 29), "3.5 GiB"),
    ]

    @Test(arguments: byteCounts)
    func byteCountsReadAsPeopleExpect(bytes: Int64, text: String) {
        #expect(ByteCount(bytes).description == text)
    }
}
