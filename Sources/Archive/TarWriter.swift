import Foundation
import OCI

/// Writes a tar archive entry by entry to a sink, streaming each body through a fixed buffer.
///
/// Headers are POSIX ustar whenever every field fits; otherwise a PAX extended header (`x`)
/// goes first and carries the values that do not (long or non-ASCII names and link targets,
/// sizes of 8 GiB and more, times before 1970, after 2242 or with a fraction of a second, ids
/// of 2^21 and more), while the ustar fields hold the nearest fallback. Output is
/// deterministic: PAX records are sorted, and the PAX header's own name and times derive from
/// the entry, so equal entries give equal bytes.
///
/// See [POSIX pax, pax Interchange Format](https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_01).
public final class TarWriter {
    /// PAX keywords computed from the header's fields, never copied from `paxRecords`.
    static let derivedKeys: Set<String> = [
        "path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname", "SCHILY.devmajor", "SCHILY.devminor",
    ]

    private let sink: any ByteSink
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
    private var finished = false
    /// Set when a write failed part way, leaving a partial entry in the sink: nothing written
    /// after it could be read back, so the writer refuses to go on.
    private var failure: String?

    /// Writes the archive to `sink` (wrap it in a ``GzipCompressor`` for a `.tar.gz`).
    public init(_ sink: any ByteSink) {
        self.sink = sink
    }

    deinit {
        buffer.deallocate()
    }

    /// Appends one entry: its header (with a PAX header first when needed), then exactly
    /// `header.size` bytes from `body`, then zero padding to a whole block.
    ///
    /// - Parameter body: The entry's bytes; may be nil when `header.size` is 0.
    /// - Throws: ``ArchiveError``: `.unencodable` for a header no tar reader could read back
    ///   (an empty name, a NUL in a name, a negative size or id, a size on a kind that has no
    ///   body) with nothing written; `.bodyLength` when `body` yields fewer or more bytes than
    ///   `header.size`. After a failure part way through an entry the writer is unusable.
    public func append(_ header: TarHeader, body: (any ByteSource)?) throws {
        try checkUsable()
        let blocks = try Self.encodeHeader(header)
        if header.size > 0 && body == nil {
            throw ArchiveError(
                .bodyLength, "no body given for \(quoted(header.name)), whose header says \(header.size) bytes")
        }
        do {
            try blocks.withUnsafeBytes { try sink.write($0) }
            try writeBody(header, body)
        } catch {
            failure = "\(error)"
            throw error
        }
    }

    /// Writes the end-of-archive marker (two zero blocks), then finishes the sink.
    public func finish() throws {
        try checkUsable()
        finished = true
        let zeros = [UInt8](repeating: 0, count: 2 * tarBlockSize)
        try zeros.withUnsafeBytes { try sink.write($0) }
        try sink.finish()
    }

    private func checkUsable() throws {
        if let failure { throw ArchiveError(.outOfOrder, "the tar writer already failed: \(failure)") }
        if finished { throw ArchiveError(.outOfOrder, "the tar writer is already finished") }
    }

    private func writeBody(_ header: TarHeader, _ body: (any ByteSource)?) throws {
        var remaining = header.size
        while remaining > 0, let body {
            let request = Int(min(Int64(buffer.count), remaining))
            let n = try body.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<request]))
            guard n > 0 else {
                throw ArchiveError(
                    .bodyLength,
                    "the body of \(quoted(header.name)) ended after \(header.size - remaining) of the \(header.size) bytes its header says"
                )
            }
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            remaining -= Int64(n)
        }
        if let body, try body.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<1])) > 0 {
            throw ArchiveError(
                .bodyLength,
                "the body of \(quoted(header.name)) is longer than the \(header.size) bytes its header says")
        }
        let padding = Int((Int64(tarBlockSize) - header.size % Int64(tarBlockSize)) % Int64(tarBlockSize))
        if padding > 0 {
            let zeros = [UInt8](repeating: 0, count: padding)
            try zeros.withUnsafeBytes { try sink.write($0) }
        }
    }

    // MARK: - Encoding

    /// The header blocks for `header`: a PAX `x` header and its records when needed, then the
    /// ustar header. Validates everything first, so it throws before anything is written.
    ///
    /// Kept whole: it walks the ustar header field by field, each field either fitting or
    /// also going into the PAX records, so the block and the records are read side by side.
    static func encodeHeader(_ header: TarHeader) throws -> [UInt8] {
        try validate(header)
        var pax: [String: [UInt8]] = [:]
        for (key, value) in header.paxRecords where !derivedKeys.contains(key) {
            pax[key] = Array(value.utf8)
        }
        for (name, value) in header.extendedAttributes {
            pax[xattrPrefix + name] = value
        }

        var block = [UInt8](repeating: 0, count: tarBlockSize)
        let name = Array(header.name.utf8)
        if isASCII(name), name.count <= TarField.name.count {
            writeText(name, into: &block, TarField.name)
        } else if isASCII(name), let split = ustarSplit(name) {
            writeText(name[(split + 1)...], into: &block, TarField.name)
            writeText(name[..<split], into: &block, TarField.prefix)
        } else {
            pax["path"] = name
            writeText(truncatedUTF8(header.name, limit: TarField.name.count), into: &block, TarField.name)
        }

        // POSIX requires a NUL after the user and group names, not after the link target.
        for (key, text, field, limit) in [
            ("linkpath", header.linkName, TarField.linkName, TarField.linkName.count),
            ("uname", header.userName, TarField.userName, TarField.userName.count - 1),
            ("gname", header.groupName, TarField.groupName, TarField.groupName.count - 1),
        ] {
            let bytes = Array(text.utf8)
            if !isASCII(bytes) || bytes.count > limit { pax[key] = bytes }
            writeText(truncatedUTF8(text, limit: limit), into: &block, field)
        }

        writeNumeric(Int64(header.mode & 0o7777), into: &block, TarField.mode)
        let size = header.kind.isHeaderOnly ? 0 : header.size
        for (key, value, field) in [
            ("uid", Int64(header.uid), TarField.uid),
            ("gid", Int64(header.gid), TarField.gid),
            ("size", size, TarField.size),
            ("SCHILY.devmajor", Int64(header.deviceMajor), TarField.deviceMajor),
            ("SCHILY.devminor", Int64(header.deviceMinor), TarField.deviceMinor),
        ] {
            if !fitsOctal(value, width: field.count) { pax[key] = Array(String(value).utf8) }
            writeNumeric(value, into: &block, field)
        }

        guard let time = splitTime(header.modificationTime) else {
            throw ArchiveError(
                .unencodable,
                "modification time \(header.modificationTime.timeIntervalSince1970) of \(quoted(header.name)) cannot be stored"
            )
        }
        if time.nanoseconds != 0 || !fitsOctal(time.seconds, width: TarField.mtime.count) {
            pax["mtime"] = Array(formatPAXTime(seconds: time.seconds, nanoseconds: time.nanoseconds).utf8)
        }
        writeNumeric(time.seconds, into: &block, TarField.mtime)

        block[TarField.typeFlag] = header.kind.typeFlag
        writeText(Array("ustar\0".utf8), into: &block, TarField.magic)
        writeText(Array("00".utf8), into: &block, TarField.version)
        writeChecksum(into: &block)

        guard !pax.isEmpty else { return block }
        return paxHeader(for: header, records: pax, seconds: time.seconds) + block
    }

    /// An `x` header and its padded body holding `records`, sorted by keyword.
    private static func paxHeader(for header: TarHeader, records: [String: [UInt8]], seconds: Int64) -> [UInt8] {
        var body: [UInt8] = []
        for key in records.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            body += encodePAXRecord(key: key, value: records[key]!)
        }
        // Named like GNU tar's default, `PaxHeaders/<base name>` in printable ASCII, so a
        // reader that does not know PAX extracts a harmless, recognisable file.
        let base = header.name.split(separator: "/").last.map(String.init) ?? "entry"
        let printable = base.utf8.map { (0x20..<0x7f).contains($0) ? $0 : UInt8(ascii: "_") }
        let name = Array(("PaxHeaders/" + String(decoding: printable, as: UTF8.self)).utf8.prefix(TarField.name.count))

        var block = [UInt8](repeating: 0, count: tarBlockSize)
        writeText(name, into: &block, TarField.name)
        writeNumeric(0o644, into: &block, TarField.mode)
        writeNumeric(0, into: &block, TarField.uid)
        writeNumeric(0, into: &block, TarField.gid)
        writeNumeric(Int64(body.count), into: &block, TarField.size)
        writeNumeric(min(max(seconds, 0), 0o77777777777), into: &block, TarField.mtime)
        block[TarField.typeFlag] = TarMetaType.paxLocal
        writeText(Array("ustar\0".utf8), into: &block, TarField.magic)
        writeText(Array("00".utf8), into: &block, TarField.version)
        writeChecksum(into: &block)

        let padding = (tarBlockSize - body.count % tarBlockSize) % tarBlockSize
        return block + body + [UInt8](repeating: 0, count: padding)
    }

    /// Refuses headers that cannot be written so as to read back the same.
    private static func validate(_ header: TarHeader) throws {
        let name = quoted(header.name)
        func refuse(_ why: String) -> ArchiveError {
            ArchiveError(.unencodable, "cannot write tar entry \(name): \(why)")
        }
        guard !header.name.isEmpty else { throw refuse("the name is empty") }
        for (field, text) in [
            ("name", header.name), ("link target", header.linkName), ("user name", header.userName),
            ("group name", header.groupName),
        ]
        where text.utf8.contains(0) {
            throw refuse("the \(field) contains a NUL byte")
        }
        guard header.size >= 0 else { throw refuse("negative size \(header.size)") }
        if header.kind.isHeaderOnly && header.size != 0 {
            throw refuse("size \(header.size) given for a \(header.kind), which has no body")
        }
        guard header.uid >= 0 else { throw refuse("negative uid \(header.uid)") }
        guard header.gid >= 0 else { throw refuse("negative gid \(header.gid)") }
        if case .other(let flag) = header.kind,
            [
                TarMetaType.paxLocal, TarMetaType.paxLocalSolaris, TarMetaType.paxGlobal, TarMetaType.gnuLongName,
                TarMetaType.gnuLongLink,
            ].contains(flag)
        {
            throw refuse("type flag '\(String(UnicodeScalar(flag)))' is reserved for metadata the writer generates")
        }
        for key in header.paxRecords.keys
        where key.isEmpty || key.utf8.contains(UInt8(ascii: "=")) || key.utf8.contains(0) {
            throw refuse("PAX keyword \(quoted(key)) is empty or contains '=' or NUL")
        }
        for key in header.extendedAttributes.keys
        where key.isEmpty || key.utf8.contains(UInt8(ascii: "=")) || key.utf8.contains(0) {
            throw refuse("extended attribute name \(quoted(key)) is empty or contains '=' or NUL")
        }
    }

    /// Where to split an over-long ASCII name into a ustar prefix (up to 155 bytes) and name
    /// (1 to 100 bytes): the index of the separating slash, or nil when no slash works.
    private static func ustarSplit(_ name: [UInt8]) -> Int? {
        guard name.count <= TarField.prefix.count + 1 + TarField.name.count else { return nil }
        for index in name.indices where name[index] == UInt8(ascii: "/") {
            let rest = name.count - index - 1
            if index <= TarField.prefix.count && rest >= 1 && rest <= TarField.name.count && index > 0 {
                return index
            }
        }
        return nil
    }

    private static func isASCII(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 < 0x80 }
    }
}
