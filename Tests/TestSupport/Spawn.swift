import Foundation
import Spawn

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Children of the tests start as Slipway's own do, through `Spawn`'s `ChildProcess` (see
// there why not Foundation's `Process`), but in the test process's group: a test server is
// stopped by its supervisor, and Ctrl-C on a test run reaches it.

typealias ExitStatus = ChildProcess.ExitStatus

/// Starts `executable` with the given standard streams; nil `environment` inherits ours.
/// - Returns: The child's process id; the caller must reap it with ``waitForExit(_:)``.
func spawnChild(executable: URL, arguments: [String], environment: [String: String]?, currentDirectory: URL?,
                stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
    do {
        return try ChildProcess.start(executable: executable.path, arguments: arguments,
                                      environment: environment ?? ProcessInfo.processInfo.environment,
                                      currentDirectory: currentDirectory?.path, stdin: stdin, stdout: stdout, stderr: stderr,
                                      ownProcessGroup: false)
    } catch {
        throw TestSupportError("\(error)")
    }
}

/// Blocks until the child exits and reaps it.
func waitForExit(_ pid: pid_t) -> ExitStatus { ChildProcess.wait(for: pid) }

/// Reaps the child if it has exited; nil while it runs.
func pollExit(_ pid: pid_t) -> ExitStatus? { ChildProcess.poll(pid) }

/// A pipe whose both ends are closed on exec.
func makePipe() throws -> (read: Int32, write: Int32) {
    do { return try ChildProcess.pipe() } catch { throw TestSupportError("\(error)") }
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
