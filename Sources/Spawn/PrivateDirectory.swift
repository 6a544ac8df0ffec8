import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A 0700 directory for one run's secrets (git's ssh key, buildah's auth file), named
/// `<prefix><pid>.<random>`: removed when the run is done and on SIGTERM or SIGINT (through
/// ``TerminationCleanup``), and swept by a later run once its process is gone, since a run
/// killed with SIGKILL cannot remove it.
public enum PrivateDirectory {
    /// Runs `body` with a new private directory in `parent`, removed afterwards, also when
    /// the process gets SIGTERM or SIGINT meanwhile.
    public static func with<R>(in parent: URL, prefix: String, _ body: (URL) throws -> R) throws -> R {
        let directory = try make(in: parent, prefix: prefix)
        let path = directory.path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let remove: @Sendable () -> Void = { try? FileManager.default.removeItem(atPath: path) }
        return try TerminationCleanup.onSignal(remove) { try body(directory) }
    }

    /// A new directory of mode 0700 named `<prefix><pid>.XXXXXX` in `parent` (made if missing).
    public static func make(in parent: URL, prefix: String) throws -> URL {
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        var template = Array(parent.appendingPathComponent("\(prefix)\(getpid()).XXXXXX").path.utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SpawnError("cannot create a private directory in \(parent.path): \(String(cString: strerror(errno)))")
        }
        let path = template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return URL(fileURLWithPath: String(decoding: path, as: UTF8.self), isDirectory: true)
    }

    /// Removes the private directories in `parent` whose process no longer exists; returns them.
    @discardableResult
    public static func sweep(_ parent: URL, prefix: String) -> [URL] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return [] }
        var removed: [URL] = []
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: ".")
            guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, pid != getpid(), kill(pid, 0) != 0,
                errno == ESRCH
            else { continue }
            let directory = parent.appendingPathComponent(name)
            if (try? FileManager.default.removeItem(at: directory)) != nil { removed.append(directory) }
        }
        return removed
    }
}
