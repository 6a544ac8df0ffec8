import Foundation
import OCI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file (or a pipe, or any file descriptor) with `read(2)`.
///
/// Plain system calls rather than `FileHandle`: they report `errno` as an error instead of
/// raising an Objective-C exception on Darwin, and never buffer more than the caller asks.
public final class FileSource: ByteSource {
    private var descriptor: Int32
    private let closeOnDeinit: Bool
    /// What to call the file in errors.
    private let label: String

    /// Opens `path` for reading; the descriptor is closed when the source is deallocated.
    /// - Throws: ``ArchiveError`` (`.io`) naming the path and the system's reason.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ArchiveError.system("cannot open \(quoted(path)) for reading", errno: errno)
        }
        descriptor = fd
        closeOnDeinit = true
        label = quoted(path)
    }

    /// Reads from an already open descriptor, such as standard input or a pipe.
    /// - Parameter closeOnDeinit: Whether this source owns the descriptor and closes it when
    ///   deallocated.
    public init(fileDescriptor: Int32, closeOnDeinit: Bool) {
        descriptor = fileDescriptor
        self.closeOnDeinit = closeOnDeinit
        label = "file descriptor \(fileDescriptor)"
    }

    deinit {
        if closeOnDeinit && descriptor >= 0 { close(descriptor) }
    }

    /// Reads with `read(2)`, retrying when interrupted by a signal.
    /// - Throws: ``ArchiveError`` (`.io`) naming the file and the system's reason.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            #if canImport(Darwin)
                let n = Darwin.read(descriptor, base, min(buffer.count, Int(Int32.max)))
            #elseif canImport(Glibc)
                let n = Glibc.read(descriptor, base, min(buffer.count, Int(Int32.max)))
            #else
                let n = Musl.read(descriptor, base, min(buffer.count, Int(Int32.max)))
            #endif
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ArchiveError.system("cannot read \(label)", errno: errno)
        }
    }
}

/// Writes a file (or a pipe, or any file descriptor) with `write(2)`, unbuffered.
public final class FileSink: ByteSink {
    private var descriptor: Int32
    /// True when this sink opened the file, so ``finish()`` closes it (and reports a failed
    /// close, which on some file systems is where a failed write shows up).
    private let ownsDescriptor: Bool
    private let closeOnDeinit: Bool
    private var finished = false
    private let label: String

    /// Creates or truncates `path` with permission bits `mode` (before the umask).
    /// - Throws: ``ArchiveError`` (`.io`) naming the path and the system's reason.
    public init(path: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw ArchiveError.system("cannot create \(quoted(path))", errno: errno)
        }
        descriptor = fd
        ownsDescriptor = true
        closeOnDeinit = true
        label = quoted(path)
    }

    /// Writes to an already open descriptor, such as standard output or a pipe.
    /// ``finish()`` leaves it open.
    /// - Parameter closeOnDeinit: Whether this sink closes the descriptor when deallocated.
    public init(fileDescriptor: Int32, closeOnDeinit: Bool) {
        descriptor = fileDescriptor
        ownsDescriptor = false
        self.closeOnDeinit = closeOnDeinit
        label = "file descriptor \(fileDescriptor)"
    }

    deinit {
        if closeOnDeinit && descriptor >= 0 { close(descriptor) }
    }

    /// Writes all of `bytes` with `write(2)`, continuing after short writes and signals.
    /// - Throws: ``ArchiveError`` (`.io`) naming the file and the system's reason (a full disk
    ///   is `No space left on device`).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw ArchiveError(.outOfOrder, "write to \(label) after finish()") }
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            #if canImport(Darwin)
                let n = Darwin.write(descriptor, base, min(remaining, Int(Int32.max)))
            #elseif canImport(Glibc)
                let n = Glibc.write(descriptor, base, min(remaining, Int(Int32.max)))
            #else
                let n = Musl.write(descriptor, base, min(remaining, Int(Int32.max)))
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.system("cannot write \(label)", errno: errno)
            }
            base += n
            remaining -= n
        }
    }

    /// Forces written data to stable storage (`fsync`), for callers that rename a finished
    /// temporary file into place and must not publish a file whose bytes are still in flight.
    public func synchronize() throws {
        guard descriptor >= 0 else { throw ArchiveError(.outOfOrder, "synchronize \(label) after finish()") }
        guard fsync(descriptor) == 0 else {
            throw ArchiveError.system("cannot fsync \(label)", errno: errno)
        }
    }

    /// Closes the file if this sink opened it; a descriptor it was handed stays open.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        guard ownsDescriptor else { return }
        let fd = descriptor
        descriptor = -1
        guard close(fd) == 0 else {
            throw ArchiveError.system("cannot close \(label)", errno: errno)
        }
    }
}
