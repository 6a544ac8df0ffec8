import Foundation

/// One entry's metadata in a tar archive, with every extension already applied: PAX records
/// (`path`, `linkpath`, `size`, `mtime`, ids and names), GNU long names and links, the ustar
/// name prefix and base-256 numbers.
///
/// Names and link targets are kept exactly as stored, `..` and leading `/` included: this
/// type describes an archive, and deciding what is safe to create on disk is the unpacker's
/// job, not the parser's.
///
/// See [POSIX pax, ustar Interchange Format](https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06)
/// and [GNU tar, Basic Tar Format](https://www.gnu.org/software/tar/manual/html_node/Standard.html).
public struct TarHeader: Sendable, Equatable {
    /// What an entry is, from its type flag.
    public enum Kind: Sendable, Equatable {
        /// A regular file (`0`, NUL, or `7` contiguous file), the only kind with a body.
        case regular
        /// A hard link (`1`) to ``TarHeader/linkName``, an earlier entry of the archive.
        case hardLink
        /// A symbolic link (`2`) whose target is ``TarHeader/linkName``.
        case symbolicLink
        /// A character device (`3`).
        case characterDevice
        /// A block device (`4`).
        case blockDevice
        /// A directory (`5`, or an old-style regular entry whose name ends in `/`).
        case directory
        /// A named pipe (`6`).
        case fifo
        /// Any other type flag (GNU `D` dump directories, `S` sparse files, `V` volume
        /// labels, vendor extensions); its body, if any, is readable as for a regular file.
        case other(UInt8)

        /// The ustar type flag byte for this kind.
        public var typeFlag: UInt8 {
            switch self {
            case .regular: UInt8(ascii: "0")
            case .hardLink: UInt8(ascii: "1")
            case .symbolicLink: UInt8(ascii: "2")
            case .characterDevice: UInt8(ascii: "3")
            case .blockDevice: UInt8(ascii: "4")
            case .directory: UInt8(ascii: "5")
            case .fifo: UInt8(ascii: "6")
            case .other(let flag): flag
            }
        }

        /// The kind a type flag stands for.
        public init(typeFlag: UInt8) {
            switch typeFlag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): self = .regular
            case UInt8(ascii: "1"): self = .hardLink
            case UInt8(ascii: "2"): self = .symbolicLink
            case UInt8(ascii: "3"): self = .characterDevice
            case UInt8(ascii: "4"): self = .blockDevice
            case UInt8(ascii: "5"): self = .directory
            case UInt8(ascii: "6"): self = .fifo
            default: self = .other(typeFlag)
            }
        }

        /// Kinds whose entries never have a body, whatever their size field says.
        ///
        /// The reader follows Go's `archive/tar` (what containerd, Docker and BuildKit unpack
        /// layers with) so an archive has the same entries here as in the runtime that will run
        /// it; a reader that honoured such a size would see different entries, which is how
        /// tools that disagree on an archive get smuggled past.
        var isHeaderOnly: Bool {
            switch self {
            case .hardLink, .symbolicLink, .characterDevice, .blockDevice, .directory, .fifo: true
            case .regular, .other: false
            }
        }
    }

    /// The entry's path as stored: PAX `path`, GNU long name or ustar prefix + name applied,
    /// not normalised. Bytes that are not valid UTF-8 are decoded as ISO 8859-1, so distinct
    /// stored names stay distinct.
    public var name: String
    /// What the entry is.
    public var kind: Kind
    /// Permission bits with setuid, setgid and sticky (`0o7777`); file type bits that some
    /// writers include are dropped, since ``kind`` says the type.
    public var mode: UInt32
    /// Owner user id.
    public var uid: Int
    /// Owner group id.
    public var gid: Int
    /// Owner user name (informational; ids decide ownership).
    public var userName: String
    /// Owner group name.
    public var groupName: String
    /// Length of the body in bytes (PAX `size` applied); 0 for kinds that have no body.
    public var size: Int64
    /// Modification time, to the nanosecond when a PAX `mtime` record gives a fraction.
    public var modificationTime: Date
    /// Target of a hard or symbolic link (PAX `linkpath` or GNU long link applied).
    public var linkName: String
    /// Device major number (character and block devices).
    public var deviceMajor: UInt32
    /// Device minor number (character and block devices).
    public var deviceMinor: UInt32
    /// Every PAX record in effect for this entry: global (`g`) records overridden by the
    /// entry's own (`x`) ones, including those already applied to the fields above and
    /// extended attributes (`SCHILY.xattr.*`). The writer derives `path`, `linkpath`, `size`,
    /// `mtime`, `uid`, `gid`, `uname` and `gname` from the fields, and writes every other
    /// record as given.
    public var paxRecords: [String: String]
    /// Extended attributes from `SCHILY.xattr.<name>` records, as raw bytes: values such as
    /// `security.capability` are binary, which ``paxRecords`` (text) cannot hold exactly. The
    /// writer emits one `SCHILY.xattr.` record per attribute, overriding a record of the same
    /// key in ``paxRecords``.
    public var extendedAttributes: [String: [UInt8]]

    /// Creates a header; the remaining fields start empty: names "", device numbers 0, no
    /// PAX records and no extended attributes.
    public init(
        name: String,
        kind: Kind,
        mode: UInt32 = 0o644,
        size: Int64 = 0,
        modificationTime: Date = Date(timeIntervalSince1970: 0),
        linkName: String = "",
        uid: Int = 0,
        gid: Int = 0
    ) {
        self.name = name
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        userName = ""
        groupName = ""
        self.size = size
        self.modificationTime = modificationTime
        self.linkName = linkName
        deviceMajor = 0
        deviceMinor = 0
        paxRecords = [:]
        extendedAttributes = [:]
    }
}
