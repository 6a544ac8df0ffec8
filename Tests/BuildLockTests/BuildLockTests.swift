import Console
import Foundation
import Spawn
import Synchronization
import TestSupport
import Testing

@testable import BuildLock

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Lines a `Log` wrote, for assertions.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var log: Log { Log { line in self.lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }
}

/// When each holder held the lock, to prove no two overlapped.
final class Intervals: Sendable {
    private let list = Mutex<[(start: Double, end: Double)]>([])
    func record(holdFor seconds: Double) {
        let start = Date().timeIntervalSince1970
        Thread.sleep(forTimeInterval: seconds)
        let end = Date().timeIntervalSince1970
        list.withLock { $0.append((start, end)) }
    }
    var sorted: [(start: Double, end: Double)] { list.withLock { $0 }.sorted { $0.start < $1.start } }
    var overlap: Bool {
        let all = sorted
        return zip(all, all.dropFirst()).contains { $0.end > $1.start }
    }
}

/// A pid no process can have (above the kernel's largest pid_max).
let deadPID: Int32 = 99_999_999

func fileSpec(
    _ directory: URL, key: String = "registry.example.com/app@sha256:abc", timeout: Duration = .seconds(20),
    ttl: Duration = .seconds(60)
) throws -> LockSpec {
    try LockSpec(parsing: "file:\(directory.path)", key: key, timeout: timeout, ttl: ttl)
}

func lockFile(_ directory: URL, key: String = "registry.example.com/app@sha256:abc") throws -> URL {
    directory.appendingPathComponent(try LockKey(key).safeName + ".lock")
}

/// Runs `flock <file> sh -c <script>` in the background; returns once it holds the lock
/// and a wait function giving its output.
func holdWithFlockCLI(_ file: URL, marker: URL, seconds: Double) throws -> () -> String {
    let result = Mutex<String?>(nil)
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) {
        let output = try? runProcess(
            "flock", [file.path, "sh", "-c", "touch '\(marker.path)'; sleep \(seconds); date +%s.%N"]
        ).checked().stdoutString
        result.withLock { $0 = output ?? "" }
    }
    let deadline = Date().addingTimeInterval(10)
    while !FileManager.default.fileExists(atPath: marker.path) && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.02)
    }
    return {
        group.wait()
        return result.withLock { $0 ?? "" }
    }
}

/// True when `flock -n` (another process) can take the lock file right now.
func otherProcessCanLock(_ file: URL) throws -> Bool {
    try runProcess("flock", ["-n", file.path, "true"]).succeeded
}

@Suite("Build locks", .serialized)
struct BuildLockTests {
    // MARK: - Spec

    @Test func parsesBackends() throws {
        let file = try LockSpec(parsing: "file:/var/lock/slipway", key: "k", timeout: .seconds(1), ttl: .seconds(2))
        #expect(file.backend == .file(URL(fileURLWithPath: "/var/lock/slipway", isDirectory: true)))
        let git = try LockSpec(
            parsing: "git:https://git.example.com/locks.git", key: "k", timeout: .seconds(1), ttl: .seconds(2))
        #expect(git.backend == .git("https://git.example.com/locks.git"))
        #expect(throws: LockError.self) {
            try LockSpec(parsing: "redis:x", key: "k", timeout: .seconds(1), ttl: .seconds(1))
        }
        #expect(throws: LockError.self) {
            try LockSpec(parsing: "file:relative", key: "k", timeout: .seconds(1), ttl: .seconds(1))
        }
        #expect(throws: LockError.self) {
            try LockSpec(parsing: "file:/x", key: "", timeout: .seconds(1), ttl: .seconds(1))
        }
        #expect(try LockSpec.parseDuration("15m", name: "LOCK_TIMEOUT") == .seconds(900))
        #expect(try LockSpec.parseDuration("90", name: "LOCK_TTL") == .seconds(90))
        #expect(throws: LockError.self) { try LockSpec.parseDuration("soon", name: "LOCK_TTL") }
    }

    @Test func keysBecomeSafeDistinctNames() throws {
        let a = try LockKey("registry.example.com/app:sha256:abc").safeName
        let b = try LockKey("registry_example_com/app:sha256:abc").safeName
        #expect(a != b)
        #expect(a.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(try LockKey(String(repeating: "x", count: 500)).safeName.count == 97)
    }

    // MARK: - File backend

    @Test func fileContendersRunOneAfterTheOther() throws {
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url)
            let intervals = Intervals()
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 3) { _ in
                do {
                    try withBuildLock(spec, log: .silent) { intervals.record(holdFor: 0.3) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            #expect(intervals.sorted.count == 3)
            #expect(!intervals.overlap, "holders overlapped: \(intervals.sorted)")
        }
    }

    @Test func fileLockExcludesAnotherProcess() throws {
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url)
            let file = try lockFile(directory.url)
            let lines = LogLines()
            // Another process holds it first: we start only after it has finished.
            let finished = try holdWithFlockCLI(file, marker: directory.appending("held"), seconds: 1.5)
            let acquiredAt = try withBuildLock(spec, log: lines.log) { Date().timeIntervalSince1970 }
            let otherEnd = try #require(Double(finished().trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(
                acquiredAt >= otherEnd - 0.05,
                "took the lock at \(acquiredAt), the other process held it until \(otherEnd)")
            #expect(
                lines.all.first?.contains("waiting for lock registry.example.com/app@sha256:abc") == true,
                "\(lines.all)")
            // And the other way round: while we hold it, another process cannot take it.
            let heldOutside = try withBuildLock(spec, log: .silent) { try otherProcessCanLock(file) }
            #expect(!heldOutside)
            #expect(try otherProcessCanLock(file))
        }
    }

    @Test func fileTimeoutNamesKeyAndHolder() throws {
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url, timeout: .milliseconds(500))
            let lines = LogLines()
            let error = try withBuildLock(spec, log: .silent) { () throws -> LockError? in
                // The holder is this process: alive, on this host, beating.
                #expect(throws: LockError.self) { try withBuildLock(spec, log: lines.log) {} }
                do { try withBuildLock(spec, log: .silent) {} } catch let error as LockError { return error }
                return nil
            }
            let message = try #require(error).message
            #expect(error?.kind == .timedOut)
            #expect(message.contains("registry.example.com/app@sha256:abc"), "\(message)")
            #expect(message.contains("pid \(getpid()) on \(hostName())"), "\(message)")
            #expect(lines.all.contains { $0.contains("held by pid \(getpid())") }, "\(lines.all)")
        }
    }

    @Test func fileLockOfDeadHolderIsTakenOver() throws {
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url, timeout: .seconds(10), ttl: .seconds(600))
            let file = try lockFile(directory.url)
            // A process outlived its lock holder and still holds the flock (a leaked descriptor).
            let record = LockHolder(
                host: hostName(), pid: deadPID, started: Date().timeIntervalSince1970, ttl: 600, key: spec.key.rawValue)
            try record.encoded().write(to: file)
            let finished = try holdWithFlockCLI(file, marker: directory.appending("held"), seconds: 2.5)
            let lines = LogLines()
            let started = Date()
            try withBuildLock(spec, log: lines.log) {}
            #expect(Date().timeIntervalSince(started) < 2, "the dead holder's lock was not taken over at once")
            #expect(
                lines.all.contains {
                    $0.contains("took over lock") && $0.contains("pid \(deadPID)") && $0.contains("no longer exists")
                }, "\(lines.all)")
            _ = finished()
        }
    }

    @Test func fileLockWithOldHeartbeatIsTakenOverAfterTTL() throws {
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url, timeout: .seconds(10), ttl: .seconds(2))
            let file = try lockFile(directory.url)
            let record = LockHolder(
                host: "another-worker", pid: 1, started: Date().timeIntervalSince1970 - 3600, ttl: 2,
                key: spec.key.rawValue)
            try record.encoded().write(to: file)
            let old = Date().addingTimeInterval(-3600)
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: file.path)
            let finished = try holdWithFlockCLI(file, marker: directory.appending("held"), seconds: 2.5)
            let lines = LogLines()
            try withBuildLock(spec, log: lines.log) {}
            #expect(
                lines.all.contains {
                    $0.contains("took over lock") && $0.contains("another-worker") && $0.contains("heartbeat")
                }, "\(lines.all)")
            _ = finished()
        }
    }

    @Test func liveHolderKeepsItsLockPastTheTTLByBeating() throws {
        try withTemporaryDirectory { directory in
            // TTL 1 s, held 2.5 s: the heartbeat keeps the waiter out until release.
            let spec = try fileSpec(directory.url, timeout: .seconds(10), ttl: .seconds(1))
            let intervals = Intervals()
            let lines = LogLines()
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                if index == 1 { Thread.sleep(forTimeInterval: 0.2) }
                try? withBuildLock(spec, log: lines.log) { intervals.record(holdFor: index == 0 ? 2.5 : 0.1) }
            }
            #expect(intervals.sorted.count == 2)
            #expect(!intervals.overlap, "\(intervals.sorted)")
            #expect(!lines.all.contains { $0.contains("took over") }, "\(lines.all)")
        }
    }

    @Test func fileLockIsReleasedWhenTheBodyThrows() throws {
        struct BuildFailed: Error {}
        try withTemporaryDirectory { directory in
            let spec = try fileSpec(directory.url)
            #expect(throws: BuildFailed.self) { try withBuildLock(spec, log: .silent) { throw BuildFailed() } }
            #expect(try otherProcessCanLock(try lockFile(directory.url)))
            let lines = LogLines()
            try withBuildLock(spec, log: lines.log) {}
            #expect(lines.all.isEmpty, "\(lines.all)")
        }
    }

    @Test(arguments: [".lock", ".guard"])
    func fileLockRefusesASymlinkPlantedAtItsFiles(suffix: String) throws {
        try withTemporaryDirectory { directory in
            let locks = directory.appending("locks")
            try FileManager.default.createDirectory(at: locks, withIntermediateDirectories: true)
            let victim = directory.appending("victim")
            try Data("precious\n".utf8).write(to: victim)
            let planted = locks.appendingPathComponent(
                try LockKey("registry.example.com/app@sha256:abc").safeName + suffix)
            try FileManager.default.createSymbolicLink(atPath: planted.path, withDestinationPath: victim.path)
            var ran = false
            #expect {
                try withBuildLock(try fileSpec(locks, timeout: .seconds(2)), log: .silent) { ran = true }
            } throws: { error in
                let text = "\(error)"
                return text.contains("symbolic link") && text.contains(planted.path) && !text.contains("\n")
            }
            #expect(!ran, "the build did not run without its lock")
            #expect(try String(contentsOf: victim, encoding: .utf8) == "precious\n", "the link's target is untouched")
        }
    }

    // MARK: - Signals

    /// With `SLIPWAY_SIGNAL_HELPER=<directory>` set, this test is the helper process of
    /// `aSignalRunsTheActionsOfWorkUnderWayOnly`: it runs one action's scope to its end, then
    /// sends itself SIGTERM inside another's. Each action writes a file named after it.
    @Test func signalHelper() throws {
        guard let directory = ProcessInfo.processInfo.environment["SLIPWAY_SIGNAL_HELPER"] else { return }
        func mark(_ name: String) -> @Sendable () -> Void {
            { _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: Data()) }
        }
        TerminationCleanup.onSignal(mark("ended")) {}
        TerminationCleanup.onSignal(mark("under-way")) {
            kill(getpid(), SIGTERM)
            Thread.sleep(forTimeInterval: 30)
        }
    }

    @Test func aSignalRunsTheActionsOfWorkUnderWayOnly() throws {
        try withTemporaryDirectory { directory in
            var environment = ProcessInfo.processInfo.environment
            environment["SLIPWAY_SIGNAL_HELPER"] = directory.url.path
            // The test binary itself is the helper; the shell reports how it ended.
            let script = #""$0" --testing-library swift-testing --filter signalHelper >/dev/null 2>&1; echo $?"#
            let output = try runProcess("sh", ["-c", script, CommandLine.arguments[0]], environment: environment)
            // 128 + 15: it died of SIGTERM, as it would without our handler, after the actions.
            #expect(output.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines) == "143")
            let marks = try FileManager.default.contentsOfDirectory(atPath: directory.url.path)
            #expect(marks == ["under-way"], "the action of the work under way ran; the ended one did not: \(marks)")
        }
    }

    @Test func aLockIsReleasedOnce() {
        let released = Mutex(0)
        let once = ReleaseOnce { released.withLock { $0 += 1 } }
        once.run()
        once.run()
        #expect(released.withLock { $0 } == 1)
    }

    // MARK: - Git backend
    /// With `SLIPWAY_LOCK_HELPER=<lock repository>` set, this test is the helper process of
    /// `gitLockIsReleasedWhenTheProcessIsTerminated`: it takes the lock, says so by creating
    /// `<repository>.held`, and sleeps until it is killed. Otherwise it does nothing.
    @Test func lockHolderHelper() throws {
        guard let repository = ProcessInfo.processInfo.environment["SLIPWAY_LOCK_HELPER"] else { return }
        try withBuildLock(try gitSpec(URL(fileURLWithPath: repository)), log: .silent) {
            _ = FileManager.default.createFile(atPath: repository + ".held", contents: Data())
            Thread.sleep(forTimeInterval: 30)
        }
    }

    @Test func gitLockIsReleasedWhenTheProcessIsTerminated() throws {
        try withLockRepository { repository, work throws in
            let pidFile = repository.path + ".pid"
            var helperEnvironment = ProcessInfo.processInfo.environment
            helperEnvironment["SLIPWAY_LOCK_HELPER"] = repository.path
            let environment = helperEnvironment
            // The test binary itself is the helper; the shell reports how it ended.
            let script =
                #""$0" --testing-library swift-testing --filter lockHolderHelper >/dev/null 2>&1 & echo $! > "$1"; wait $!; echo $?"#
            let outcome = Mutex<String>("")
            let group = DispatchGroup()
            let testBinary = CommandLine.arguments[0]
            DispatchQueue.global().async(group: group) {
                let output =
                    (try? runProcess("sh", ["-c", script, testBinary, pidFile], environment: environment).stdoutString)
                    ?? ""
                outcome.withLock { $0 = output }
            }
            let deadline = Date().addingTimeInterval(20)
            while !FileManager.default.fileExists(atPath: repository.path + ".held") && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            }
            #expect(try work.git("ls-remote", "origin", try lockRef()) != "", "the helper did not take the lock")
            let pid = try #require(
                Int32(
                    try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                ))
            kill(pid, SIGTERM)
            group.wait()
            // 128 + 15: the helper died of SIGTERM, as it would without our handler.
            #expect(outcome.withLock { $0 }.trimmingCharacters(in: .whitespacesAndNewlines) == "143")
            #expect(try work.git("ls-remote", "origin", try lockRef()) == "", "the killed helper left its lock behind")
        }
    }

    /// A bare lock repository and a working clone that can plant lock refs.
    func withLockRepository(_ body: (URL, TestGitRepository) throws -> Void) throws {
        try withTemporaryDirectory { directory in
            let work = try TestGitRepository.create(at: directory.appending("work"))
            try work.commit("locks", files: ["README": "locks\n"])
            let bare = try work.bareClone(at: directory.appending("locks.git"))
            try body(bare.path, work)
        }
    }

    func gitSpec(
        _ repository: URL, key: String = "app:1234", timeout: Duration = .seconds(20), ttl: Duration = .seconds(600)
    ) throws -> LockSpec {
        LockSpec(
            backend: .git("file://" + repository.path), key: try LockKey(key), timeout: timeout, ttl: ttl,
            pollInterval: .milliseconds(100))
    }

    func lockRef(_ key: String = "app:1234") throws -> String {
        "refs/slipway-locks/" + (try LockKey(key).safeName)
    }

    @Test func gitContendersRunOneAfterTheOther() throws {
        try withLockRepository { repository, work throws in
            let spec = try gitSpec(repository)
            let intervals = Intervals()
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do {
                    try withBuildLock(spec, log: .silent) { intervals.record(holdFor: 0.5) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            #expect(intervals.sorted.count == 2)
            #expect(!intervals.overlap, "\(intervals.sorted)")
            // Released: the ref is gone.
            #expect(try work.git("ls-remote", "origin", try lockRef()) == "")
        }
    }

    @Test func gitTimeoutNamesKeyAndHolder() throws {
        try withLockRepository { repository, work throws in
            let spec = try gitSpec(repository, timeout: .milliseconds(600))
            let error = try withBuildLock(spec, log: .silent) { () -> LockError? in
                #expect(try work.git("ls-remote", "origin", try lockRef()) != "")
                do { try withBuildLock(spec, log: .silent) {} } catch let error as LockError { return error }
                return nil
            }
            let message = try #require(error).message
            #expect(message.contains("app:1234") && message.contains("pid \(getpid())"), "\(message)")
        }
    }

    @Test func gitLockWithOldCommitIsTakenOver() throws {
        try withLockRepository { repository, work throws in
            let stale = try work.commit("an old lock", date: Date().addingTimeInterval(-7200), allowEmpty: true)
            try work.git("push", "--quiet", "origin", "\(stale):\(try lockRef())")
            let lines = LogLines()
            try withBuildLock(try gitSpec(repository, timeout: .seconds(10), ttl: .seconds(3600)), log: lines.log) {
                () throws in
                #expect(try work.git("ls-remote", "origin", try lockRef()).hasPrefix(stale) == false)
            }
            #expect(lines.all.contains { $0.contains("took over lock app:1234") }, "\(lines.all)")
            #expect(try work.git("ls-remote", "origin", try lockRef()) == "")
        }
    }

    @Test func gitConcurrentTakeOverHasOneWinner() throws {
        try withLockRepository { repository, work throws in
            let stale = try work.commit("an old lock", date: Date().addingTimeInterval(-7200), allowEmpty: true)
            try work.git("push", "--quiet", "origin", "\(stale):\(try lockRef())")
            let spec = try gitSpec(repository, timeout: .seconds(20), ttl: .seconds(3600))
            let lines = LogLines()
            let intervals = Intervals()
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do {
                    try withBuildLock(spec, log: lines.log) { intervals.record(holdFor: 0.5) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            #expect(!intervals.overlap, "\(intervals.sorted)")
            #expect(lines.all.filter { $0.contains("took over") }.count == 1, "\(lines.all)")
        }
    }

    @Test func gitLockIsReleasedWhenTheBodyThrows() throws {
        struct BuildFailed: Error {}
        try withLockRepository { repository, work throws in
            #expect(throws: BuildFailed.self) {
                try withBuildLock(try gitSpec(repository), log: .silent) { throw BuildFailed() }
            }
            #expect(try work.git("ls-remote", "origin", try lockRef()) == "")
        }
    }

    @Test func gitUnreachableRepositoryIsAClearError() throws {
        try withTemporaryDirectory { directory in
            let spec = try gitSpec(directory.appending("missing.git"))
            let error = #expect(throws: LockError.self) { try withBuildLock(spec, log: .silent) {} }
            #expect(error?.message.contains("missing.git") == true, "\(String(describing: error))")
        }
    }
}
