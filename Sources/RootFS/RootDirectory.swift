import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

#if os(Linux)
    // A descriptor that names a directory without reading it: opening one needs search
    // permission on the parents only, so rootless unpacking can walk through directories whose
    // mode denies reading, and it can still anchor every *at() call.
    // Glibc declares O_PATH only under _GNU_SOURCE, which Swift's import does not set; the
    // value is the same on every Linux architecture.
    private let pathOnly: Int32 = 0o10000000
#else
    private let pathOnly: Int32 = O_RDONLY
#endif

/// An open directory descriptor, closed when the last reference goes.
final class DirectoryHandle {
    let fd: Int32
    private let owned: Bool

    init(fd: Int32, owned: Bool = true) {
        self.fd = fd
        self.owned = owned
    }

    deinit {
        if owned { close(fd) }
    }
}

extension DirectoryHandle {
    /// What a walk meets at one component, `name` in this directory, never following it.
    enum Step {
        /// A directory, opened with `O_NOFOLLOW` (search only where the platform allows).
        case directory(DirectoryHandle)
        /// A directory that could not be opened, with the `errno` of the open.
        case unopenableDirectory(Int32)
        /// A symbolic link, with its target.
        case link(String)
        /// A symbolic link whose target could not be read, with the `errno`.
        case unreadableLink(Int32)
        /// Anything else: a file, a device, a socket.
        case other
        /// Nothing could be seen there; the `errno` of `fstatat` (`ENOENT`: nothing is there).
        case failed(Int32)
    }

    /// One component of a walk, through descriptors only: the directory opened relative to
    /// this one with `O_NOFOLLOW`, or else what is there instead, seen without following it.
    func step(_ name: String) -> Step {
        let child = openat(fd, name, pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if child >= 0 { return .directory(DirectoryHandle(fd: child)) }
        let openError = errno
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return .failed(errno) }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: RootPath.maximumLength + 1)
            let count = readlinkat(fd, name, &buffer, buffer.count)
            guard count >= 0 else { return .unreadableLink(errno) }
            return .link(String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case S_IFDIR:
            return .unopenableDirectory(openError)
        default:
            return .other
        }
    }
}

/// Where an entry goes: an open handle on its parent directory (reached without leaving the
/// root), the parent's resolved path, and the entry's own name in it.
struct Placement {
    let parent: DirectoryHandle
    let parentPath: RootPath
    let name: String

    /// The resolved path of the entry itself.
    var path: RootPath { parentPath.appending(name) }
}

/// The root directory of an unpack, and path resolution that cannot leave it.
///
/// Every path is resolved one component at a time from a descriptor on the root, each
/// directory opened with `O_NOFOLLOW` relative to the previous one, never by a string path.
/// A symbolic link met on the way is followed *inside* the root, as a chroot would: an
/// absolute target restarts at the root, and `..` at the root stays at the root. So a link
/// planted by a layer, pointing at `/`, at `../../..` or at a host path, can only ever lead
/// to a directory below the root; and since no string path is re-resolved later, there is no
/// window for a link to be swapped in between a check and a use (CVE-2018-15664).
/// The last component is never followed: callers operate on it with `*at()` calls and
/// `AT_SYMLINK_NOFOLLOW`/`O_NOFOLLOW`, replacing a link rather than writing through it.
final class RootDirectory {
    /// Symbolic links followed while resolving one path before giving up, as Linux's `ELOOP` limit.
    static let maximumSymlinkHops = 40

    /// The root, opened for reading so its own metadata can be set through the descriptor.
    let handle: DirectoryHandle
    /// Whether the unpacking process can ignore permissions (root, or `CAP_DAC_OVERRIDE`).
    let privileged: Bool
    /// Called with each directory created because a path needed it (a layer may omit parent
    /// entries), with its parent's handle and its name.
    var onImplicitDirectory: (DirectoryHandle, RootPath, String) throws(UnpackError) -> Void = { _, _, _ in }

    /// The last resolved parent, keyed by the lexical components asked for: tar entries come
    /// grouped by directory, so most lookups repeat the previous one. Creating entries never
    /// changes where an already resolved path leads; removing a directory or a link can, so
    /// every removal calls ``forgetResolutions()``.
    private var cached: (key: [String], handle: DirectoryHandle, path: RootPath)?

    init(url: URL, privileged: Bool) throws(UnpackError) {
        self.privileged = privileged
        var fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            // The root path itself is the caller's, not the layer's, so creating it plainly is fine.
            do {
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            } catch {
                throw UnpackError(.fileSystem, "cannot create the root directory \(url.path): \(error)")
            }
            fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        guard fd >= 0 else {
            throw UnpackError(.fileSystem, "cannot open the root directory \(url.path): \(errnoText(errno))")
        }
        handle = DirectoryHandle(fd: fd)
    }

    func forgetResolutions() {
        cached = nil
    }

    /// Resolves every component of `path` as a directory inside the root.
    ///
    /// - Parameter createMissing: create missing directories (mode 0755) instead of failing.
    /// - Returns: a handle on the directory and its resolved path (no links in it).
    /// - Throws: ``UnpackError`` — `symlinkLoop`, `notADirectory`, or `fileSystem` with
    ///   `ENOENT` in the message when a component is missing and `createMissing` is false.
    func directory(_ path: RootPath, createMissing: Bool) throws(UnpackError) -> (DirectoryHandle, RootPath) {
        if path.isRoot { return (handle, .root) }
        if let cached, cached.key == path.components { return (cached.handle, cached.path) }
        let result = try walk(path.components, createMissing: createMissing)
        cached = (path.components, result.0, result.1)
        return result
    }

    /// Resolves the parent of `path` inside the root, leaving the last component unresolved.
    func placement(of path: RootPath, createMissing: Bool) throws(UnpackError) -> Placement {
        guard let name = path.name else {
            throw UnpackError(.unsafePath, "refused: the entry names the root directory itself")
        }
        let (parent, parentPath) = try directory(path.parent, createMissing: createMissing)
        return Placement(parent: parent, parentPath: parentPath, name: name)
    }

    /// The resolution loop: a stack of components still to walk, fed by link targets. Each
    /// component is one ``DirectoryHandle/step(_:)``, the walk ``BeneathDirectory`` shares;
    /// what is done with a link, a missing directory or `..` is this type's own. One loop,
    /// because each of those cases moves where the walk is and what is left to walk.
    private func walk(_ components: [String], createMissing: Bool) throws(UnpackError) -> (DirectoryHandle, RootPath) {
        var current = handle
        var resolved = RootPath.root
        var pending = Array(components.reversed())
        var hops = 0
        while let component = pending.popLast() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                // Only link targets bring `..` here (names with it are refused). At the root
                // it stays at the root; elsewhere re-walk the resolved prefix from the root,
                // which has no links in it, rather than trusting the directory's own "..".
                if !resolved.isRoot {
                    resolved = resolved.parent
                    current = try walk(resolved.components, createMissing: false).0
                }
                continue
            }
            let path = resolved.appending(component)
            switch current.step(component) {
            case .directory(let next):
                current = next
                resolved = path
            case .failed(let error) where error == ENOENT && createMissing:
                try createImplicitDirectory(component, in: current, under: resolved)
                pending.append(component)
            case .failed(let error):
                throw UnpackError(.fileSystem, "cannot resolve /\(path) inside the root: \(errnoText(error))")
            case .link(let target):
                hops += 1
                guard hops <= RootDirectory.maximumSymlinkHops else {
                    throw UnpackError(
                        .symlinkLoop,
                        "refused: more than \(RootDirectory.maximumSymlinkHops) symbolic links met while resolving the path inside the root (a link loop)"
                    )
                }
                if target.hasPrefix("/") {
                    // Absolute targets mean the image's root, never the host's.
                    current = handle
                    resolved = .root
                }
                pending.append(
                    contentsOf: target.split(separator: "/", omittingEmptySubsequences: true).reversed().map(
                        String.init))
            case .unreadableLink(let error):
                throw UnpackError(.fileSystem, "cannot read the symbolic link /\(path): \(errnoText(error))")
            case .unopenableDirectory(let error):
                throw UnpackError(.fileSystem, "cannot open directory /\(path): \(errnoText(error))")
            case .other:
                throw UnpackError(
                    .notADirectory, "refused: /\(path) is not a directory, yet the path continues below it")
            }
        }
        return (current, resolved)
    }

    /// Creates `name` in `parent`, a directory a path needs and the layer left out.
    private func createImplicitDirectory(_ name: String, in parent: DirectoryHandle, under parentPath: RootPath)
        throws(UnpackError)
    {
        guard mkdirat(parent.fd, name, 0o755) == 0 || errno == EEXIST else {
            throw UnpackError(
                .fileSystem, "cannot create directory /\(parentPath.appending(name)): \(errnoText(errno))")
        }
        // mkdirat applies the umask; a layer's implied parents are 0755 as in Docker.
        _ = fchmodat(parent.fd, name, 0o755, 0)
        try onImplicitDirectory(parent, parentPath, name)
    }

    /// The entry at `placement`, not following a final link; nil when there is none.
    func status(_ placement: Placement) throws(UnpackError) -> stat? {
        var info = stat()
        if fstatat(placement.parent.fd, placement.name, &info, AT_SYMLINK_NOFOLLOW) == 0 { return info }
        if errno == ENOENT { return nil }
        throw UnpackError(.fileSystem, "cannot inspect /\(placement.path): \(errnoText(errno))")
    }

    /// Removes whatever is at `placement` (a whole directory tree included), never following
    /// a link: a link is removed, not what it points to.
    ///
    /// - Returns: whether anything was there.
    @discardableResult
    func remove(_ placement: Placement) throws(UnpackError) -> Bool {
        guard let info = try status(placement) else { return false }
        forgetResolutions()
        if info.st_mode & S_IFMT == S_IFDIR {
            try removeTree(placement.parent.fd, placement.name, at: placement.path)
        } else if unlinkat(placement.parent.fd, placement.name, 0) != 0 {
            throw UnpackError(.fileSystem, "cannot remove /\(placement.path): \(errnoText(errno))")
        }
        return true
    }

    /// Removes a directory and everything below it through descriptors, so a link inside it
    /// (even one to `/` or to the host) is unlinked, never descended into
    /// (compare BuildKit's CVE-2024-23652, a removal that followed links).
    func removeTree(_ parentFD: Int32, _ name: String, at path: RootPath) throws(UnpackError) {
        if !privileged {
            // Our own directory with a mode like 0555 cannot be emptied until we may write it.
            _ = fchmodat(parentFD, name, 0o700, 0)
        }
        let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw UnpackError(.fileSystem, "cannot open /\(path) to remove it: \(errnoText(errno))")
        }
        let children = try listDirectory(fd, at: path)
        defer { close(fd) }
        for child in children {
            if child.isDirectory {
                try removeTree(fd, child.name, at: path.appending(child.name))
            } else if unlinkat(fd, child.name, 0) != 0 {
                throw UnpackError(.fileSystem, "cannot remove /\(path.appending(child.name)): \(errnoText(errno))")
            }
        }
        if unlinkat(parentFD, name, AT_REMOVEDIR) != 0 {
            throw UnpackError(.fileSystem, "cannot remove directory /\(path): \(errnoText(errno))")
        }
    }

    /// The names in a directory (without `.` and `..`) and whether each is a directory (not
    /// following links). Reads all names first, so callers can then change the directory.
    /// `fd` stays open and owned by the caller.
    func listDirectory(_ fd: Int32, at path: RootPath) throws(UnpackError) -> [(name: String, isDirectory: Bool)] {
        let copy = dup(fd)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw UnpackError(.fileSystem, "cannot list /\(path): \(errnoText(errno))")
        }
        defer { closedir(stream) }
        // A dup shares the read position with the original; start from the top.
        rewinddir(stream)
        var children: [(name: String, isDirectory: Bool)] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name == "." || name == ".." { continue }
            var isDirectory: Bool
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): isDirectory = true
            case Int32(DT_UNKNOWN):
                var info = stat()
                isDirectory = fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFDIR
            default: isDirectory = false
            }
            children.append((name, isDirectory))
        }
        return children
    }
}

/// `strerror` with the symbolic name, for messages: "No such file or directory (ENOENT)".
func errnoText(_ code: Int32) -> String {
    let names: [Int32: String] = [
        ENOENT: "ENOENT", EEXIST: "EEXIST", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", ELOOP: "ELOOP",
        EACCES: "EACCES", EPERM: "EPERM", ENOSPC: "ENOSPC", ENAMETOOLONG: "ENAMETOOLONG",
        EINVAL: "EINVAL", EXDEV: "EXDEV", EMLINK: "EMLINK", ENOTEMPTY: "ENOTEMPTY", EMFILE: "EMFILE",
        EROFS: "EROFS", EDQUOT: "EDQUOT",
    ]
    let text = String(cString: strerror(code))
    return names[code].map { "\(text) (\($0))" } ?? "\(text) (errno \(code))"
}
