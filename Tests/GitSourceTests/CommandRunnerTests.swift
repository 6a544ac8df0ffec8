import Foundation
import GitSource
import Spawn
import Testing

/// The production process runner: streams, environment, and the signal state of children.
@Suite struct CommandRunnerTests {
    let runner = SpawnCommandRunner()

    @Test func standardInputIsDeliveredWhileBothOutputsAreDrained() throws {
        // 4 MiB in, echoed to standard output while 4 MiB more go to standard error: a
        // runner that reads one pipe at a time, or writes all input first, deadlocks here.
        let input = Data((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let result = try runner.run(
            Command("/bin/sh", ["-c", "head -c 4194304 /dev/zero >&2 & cat; wait"], input: input))
        #expect(result.succeeded)
        #expect(result.standardOutput == input)
        #expect(result.standardError.count == 4 << 20)
    }

    @Test func theEnvironmentIsSetAndUnsetPerCommand() throws {
        let base = SpawnCommandRunner(baseEnvironment: ["PATH": "/usr/bin:/bin", "KEEP": "kept", "DROP": "dropped"])
        let result = try base.run(
            Command(
                "sh", ["-c", #"printf '%s|%s|%s' "$KEEP" "${DROP-unset}" "$ADDED""#],
                environment: ["DROP": nil, "ADDED": "added"]))
        #expect(result.outputText == "kept|unset|added")
    }

    @Test func exitStatusAndSignalsAreReported() throws {
        let failed = try runner.run(Command("/bin/sh", ["-c", "echo oops >&2; exit 3"]))
        #expect(failed.status == 3)
        #expect(!failed.succeeded)
        #expect(failed.errorText == "oops\n")
        let killed = try runner.run(Command("/bin/sh", ["-c", "kill -TERM $$"]))
        #expect(killed.terminatedBySignal)
        #expect(killed.status == 15)
    }

    @Test func aChildStartedFromATaskHasNoBlockedOrIgnoredSignals() async throws {
        // Swift concurrency threads block signals; a child must not inherit that mask.
        let runner = self.runner
        let status = try await Task.detached {
            try runner.run(Command("/bin/sh", ["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status"]))
        }.value
        func mask(_ name: String) -> UInt64? {
            status.outputText.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
        }
        #expect(mask("SigBlk") == 0, "\(status.outputText)")
        // Signals 1–31 at their defaults (glibc reserves 32 and 33 for itself; no one can reset those).
        #expect(mask("SigIgn").map { $0 & 0x7fff_ffff } == 0, "\(status.outputText)")
    }

    @Test func aChildThatDoesNotReadItsInputDoesNotHangTheRunner() throws {
        let result = try runner.run(Command("/bin/sh", ["-c", "exit 0"], input: Data(count: 8 << 20)))
        #expect(result.succeeded)
    }

    @Test func aMissingProgramIsAClearError() throws {
        let error = try #require(throws: SpawnError.self) {
            try SpawnCommandRunner(baseEnvironment: ["PATH": "/nonexistent"]).run(Command("git", ["--version"]))
        }
        #expect(error.description.contains("`git` was not found in PATH (/nonexistent)"))
    }

    @Test func theDisplayStringQuotesWordsAShellWouldSplit() {
        #expect(
            Command("git", ["log", "--format=%H %s", "it's"]).displayString == #"git log '--format=%H %s' 'it'\''s'"#)
    }
}
