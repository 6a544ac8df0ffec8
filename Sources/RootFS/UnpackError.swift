import Errors
import OCI

/// Why a layer could not be applied to a root filesystem.
///
/// Every refusal of a hostile or malformed entry is one of these, naming the entry as the
/// layer spells it and saying why it was refused. When one is thrown the root is left part
/// way through a layer: the caller must discard it (Concourse discards the output of a
/// failed `get`).
public struct UnpackError: SlipwayError, Equatable {
    /// The class of failure (callers branch on it, the message is for people).
    public typealias Kind = ErrorKind<UnpackError>

    /// The kind of problem.
    public var kind: Kind
    /// The entry's name as written in the layer, when the problem concerns one entry.
    public var entry: String?
    /// What went wrong and, where it helps, what to do.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, entry: String? = nil, _ message: String) {
        self.kind = kind
        self.entry = entry
        self.message = message
    }

    /// One line: the entry (quoted, control characters escaped) and the message.
    public var description: String {
        guard let entry else { return message }
        return "layer entry \(quoted(entry)): \(message)"
    }
}

extension ErrorKind where Owner == UnpackError {
    /// An entry name or hardlink target that could reach outside the root or replace the
    /// root itself: a `..` component, a NUL byte, an empty name for a non-directory.
    public static var unsafePath: Self { Self("unsafe path") }
    /// A name longer than the system allows (4096 bytes, or 255 for one component).
    public static var nameTooLong: Self { Self("name too long") }
    /// More than 40 symbolic links met while resolving one path inside the root.
    public static var symlinkLoop: Self { Self("symlink loop") }
    /// A component of the path that must be a directory is a file, device or socket.
    public static var notADirectory: Self { Self("not a directory") }
    /// A hardlink whose target is missing from the root, or is a directory.
    public static var badHardlink: Self { Self("bad hardlink") }
    /// A symbolic link with an empty or over-long target.
    public static var badSymlink: Self { Self("bad symlink") }
    /// A whiteout that names nothing, `.` or `..`.
    public static var badWhiteout: Self { Self("bad whiteout") }
    /// The uncompressed layer's digest differs from the config's `diff_ids` entry.
    public static var diffIDMismatch: Self { Self("diff ID mismatch") }
    /// The layer stream could not be read: truncated, corrupt compression or tar.
    public static var unreadableLayer: Self { Self("unreadable layer") }
    /// A file system call failed for a reason that is not the layer's fault (disk full,
    /// permissions of the destination).
    public static var fileSystem: Self { Self("file system") }
}
