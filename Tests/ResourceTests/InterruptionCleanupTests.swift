import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT, as Concourse sends them when a build is aborted, through the built
/// binaries: `check` and `in` stalled on an ssh remote that never answers are stopped, and
/// afterwards no private key is left in `TMPDIR` and no git or ssh they started is still
/// running. A key directory a killed run left behind is swept by the next `check`, `in`
/// or `out`.
@Suite("Interruption: SIGTERM and SIGINT leave no key and no child behind")
struct InterruptionCleanupTests {
    @Test(arguments: [("check", SIGTERM), ("in", SIGTERM), ("check", SIGINT)])
    func aSignalledCommandRemovesItsKeyAndEndsItsChildren(_ command: String, _ signal: Int32) async throws {
        try await withTemporaryDirectory { directory in
            let listener = try StallingListener()
            defer { listener.close() }
            let marker = "marker-\(UUID().uuidString.prefix(12))"
            let key = try Self.privateKey(in: directory)
            let environment = try FaultHarness.environment(directory)
            let tmp = URL(fileURLWithPath: environment["TMPDIR"]!)
            let source: [String: Any] = [
                "repository": "registry.invalid/team/app",
                "git": [
                    "uri": "ssh://git@127.0.0.1:\(listener.port)/\(marker).git", "branch": "main", "private_key": key,
                ],
            ]
            var request: [String: Any] = ["source": source]
            if command == "in" {
                request["version"] = ["ref": String(repeating: "a", count: 40)]
                request["params"] = ["image": "skip"]
            }
            let input = String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
            let run = try SignalledRun(
                try builtProduct(command).path, command == "in" ? [directory.appending("get").path] : [],
                input: input, environment: environment, scratch: directory.url)

            // Wait until ssh is connected to the listener (and so the key is on disk).
            let deadline = Date().addingTimeInterval(60)
            while Self.processes(carrying: marker).isEmpty && Date() < deadline && !run.finished { usleep(50_000) }
            try #require(!Self.processes(carrying: marker).isEmpty, "\(command) started ssh: \(run.stderr)")
            #expect(!Self.keyDirectories(under: tmp).isEmpty, "the key file exists while ssh runs")

            run.signal(signal)
            let status = run.wait(seconds: 30)
            #expect(
                status == 128 + signal,
                "\(command) ends by the signal (status \(String(describing: status))): \(run.stderr)")
            // Children end with their parent: give the kernel a moment to reap them.
            let left = Self.processesLeft(carrying: marker, within: 2)
            #expect(left.isEmpty, "no process carrying the marker is left: \(left)")
            #expect(
                Self.keyDirectories(under: tmp).isEmpty,
                "no key directory is left in TMPDIR: \(Self.keyDirectories(under: tmp))")
        }
    }

    /// The processes still carrying `marker` once they have had `seconds` to end.
    static func processesLeft(carrying marker: String, within seconds: Double) -> [String] {
        var left = processes(carrying: marker)
        let deadline = Date().addingTimeInterval(seconds)
        while !left.isEmpty && Date() < deadline {
            usleep(50_000)
            left = processes(carrying: marker)
        }
        return left
    }

    /// build-task's buildah, and the program its `RUN` started, end with build-task.
    @Test func aSignalledBuildTaskEndsBuildahAndTheRunStep() async throws {
        try await withTemporaryDirectory { directory in
            // A sleep of a unique length: the shell and the sleep both carry it.
            let marker = "299.\(UInt32.random(in: 100_000_000...999_999_999))"
            let context = directory.appending("context")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
            try Data(
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep \(marker); echo done\"]\n"
                    .utf8
            )
            .write(to: context.appendingPathComponent("Dockerfile"))
            var environment = try FaultHarness.environment(directory)
            environment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
            environment["CONTEXT"] = context.path
            environment["CACHE"] = directory.appending("cache").path
            environment["OUTPUT"] = directory.appending("image").path
            let run = try SignalledRun(
                try builtProduct("build-task").path, [], input: "", environment: environment, scratch: directory.url)
            let deadline = Date().addingTimeInterval(120)
            while Self.processes(carrying: "sleep \(marker)").count < 3 && Date() < deadline && !run.finished {
                usleep(100_000)
            }
            try #require(
                Self.processes(carrying: "sleep \(marker)").count >= 3,
                "the RUN step's shell and sleep run: \(run.stderr.suffix(800))")
            print("interruption: build-task's RUN step runs: \(Self.processes(carrying: "sleep \(marker)"))")
            run.signal(SIGTERM)
            let status = run.wait(seconds: 60)
            #expect(
                status == 128 + SIGTERM,
                "build-task ends by the signal (status \(String(describing: status))): \(run.stderr.suffix(800))")
            let left = Self.processesLeft(carrying: marker, within: 10)
            #expect(left.isEmpty, "no process carrying the marker is left: \(left)")
            // Whatever the test's own failure, leave nothing running.
            for entry in left { if let pid = pid_t(entry.prefix { $0 != ":" }) { kill(pid, SIGKILL) } }
        }
    }

    @Test(arguments: ["check", "in", "out"])
    func aKeyDirectoryAKilledRunLeftIsSweptAtStart(_ command: String) async throws {
        try await withTestGitRepository { repository in
            try await withTemporaryDirectory { directory in
                let remote = try repository.bareClone()
                let commit = try repository.commit("app", files: ["app/Dockerfile": "FROM scratch\n"])
                try repository.push()
                let environment = try FaultHarness.environment(directory)
                let tmp = URL(fileURLWithPath: environment["TMPDIR"]!)
                // What a run killed with SIGKILL leaves: a key directory named after a process
                // that no longer exists, in both places key directories are made.
                var leftovers: [URL] = []
                for parent in [tmp, tmp.appendingPathComponent("slipway-git")] {
                    let left = parent.appendingPathComponent("slipway-key.\(Self.deadProcessID()).AbCdEf")
                    try FileManager.default.createDirectory(at: left, withIntermediateDirectories: true)
                    try Data("-----BEGIN OPENSSH PRIVATE KEY-----\n".utf8).write(to: left.appendingPathComponent("key"))
                    leftovers.append(left)
                }
                let source =
                    #"{"repository":"127.0.0.1:1/team/app","git":{"uri":"\#(remote.url.absoluteString)","branch":"main"}}"#
                let input: String
                var arguments: [String] = []
                switch command {
                case "check": input = #"{"source":\#(source)}"#
                case "in":
                    input = #"{"source":\#(source),"version":{"ref":"\#(commit)"},"params":{"image":"skip"}}"#
                    arguments = [directory.appending("get").path]
                default:
                    // A put that fails at once (no image): the sweep comes first.
                    input = #"{"source":\#(source),"params":{"image":"missing/*"}}"#
                    arguments = [directory.path]
                }
                let run = try FaultHarness.runTimed(
                    try builtProduct(command).path, arguments, input: input, environment: environment,
                    scratch: directory.appending("run"), limit: 120)
                if command != "out" { #expect(run.status == 0, "\(command): \(run.stderrString.suffix(600))") }
                for left in leftovers {
                    #expect(!FileManager.default.fileExists(atPath: left.path), "\(command) swept \(left.path)")
                }
            }
        }
    }

    // MARK: Helpers

    /// A fresh ed25519 key in OpenSSH format.
    static func privateKey(in directory: TemporaryDirectory) throws -> String {
        let file = directory.appending("id_ed25519")
        _ = try runProcess("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file.path]).checked()
        return try String(contentsOf: file, encoding: .utf8)
    }

    /// A process ID no process has now.
    static func deadProcessID() -> pid_t {
        var candidate: pid_t = 4_000_000
        while kill(candidate, 0) == 0 || errno != ESRCH { candidate -= 1 }
        return candidate
    }

    /// Processes (other than this one) whose command line contains `marker`.
    static func processes(carrying marker: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [String] = []
        for entry in entries where Int32(entry) != nil && Int32(entry) != getpid() {
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else {
                continue
            }
            let line = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            if line.contains(marker) { found.append("\(entry): \(line)") }
        }
        return found
    }

    /// `slipway-key.*` directories anywhere under `root`.
    static func keyDirectories(under root: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter {
            ($0 as NSString).lastPathComponent.hasPrefix("slipway-key.")
        }
    }
}

/// A TCP socket on 127.0.0.1 that listens and never accepts: the kernel completes every
/// connection, and the client then waits for a first byte that never comes (an ssh server
/// or `git daemon` that hangs).
final class StallingListener: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard fd >= 0, bound == 0, listen(fd, 64) == 0 else {
            self.port = 0
            throw TestSupportError("cannot listen on 127.0.0.1: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}

/// A built binary started under `sh` (which execs it, so the shell's pid is the binary's),
/// with its input and output in files, that the test can signal and wait for.
final class SignalledRun: Sendable {
    private let directory: URL
    private let done = DispatchSemaphore(value: 0)
    private let pidFile: URL
    private let state = RunState()

    private final class RunState: Sendable {
        let value = Mutex<(finished: Bool, status: Int32?)>((false, nil))
    }

    init(_ executable: String, _ arguments: [String], input: String, environment: [String: String], scratch: URL) throws
    {
        directory = scratch.appendingPathComponent("signalled-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        pidFile = directory.appendingPathComponent("pid")
        try Data(input.utf8).write(to: directory.appendingPathComponent("stdin"))
        let script = #"d=$0; echo $$ > "$d/pid"; exec "$@" < "$d/stdin" > "$d/stdout" 2> "$d/stderr""#
        let directory = directory
        let state = state
        let done = done
        Thread.detachNewThread {
            let result = try? runProcess(
                "/bin/sh", ["-c", script, directory.path, executable] + arguments, environment: environment)
            let status = result.map { $0.terminatedBySignal ? 128 + $0.status : $0.status }
            state.value.withLock { $0 = (true, status) }
            done.signal()
        }
    }

    var finished: Bool { state.value.withLock { $0.finished } }

    var stderr: String {
        (try? String(contentsOf: directory.appendingPathComponent("stderr"), encoding: .utf8)) ?? ""
    }

    /// Sends `signal` to the binary.
    func signal(_ signal: Int32) {
        for _ in 0..<100 {
            if let text = try? String(contentsOf: pidFile, encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                kill(pid, signal)
                return
            }
            usleep(20_000)
        }
    }

    /// The exit status (128 + n when ended by signal n), or nil when it is still running
    /// after `seconds`.
    func wait(seconds: Int) -> Int32? {
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
        return state.value.withLock { $0.status }
    }
}
