import OCI
/// Why a layer could not be applied to a root filesystem.
///
/// Every refusal of a hostile or malformed entry is one of these, naming the entry as the
/// layer spells it and saying why it was refused. When one is thrown the root is left part
/// way through a layer: the caller must discard it (Concourse discards the output of a
/// failed `get`).
public struct UnpackError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem it is, for callers and tests that branch on it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A short name such as `unsafe path`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The same as ``rawValue``.
        public var description: String { rawValue }

        /// An entry name or hardlink target that could reach outside the root or replace the
        /// root itself: a `..` component, a NUL byte, an empty name for a non-directory.
        public static let unsafePath = Code("unsafe path")
        /// A name longer than the system allows (4096 bytes, or 255 for one component).
        public static let nameTooLong = Code("name too long")
        /// More than 40 symbolic links met while resolving one path inside the root.
        public static let symlinkLoop = Code("symlink loop")
        /// A component of the path that must be a directory is a file, device or socket.
        public static let notADirectory = Code("not a directory")
        /// A hardlink whose target is missing from the root, or is a directory.
        public static let badHardlink = Code("bad hardlink")
        /// A symbolic link with an empty or over-long target.
        public static let badSymlink = Code("bad symlink")
        /// A whiteout that names nothing, `.` or `..`.
        public static let badWhiteout = Code("bad whiteout")
        /// The uncompressed layer's digest differs from the config's `diff_ids` entry.
        public static let diffIDMismatch = Code("diff ID mismatch")
        /// The layer stream could not be read: truncated, corrupt compression or tar.
        public static let unreadableLayer = Code("unreadable layer")
        /// A file system call failed for a reason that is not the layer's fault (disk full,
        /// permissions of the destination).
        public static let fileSystem = Code("file system")
    }

    /// The kind of problem.
    public var code: Code
    /// The entry's name as written in the layer, when the problem concerns one entry.
    public var entry: String?
    /// What went wrong and, where it helps, what to do.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, entry: String? = nil, _ message: String) {
        self.code = code
        self.entry = entry
        self.message = message
    }

    /// One line: the entry (quoted, control characters escaped) and the message.
    public var description: String {
        guard let entry else { return message }
        return "layer entry \(quoted(entry)): \(message)"
    }
}

