import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Why not Foundation's `Process`: on Linux it passes the spawning thread's signal mask to
// the child. Swift concurrency and Dispatch worker threads block nearly every signal, so a
// child started from a test had SIGTERM and SIGCHLD blocked: `/bin/sh` then hung forever in
// `wait`, and a Python server ignored SIGTERM. Spawning with an empty mask and default
// dispositions gives every child the signal state a shell would give it.

#if canImport(Darwin)
private typealias FileActions = posix_spawn_file_actions_t?
private typealias SpawnAttributes = posix_spawnattr_t?
#else
private typealias FileActions = posix_spawn_file_actions_t
private typealias SpawnAttributes = posix_spawnattr_t
#endif

/// glibc's `_np` spawn extensions are not visible to Swift's Glibc module; look them up.
private typealias AddChdir = @convention(c) (UnsafeMutableRawPointer, UnsafePointer<CChar>) -> Int32
private typealias AddClosefrom = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32

private func lookup<T>(_ name: String, as type: T.Type) -> T? {
    #if canImport(Darwin)
    let handle = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT
    #else
    let handle: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT
    #endif
    guard let symbol = dlsym(handle, name) else { return nil }
    return unsafeBitCast(symbol, to: type)
}

private let addChdir: AddChdir? = lookup("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
private let pipeWithFlags: Pipe2? = lookup("pipe2", as: Pipe2.self)
private let addClosefrom: AddClosefrom? = lookup("posix_spawn_file_actions_addclosefrom_np", as: AddClosefrom.self)

/// Starts `executable` with the given standard streams, a clean signal state (nothing
/// blocked, every signal at its default), and no other inherited descriptors where the C
/// library can close them.
/// - Returns: The child's process id; the caller must reap it with ``waitForExit(_:)``.
func spawnChild(
    executable: URL,
    arguments: [String],
    environment: [String: String]?,
    currentDirectory: URL?,
    stdin: Int32,
    stdout: Int32,
    stderr: Int32
) throws -> pid_t {
    var executablePath = executable.path
    var argv = [executablePath] + arguments
    if let currentDirectory, addChdir == nil {
        // No addchdir: let a shell change directory, then exec the program.
        argv = ["/bin/sh", "-c", #"cd -- "$0" && exec "$@""#, currentDirectory.path] + argv
        executablePath = "/bin/sh"
    }
    let environment = environment ?? ProcessInfo.processInfo.environment
    let envp = environment.map { "\($0.key)=\($0.value)" }

    var actions = FileActions()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    withUnsafeMutablePointer(to: &actions) { pointer in
        if let currentDirectory, let addChdir {
            _ = addChdir(UnsafeMutableRawPointer(pointer), currentDirectory.path)
        }
        if let addClosefrom {
            _ = addClosefrom(UnsafeMutableRawPointer(pointer), 3)
        }
    }

    var attributes = SpawnAttributes()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    sigdelset(&allSignals, SIGKILL)
    sigdelset(&allSignals, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    #if canImport(Darwin)
    flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
    #endif
    posix_spawnattr_setflags(&attributes, Int16(flags))

    var pid: pid_t = 0
    let status = withCStrings(argv) { argvPointer in
        withCStrings(envp) { envpPointer in
            posix_spawn(&pid, executablePath, &actions, &attributes, argvPointer, envpPointer)
        }
    }
    guard status == 0 else {
        throw TestSupportError("cannot start \(executable.path): \(String(cString: strerror(status)))")
    }
    return pid
}

/// How a child ended.
struct ExitStatus: Sendable {
    /// The exit code, or the signal number when `signaled`.
    var code: Int32
    var signaled: Bool
}

/// Decodes a `waitpid` status (the WIFEXITED/WTERMSIG macros are not imported).
private func decode(_ status: Int32) -> ExitStatus {
    let signal = status & 0x7f
    return signal == 0 ? ExitStatus(code: (status >> 8) & 0xff, signaled: false) : ExitStatus(code: signal, signaled: true)
}

/// Blocks until the child exits and reaps it.
func waitForExit(_ pid: pid_t) -> ExitStatus {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
        if errno != EINTR { return ExitStatus(code: -1, signaled: false) }
    }
    return decode(status)
}

/// Reaps the child if it has exited; nil while it runs.
func pollExit(_ pid: pid_t) -> ExitStatus? {
    var status: Int32 = 0
    let result = waitpid(pid, &status, WNOHANG)
    if result == pid { return decode(status) }
    if result == -1 && errno == ECHILD { return ExitStatus(code: -1, signaled: false) }
    return nil
}

/// A pipe whose both ends are closed on exec (the spawn's dup2 clears the flag on the copy
/// the child uses), so concurrent children never inherit each other's pipe ends.
func makePipe() throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    if let pipe2 = pipeWithFlags {
        guard fds.withUnsafeMutableBufferPointer({ pipe2($0.baseAddress!, Int32(O_CLOEXEC)) }) == 0 else {
            throw TestSupportError("pipe2() failed: errno \(errno)")
        }
    } else {
        // Without pipe2 there is a window before FD_CLOEXEC is set; closefrom in the spawn
        // (where available) covers it.
        guard pipe(&fds) == 0 else { throw TestSupportError("pipe() failed: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    }
    return (fds[0], fds[1])
}

/// Reads a descriptor to end of file, then closes it.
func readAll(_ fd: Int32) -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            data.append(contentsOf: buffer[0..<count])
        } else if count == 0 || errno != EINTR {
            break
        }
    }
    close(fd)
    return data
}

/// Writes all bytes (stopping quietly if the reader has gone), then closes the descriptor.
func writeAll(_ fd: Int32, _ data: Data) {
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count > 0 {
                offset += count
            } else if count == -1 && errno == EINTR {
                continue
            } else {
                break  // EPIPE: the child exited without reading; its status tells the story
            }
        }
    }
    close(fd)
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
