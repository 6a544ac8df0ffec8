import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Starting one program, and waiting for it: the one place Slipway (and its tests) call
/// `posix_spawn`. ``SpawnCommandRunner`` builds on it; the test support starts its
/// long-running servers with it.
///
/// Every child starts as a shell would start it: nothing blocked in its signal mask, every
/// signal at its default disposition, no descriptor of ours but the three it is given.
/// Foundation's `Process` does not: on Linux it hands the spawning thread's signal mask to
/// the child, and Swift concurrency and Dispatch threads block nearly every signal, so a
/// child started from one could not be stopped with SIGTERM.
public enum ChildProcess {
    /// How a child ended.
    public struct ExitStatus: Sendable, Equatable {
        /// The exit code, or the signal number when ``signaled``.
        public var code: Int32
        public var signaled: Bool
    }

    /// Starts `executable` (a path) with `arguments`, exactly `environment`, and the given
    /// descriptors as its standard input, output and error.
    /// - Parameters:
    ///   - currentDirectory: the child's working directory; nil keeps ours.
    ///   - ownProcessGroup: the child leads a process group of its own, so a signal to the
    ///     group reaches what it starts too (``TerminationCleanup`` relies on it).
    /// - Returns: the child's process id; reap it with ``wait(for:)``.
    public static func start(
        executable: String, arguments: [String], environment: [String: String], currentDirectory: String? = nil,
        stdin: Int32, stdout: Int32, stderr: Int32, ownProcessGroup: Bool = true
    ) throws -> pid_t {
        var path = executable
        var argv = [executable] + arguments
        if let currentDirectory, addChdir == nil {
            // No addchdir in this C library: a shell changes directory, then execs the program.
            argv = ["/bin/sh", "-c", #"cd -- "$0" && exec "$@""#, currentDirectory] + argv
            path = "/bin/sh"
        }
        var actions = FileActions()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        withUnsafeMutablePointer(to: &actions) { pointer in
            if let currentDirectory, let addChdir { _ = addChdir(UnsafeMutableRawPointer(pointer), currentDirectory) }
            // Descriptors another thread opened without O_CLOEXEC stay out of the child.
            if let addClosefrom { _ = addClosefrom(UnsafeMutableRawPointer(pointer), 3) }
        }

        var attributes = SpawnAttributes()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var nothing = sigset_t()
        sigemptyset(&nothing)
        posix_spawnattr_setsigmask(&attributes, &nothing)
        var everything = sigset_t()
        sigfillset(&everything)
        sigdelset(&everything, SIGKILL)
        sigdelset(&everything, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &everything)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        }
        #if canImport(Darwin)
            flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #endif
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings(argv) { argvPointer in
            withCStrings(envp) { envpPointer in
                posix_spawn(&pid, path, &actions, &attributes, argvPointer, envpPointer)
            }
        }
        guard status == 0 else {
            throw SpawnError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// A pipe whose both ends are closed on exec (the spawn's `dup2` clears the flag on the
    /// copy the child uses), so concurrent children never inherit each other's pipe ends.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        let result: Int32
        if let pipe2Function {
            result = fds.withUnsafeMutableBufferPointer { pipe2Function($0.baseAddress!, Int32(O_CLOEXEC)) }
        } else {
            // Without pipe2 there is a window before FD_CLOEXEC is set; closefrom in the
            // spawn (where available) covers it.
            result = systemPipe(&fds)
            if result == 0 {
                _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            }
        }
        guard result == 0 else { throw SpawnError("cannot create a pipe: \(String(cString: strerror(errno)))") }
        return (fds[0], fds[1])
    }

    /// Blocks until `pid` exits and reaps it.
    public static func wait(for pid: pid_t) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return ExitStatus(code: -1, signaled: false) }
        }
        return decode(status)
    }

    /// Reaps `pid` if it has exited; nil while it runs.
    public static func poll(_ pid: pid_t) -> ExitStatus? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return decode(status) }
        if result == -1 && errno == ECHILD { return ExitStatus(code: -1, signaled: false) }
        return nil
    }

    /// A `waitpid` status (WIFEXITED and friends are macros Swift does not import).
    private static func decode(_ status: Int32) -> ExitStatus {
        let signal = status & 0x7f
        return signal == 0
            ? ExitStatus(code: (status >> 8) & 0xff, signaled: false) : ExitStatus(code: signal, signaled: true)
    }
}

// glibc's `_np` spawn extensions and `pipe2` are not in Swift's Glibc module: looked up once.
private typealias AddChdir = @convention(c) (UnsafeMutableRawPointer, UnsafePointer<CChar>) -> Int32
private typealias AddClosefrom = @convention(c) (UnsafeMutableRawPointer, Int32) -> Int32
private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

private func symbol<T>(_ name: String, as type: T.Type) -> T? {
    #if canImport(Darwin)
        let handle = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT
    #else
        let handle: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT
    #endif
    return dlsym(handle, name).map { unsafeBitCast($0, to: type) }
}

private let addChdir = symbol("posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
private let addClosefrom = symbol("posix_spawn_file_actions_addclosefrom_np", as: AddClosefrom.self)
private let pipe2Function = symbol("pipe2", as: Pipe2.self)

#if canImport(Darwin)
    private typealias FileActions = posix_spawn_file_actions_t?
    private typealias SpawnAttributes = posix_spawnattr_t?
#else
    private typealias FileActions = posix_spawn_file_actions_t
    private typealias SpawnAttributes = posix_spawnattr_t
#endif

/// The C library's `pipe` (``ChildProcess/pipe()`` shadows its name inside the enum).
private func systemPipe(_ fds: inout [Int32]) -> Int32 {
    pipe(&fds)
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
