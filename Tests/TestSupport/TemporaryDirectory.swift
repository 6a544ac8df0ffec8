import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh, private directory under the system's temporary directory.
///
/// Prefer ``withTemporaryDirectory(prefix:_:)``, which removes
/// it afterwards whatever happens; call ``remove()`` yourself otherwise.
public final class TemporaryDirectory: Sendable {
    /// The directory (its path has no symbolic links, so it compares equal to paths
    /// that tools like git print back).
    public let url: URL

    /// The directory's path.
    public var path: String { url.path }

    /// Creates a new empty directory named `<prefix>.XXXXXX` with mode 0700.
    /// - Throws: ``TestSupportError`` when the directory cannot be created.
    public init(prefix: String = "slipway-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).resolvingSymlinksInPath()
        var template = Array(base.appendingPathComponent("\(prefix).XXXXXX").path.utf8CString)
        let result = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!)
        }
        guard result != nil else {
            throw TestSupportError("cannot create a temporary directory in \(base.path): errno \(errno)")
        }
        let created = template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        url = URL(fileURLWithPath: String(decoding: created, as: UTF8.self), isDirectory: true)
    }

    /// A URL inside the directory.
    public func appending(_ relativePath: String) -> URL {
        url.appendingPathComponent(relativePath)
    }

    /// Deletes the directory and everything in it; errors are ignored.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Runs `body` with a new temporary directory and removes the directory afterwards,
/// also when `body` throws.
public func withTemporaryDirectory<R>(
    prefix: String = "slipway-test",
    _ body: (TemporaryDirectory) throws -> R
) throws -> R {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try body(directory)
}

/// Runs `body` with a new temporary directory and removes the directory afterwards,
/// also when `body` throws or the task is cancelled.
public func withTemporaryDirectory<R>(
    prefix: String = "slipway-test",
    _ body: (TemporaryDirectory) async throws -> R
) async throws -> R {
    let directory = try TemporaryDirectory(prefix: prefix)
    defer { directory.remove() }
    return try await body(directory)
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and reading what the kernel chose, then closing the
/// socket, so another process may take it before the caller binds it: callers that start
/// a server on it retry with a new port when the bind fails.
public func freeLoopbackPort() throws -> Int {
    #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
    #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #endif
    guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
    defer { close(fd) }

    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw TestSupportError("bind(127.0.0.1:0) failed: errno \(errno)") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError("getsockname failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
