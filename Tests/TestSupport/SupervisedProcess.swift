import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A long-running helper (the registry, a Python server) started under a tiny `/bin/sh`
/// watchdog, so it cannot outlive the test process.
///
/// The watchdog runs the helper in the background and a guard loop that checks every
/// half second whether the test process still exists; when it is gone (a crash, a
/// `fatalError`, a SIGKILL) the guard sends SIGTERM to the helper, then SIGKILL after
/// five seconds. A SIGTERM to the watchdog itself, which ``stop()`` sends, is forwarded
/// to the helper. Output of both goes to `logFile`.
final class SupervisedProcess: Sendable {
    let logFile: URL
    /// The watchdog shell's process id.
    let pid: pid_t
    private let childPIDFile: URL
    private let exitStatus = Mutex<ExitStatus?>(nil)

    // $1: pid of the test process, $2: file for the helper's pid, then the command.
    private static let script = #"""
        parent=$1; pidfile=$2; shift 2
        "$@" </dev/null &
        child=$!
        echo "$child" > "$pidfile"
        trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
        (
          while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
          kill -TERM "$child" 2>/dev/null
          sleep 5
          kill -KILL "$child" 2>/dev/null
        ) </dev/null >/dev/null 2>&1 &
        guard=$!
        wait "$child"; status=$?
        while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
        kill "$guard" 2>/dev/null
        exit "$status"
        """#

    /// Starts `executable arguments…` under the watchdog; its output is appended to `logFile`.
    /// `parentPID` is the process whose end ends the helper (tests of the watchdog pass a
    /// stand-in).
    init(
        executable: URL,
        arguments: [String],
        environment: [String: String]? = nil,
        logFile: URL,
        pidFile: URL,
        parentPID: Int32 = getpid()
    ) throws {
        ignoreSIGPIPE()
        self.logFile = logFile
        self.childPIDFile = pidFile
        let log = open(logFile.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw TestSupportError("cannot open \(logFile.path): errno \(errno)") }
        defer { close(log) }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        pid = try spawnChild(
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", Self.script, "slipway-watchdog", String(parentPID), pidFile.path, executable.path]
                + arguments,
            environment: environment, currentDirectory: nil, stdin: devNull, stdout: log, stderr: log
        )
    }

    /// True while the watchdog (and so the helper) is running; reaps it once it has ended.
    var isRunning: Bool {
        exitStatus.withLock { status in
            if status == nil { status = pollExit(pid) }
            return status == nil
        }
    }

    /// The helper's process id (not the watchdog's), once the watchdog has written it.
    var childPID: Int32? {
        guard let text = try? String(contentsOf: childPIDFile, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The last bytes of the log, for error messages.
    func logTail(_ count: Int = 4000) -> String {
        guard let data = FileManager.default.contents(atPath: logFile.path) else { return "" }
        return String(decoding: data.suffix(count), as: UTF8.self)
    }

    /// Ends the helper and waits for it: SIGTERM through the watchdog, SIGKILL to both after
    /// `timeout` seconds. Safe to call more than once.
    func stop(timeout: Double = 10) async {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline {
            do {
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                usleep(10_000)  // cancelled: still wait for the helper, without spinning
            }
        }
        if isRunning {
            if let child = childPID { kill(child, SIGKILL) }
            kill(pid, SIGKILL)
            exitStatus.withLock { status in
                if status == nil { status = waitForExit(pid) }
            }
        }
    }
}

/// Where the fixture servers live: `Tests/Fixtures/servers`, found from this source file.
let fixtureServersDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // TestSupport
    .deletingLastPathComponent()  // Tests
    .appendingPathComponent("Fixtures/servers", isDirectory: true)

/// The Python 3 used for the fixture servers: Debian's when present (it starts fastest),
/// else the first `python3` in PATH.
func python3() throws -> URL {
    let system = URL(fileURLWithPath: "/usr/bin/python3")
    if FileManager.default.isExecutableFile(atPath: system.path) { return system }
    return try resolveExecutable("python3")
}

/// Starts `Tests/Fixtures/servers/<script>` with its JSON configuration file (which names
/// the `readyFile` it writes its port to), logging to `<stem>.log` in `directory`, and waits
/// until it is listening.
func startFixtureServer(_ script: String, configurationFile: URL, readyFile: URL, in directory: TemporaryDirectory)
    async throws -> (process: SupervisedProcess, port: Int)
{
    let stem = (script as NSString).deletingPathExtension
    let process = try SupervisedProcess(
        executable: try python3(),
        arguments: [fixtureServersDirectory.appendingPathComponent(script).path, configurationFile.path],
        logFile: directory.appending("\(stem).log"), pidFile: directory.appending("\(stem).pid"))
    return (process, try await waitForPortFile(readyFile, of: process, name: script))
}

/// A fixture server (`Tests/Fixtures/servers/<script>`) in a temporary directory of its own,
/// which holds its configuration, its ready file, its logs and whatever `configure` puts
/// there; ``stop()`` ends the process and removes the directory.
public final class FixtureServer: Sendable {
    public let directory: TemporaryDirectory
    let process: SupervisedProcess
    /// The port it listens on, on 127.0.0.1.
    public let port: Int

    private init(directory: TemporaryDirectory, process: SupervisedProcess, port: Int) {
        self.directory = directory
        self.process = process
        self.port = port
    }

    /// Starts `script` with the configuration `configure` returns (given the directory, to
    /// place files in), plus `readyFile`; the directory goes if starting fails.
    public static func start(_ script: String, prefix: String, configure: (TemporaryDirectory) throws -> [String: Any])
        async throws -> FixtureServer
    {
        let directory = try TemporaryDirectory(prefix: prefix)
        do {
            let readyFile = directory.appending("ready.port")
            var configuration = try configure(directory)
            configuration["readyFile"] = readyFile.path
            let configurationFile = directory.appending("configuration.json")
            try JSONSerialization.data(withJSONObject: configuration).write(to: configurationFile)
            let (process, port) = try await startFixtureServer(
                script, configurationFile: configurationFile, readyFile: readyFile, in: directory)
            return FixtureServer(directory: directory, process: process, port: port)
        } catch {
            directory.remove()
            throw error
        }
    }

    /// Stops the server and removes its files. Safe to call twice.
    public func stop() async {
        await process.stop()
        directory.remove()
    }
}

/// An empty request log for a fixture server to append JSON lines to.
public func emptyLog(in directory: TemporaryDirectory, _ name: String = "requests.jsonl") -> URL {
    let file = directory.appending(name)
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    return file
}

extension URL {
    /// `http://127.0.0.1:PORT` without a trailing slash: how a fixture server's configuration
    /// names the server it forwards to.
    var originText: String { absoluteString.hasSuffix("/") ? String(absoluteString.dropLast()) : absoluteString }
}

/// Runs `body` with what `start` started, and `stop`s it afterwards, also when `body` throws.
/// The shape of every `withX` helper of the test servers.
func withStarted<S, R>(_ start: () async throws -> S, stop: (S) async -> Void, _ body: (S) async throws -> R)
    async throws -> R
{
    let server = try await start()
    do {
        let result = try await body(server)
        await stop(server)
        return result
    } catch {
        await stop(server)
        throw error
    }
}

/// Waits until a fixture server has written its port to `readyFile`.
func waitForPortFile(_ readyFile: URL, of process: SupervisedProcess, name: String, timeout: Double = 60) async throws
    -> Int
{
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let text = try? String(contentsOf: readyFile, encoding: .utf8),
            let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return port
        }
        if !process.isRunning {
            throw TestSupportError(
                "\(name) exited before it was ready; log \(process.logFile.path):\n\(process.logTail())")
        }
        usleep(20_000)  // blocking on purpose, as in TestRegistry.waitUntilAnswering
    }
    await process.stop()
    throw TestSupportError(
        "\(name) was not ready after \(Int(timeout)) s; log \(process.logFile.path):\n\(process.logTail())")
}

/// Reads a JSON-lines log written by a fixture server.
func readJSONLines<T: Decodable>(_ file: URL, as type: T.Type) throws -> [T] {
    guard var data = FileManager.default.contents(atPath: file.path) else { return [] }
    // A line still being written has no newline yet: leave it for the next read.
    if let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) {
        data = data[...lastNewline]
    } else {
        return []
    }
    let decoder = JSONDecoder()
    var result: [T] = []
    for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
        do {
            result.append(try decoder.decode(T.self, from: Data(line)))
        } catch {
            throw TestSupportError(
                "cannot decode a line of \(file.path): \(error); line: \(String(decoding: line, as: UTF8.self))")
        }
    }
    return result
}
