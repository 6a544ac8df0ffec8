import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The production ``CommandRunner``: `posix_spawn` with a clean signal state, and one
/// `poll` loop that feeds standard input and drains standard output and standard error.
///
/// Why not Foundation's `Process`: on Linux it hands the spawning thread's signal mask to
/// the child, and Swift concurrency and Dispatch threads block nearly every signal. A git
/// started that way cannot be stopped with SIGTERM and its own children (ssh, the
/// credential helper, `git-upload-pack`) are never reaped. Here every child starts with
/// nothing blocked and every signal at its default disposition, as a shell would start it,
/// as the leader of a process group of its own, which ``TerminationCleanup`` ends (with
/// everything the child started) when this process gets SIGTERM or SIGINT.
///
/// Why one `poll` loop: a child that fills the standard error pipe while we wait on
/// standard output (or that writes before reading its input) deadlocks a sequential
/// reader; polling all three descriptors never blocks on one while another is ready.
public struct SpawnCommandRunner: CommandRunner {
    /// The environment every child starts from, before ``Command/environment`` is applied.
    public var baseEnvironment: [String: String]

    /// Creates a runner whose children start from `baseEnvironment` (this process's
    /// environment by default).
    public init(baseEnvironment: [String: String] = ProcessInfo.processInfo.environment) {
        self.baseEnvironment = baseEnvironment
    }

    public func run(_ command: Command) throws -> CommandResult {
        try run(command, onOutputLine: nil)
    }

    /// Runs `command`, handing each line of its standard output and standard error to
    /// `onOutputLine` as it arrives (a build's progress), and returns the whole result.
    public func run(_ command: Command, onOutputLine: ((String) -> Void)?) throws -> CommandResult {
        ignoreBrokenPipes()
        var environment = baseEnvironment
        for (name, value) in command.environment {
            environment[name] = value
        }
        let executable = try resolve(command.executable, path: environment["PATH"])

        let output = try ChildProcess.pipe()
        let errors = try ChildProcess.pipe()
        var input: (read: Int32, write: Int32) = (-1, -1)
        do {
            if command.input != nil {
                input = try ChildProcess.pipe()
            } else {
                input.read = open("/dev/null", O_RDONLY | O_CLOEXEC)
            }
        } catch {
            closeAll([output.read, output.write, errors.read, errors.write])
            throw error
        }

        let pid: pid_t
        do {
            pid = try TerminationCleanup.startChild {
                try ChildProcess.start(
                    executable: executable, arguments: command.arguments, environment: environment,
                    currentDirectory: command.currentDirectory, stdin: input.read, stdout: output.write,
                    stderr: errors.write
                )
            }
        } catch {
            closeAll([output.read, output.write, errors.read, errors.write, input.read, input.write])
            throw error
        }
        // The child holds its own copies; ours must go or we never see end of file.
        closeAll([output.write, errors.write, input.read])

        let (stdout, stderr, timedOut) = pump(
            input: command.input ?? Data(), to: input.write, from: output.read, and: errors.read,
            onOutputLine: onOutputLine, child: pid, idleTimeout: command.idleTimeout)
        let exit = ChildProcess.wait(for: pid)
        TerminationCleanup.childEnded(pid)
        return CommandResult(
            status: exit.code, terminatedBySignal: exit.signaled, standardOutput: stdout, standardError: stderr,
            timedOut: timedOut)
    }
}

// MARK: - Finding the program

private func resolve(_ name: String, path: String?) throws -> String {
    if name.contains("/") { return name }
    let search = path ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in search.split(separator: ":") where !directory.isEmpty {
        let candidate = "\(directory)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    throw SpawnError("`\(name)` was not found in PATH (\(search)); install it or put it on the PATH")
}

// MARK: - Pipes and the poll loop

private func closeAll(_ descriptors: [Int32]) {
    for fd in descriptors where fd >= 0 { close(fd) }
}

/// Writes `input` to `inputFD` (then closes it) while reading both outputs to end of file.
/// With `idleTimeout`, kills `child`'s process group once neither output nor the bytes the
/// child has read or written (`/proc/<pid>/io`) changed for that long, and says so.
private func pump(
    input: Data, to inputFD: Int32, from outputFD: Int32, and errorFD: Int32,
    onOutputLine: ((String) -> Void)? = nil, child: pid_t, idleTimeout: Duration?
) -> (Data, Data, Bool) {
    var idle = idleTimeout.map { IdleWatch(limit: $0, moved: bytesMoved(by: child)) }
    var timedOut = false
    var stdout = Data()
    var stderr = Data()
    var lines = LineSplitter(onOutputLine: onOutputLine)
    var writeFD = inputFD
    var written = 0
    if writeFD >= 0 {
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        if input.isEmpty {
            close(writeFD)
            writeFD = -1
        }
    }
    var readFDs = [outputFD, errorFD]
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    while writeFD >= 0 || readFDs.contains(where: { $0 >= 0 }) {
        var polled = [pollfd]()
        for fd in readFDs where fd >= 0 { polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
        if writeFD >= 0 { polled.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
        let ready = poll(&polled, nfds_t(polled.count), idle == nil || timedOut ? -1 : 500)
        if ready < 0 {
            if errno == EINTR { continue }
            break
        }
        if !timedOut, idle?.isIdle(ready: ready, moved: bytesMoved(by: child)) == true {
            // The whole group: git's ssh or remote helper holds the pipes too.
            kill(-child, SIGKILL)
            timedOut = true
        }
        for entry in polled where entry.revents != 0 {
            if entry.fd == writeFD {
                if !writeSome(of: input, to: writeFD, written: &written) { writeFD = -1 }
                continue
            }
            let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                if entry.fd == outputFD {
                    stdout.append(contentsOf: buffer[0..<count])
                } else {
                    stderr.append(contentsOf: buffer[0..<count])
                }
                lines.deliver(entry.fd, buffer[0..<count], final: false)
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                lines.deliver(entry.fd, [], final: true)
                close(entry.fd)
                if let index = readFDs.firstIndex(of: entry.fd) { readFDs[index] = -1 }
            }
        }
    }
    return (stdout, stderr, timedOut)
}

/// Writes to `fd` what it takes of `input` past `written`, once `poll` found it writable.
/// Returns false once `fd` is closed: all of `input` is written, or the child closed its
/// input early (EPIPE), when its status tells the story.
private func writeSome(of input: Data, to fd: Int32, written: inout Int) -> Bool {
    let count = input.withUnsafeBytes { bytes in
        write(fd, bytes.baseAddress! + written, bytes.count - written)
    }
    if count > 0 {
        written += count
        guard written == input.count else { return true }
    } else if count < 0 && (errno == EAGAIN || errno == EINTR) {
        return true
    }
    close(fd)
    return false
}

/// Decides when a child counts as stuck: neither `poll` nor the bytes it moved showed
/// progress for `limit`.
private struct IdleWatch {
    let limit: Duration
    var lastProgress: ContinuousClock.Instant
    var lastMoved: UInt64?

    init(limit: Duration, moved: UInt64?) {
        self.limit = limit
        self.lastProgress = ContinuousClock.now
        self.lastMoved = moved
    }

    /// Notes a `poll` that found `ready` descriptors, the child having moved `moved` bytes;
    /// true when nothing changed for `limit`.
    mutating func isIdle(ready: Int32, moved: UInt64?) -> Bool {
        if ready > 0 || moved != lastMoved {
            lastProgress = ContinuousClock.now
            lastMoved = moved
            return false
        }
        return ContinuousClock.now - lastProgress >= limit
    }
}

/// Cuts each output into lines for `onOutputLine`, keeping each descriptor's partial line.
private struct LineSplitter {
    let onOutputLine: ((String) -> Void)?
    var pending: [Int32: Data] = [:]

    mutating func deliver(_ fd: Int32, _ bytes: ArraySlice<UInt8>, final: Bool) {
        guard let onOutputLine else { return }
        var data = pending[fd, default: Data()]
        data.append(contentsOf: bytes)
        while let newline = data.firstIndex(of: UInt8(ascii: "\n")) {
            onOutputLine(String(decoding: data[data.startIndex..<newline], as: UTF8.self))
            data = Data(data[data.index(after: newline)...])
        }
        if final, !data.isEmpty {
            onOutputLine(String(decoding: data, as: UTF8.self))
            data = Data()
        }
        pending[fd] = data
    }
}

/// How many bytes `pid` has read and written so far (`rchar` + `wchar`: sockets and pipes
/// included; a push mostly writes), or nil where `/proc` does not say.
private func bytesMoved(by pid: pid_t) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return nil }
    var total: UInt64?
    for line in text.split(separator: "\n") where line.hasPrefix("rchar:") || line.hasPrefix("wchar:") {
        if let count = UInt64(line.drop { $0 != ":" }.dropFirst().trimmingCharacters(in: .whitespaces)) {
            total = (total ?? 0) &+ count
        }
    }
    return total
}

/// Writing to a pipe whose reader exited must fail with EPIPE, not end this process.
/// Children get the default disposition back through POSIX_SPAWN_SETSIGDEF.
private let brokenPipesIgnored: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

private func ignoreBrokenPipes() {
    _ = brokenPipesIgnored
}
