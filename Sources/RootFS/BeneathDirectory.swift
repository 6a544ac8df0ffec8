import Errors
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Paths beneath a directory that cannot lead out of it: `out`'s file params, which name
/// files a task wrote into the build directory.
///
/// Resolved by the walk ``RootDirectory`` resolves a layer's paths with: one component at a
/// time from a descriptor on the directory, each directory opened with `O_NOFOLLOW` relative
/// to the previous one, never by a string path. The difference is what happens at the edge: the
/// unpacker contains a link as a chroot would, while here a path is refused when it is
/// absolute, when `..` climbs above the directory, or when a symbolic link on the way is
/// absolute or climbs above it. A link that stays beneath (`image -> build/image`) is
/// followed. The last component is opened with `O_NOFOLLOW` too, so a link swapped in after
/// the check is not followed either.
public struct BeneathDirectory: Sendable {
    /// Why a path was refused; a phrase to follow the path in an error.
    public struct Refusal: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<BeneathDirectory.Refusal>
        public var kind: Kind { .outsideRoot }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    public let root: URL

    public init(_ root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The path `relative` leads to, with every link resolved (so it holds no link), or nil
    /// when nothing is there.
    public func resolve(_ relative: String) throws(Refusal) -> URL? {
        guard let (_, names, last) = try walk(relative) else { return nil }
        return names.reduce(root) { $0.appendingPathComponent($1) }.appendingPathComponent(last ?? "")
            .standardizedFileURL
    }

    /// The content of the regular file `relative` names (at most `limit` bytes), or nil when
    /// nothing is there.
    public func read(_ relative: String, limit: Int = 1 << 20) throws(Refusal) -> Data? {
        guard let (parent, _, last) = try walk(relative) else { return nil }
        guard let last else { throw Refusal("is the build directory itself, not a file") }
        let fd = openat(parent.fd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP { throw Refusal("is a symbolic link that was replaced while it was read") }
            if errno == ENOENT { return nil }
            throw Refusal("cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw Refusal("is not a regular file")
        }
        let data: Data
        do {
            data = try FileHandle(fileDescriptor: fd, closeOnDealloc: false).read(upToCount: limit + 1) ?? Data()
        } catch {
            throw Refusal("cannot be read: \(error.localizedDescription)")
        }
        guard data.count <= limit else { throw Refusal("is larger than \(limit) bytes") }
        return data
    }

    /// Resolves every component but the last as a directory beneath the root, one
    /// ``DirectoryHandle/step(_:)`` each, the walk ``RootDirectory`` shares; refusing what
    /// leads out is this type's own. Returns the last component's parent, the names leading
    /// to it, and the last name (nil: the root).
    private func walk(_ relative: String) throws(Refusal) -> (DirectoryHandle, [String], String?)? {
        guard !relative.hasPrefix("/") else {
            throw Refusal("is an absolute path; give a path under the build directory")
        }
        let rootFD = open(root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else {
            throw Refusal("cannot be resolved: the build directory \(root.path) cannot be opened")
        }
        var stack: [(name: String, handle: DirectoryHandle)] = []
        let rootHandle = DirectoryHandle(fd: rootFD)
        var queue = Array(Self.components(relative).reversed())
        var hops = 0
        while let name = queue.popLast() {
            let current = stack.last?.handle ?? rootHandle
            if name == ".." {
                guard !stack.isEmpty else { throw Refusal("leads out of the build directory (..)") }
                stack.removeLast()
                continue
            }
            let step = current.step(name)
            switch step {
            case .failed(let error):
                if error == ENOENT || error == ENOTDIR { return nil }
                throw Refusal("cannot be resolved: \(String(cString: strerror(error)))")
            case .unreadableLink(let error):
                throw Refusal("cannot be resolved: \(String(cString: strerror(error)))")
            case .link(let text):
                hops += 1
                guard hops <= RootDirectory.maximumSymlinkHops else { throw Refusal("has too many symbolic links") }
                guard !text.hasPrefix("/") else {
                    throw Refusal(
                        "goes through the symbolic link \(Self.display(stack.map(\.name) + [name])) to an absolute path, out of the build directory"
                    )
                }
                queue += Self.components(text).reversed()
                continue
            case .directory, .unopenableDirectory, .other:
                break
            }
            if queue.isEmpty {
                return (current, stack.map(\.name), name)
            }
            switch step {
            case .directory(let next): stack.append((name, next))
            case .unopenableDirectory(let error):
                throw Refusal("cannot be resolved: \(String(cString: strerror(error)))")
            default: return nil
            }
        }
        guard let top = stack.last else { return (rootHandle, [], nil) }
        return (stack.count >= 2 ? stack[stack.count - 2].handle : rootHandle, stack.dropLast().map(\.name), top.name)
    }

    private static func components(_ path: String) -> [String] {
        path.split(separator: "/").map(String.init).filter { $0 != "." }
    }

    private static func display(_ names: [String]) -> String {
        "\"" + names.joined(separator: "/") + "\""
    }
}

extension ErrorKind where Owner == BeneathDirectory.Refusal {
    /// A path would leave the directory it must stay beneath.
    public static var outsideRoot: Self { Self("outside root") }
}
