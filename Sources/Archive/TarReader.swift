import Foundation
import OCI

/// Reads a tar archive entry by entry from a stream, never holding more than one header and a
/// small buffer: bodies are read, or skipped, straight from the source.
///
/// Understands ustar (with the name prefix), PAX extended headers (`x` for the next entry, `g`
/// for all later ones), GNU long names and links (`L`, `K`), GNU base-256 numbers, old GNU and
/// v7 headers, and star's shorter prefix. Metadata entries are consumed and applied, not
/// returned.
///
/// The input is untrusted: every field is validated, every failure is an ``ArchiveError`` of
/// one line with the byte offset of the header at fault, metadata bodies are capped at 1 MiB,
/// and after the first error the reader refuses to go on (it cannot know where the next header
/// is).
///
/// ```swift
/// let reader = TarReader(try decompressing(FileSource(path: layer)).0)
/// while let header = try reader.next() {
///     if header.kind == .regular { try copy(from: reader.body, to: sink) }
/// }
/// ```
public final class TarReader {
    /// The most bytes one PAX header or GNU long name/link may have, and the most that all
    /// global PAX records together may have: far beyond any real path (Linux allows 4 KiB),
    /// small enough that a hostile archive cannot make the reader hold much.
    public static let metadataLimit = 1 << 20

    private let source: any ByteSource
    /// Bytes consumed from the source so far.
    private var offset: Int64 = 0
    private var current: TarHeader?
    /// Where the current entry's header starts, for error messages.
    private var currentHeaderOffset: Int64 = 0
    private var bodyRemaining: Int64 = 0
    private var paddingRemaining: Int64 = 0
    /// Bumped by every ``next()``, so an entry's ``body`` can tell it is stale.
    private var generation = 0
    private var globalRecords: [String: [UInt8]] = [:]
    private var ended = false
    /// The first error, after which the reader refuses to go on.
    private var failure: String?
    private let block = UnsafeMutableRawBufferPointer.allocate(byteCount: tarBlockSize, alignment: 16)
    private let skipBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)

    /// Reads the archive from `source`, which should already be decompressed (see
    /// ``decompressing(_:)``).
    public init(_ source: any ByteSource) {
        self.source = source
    }

    deinit {
        block.deallocate()
        skipBuffer.deallocate()
    }

    /// The next entry's header, or nil at the end of the archive (two zero blocks, or the end
    /// of the stream exactly at a block boundary after the last entry).
    ///
    /// Skips whatever of the previous entry's body was not read.
    /// - Throws: ``ArchiveError`` for a truncated or corrupt archive; the reader is unusable
    ///   afterwards.
    public func next() throws -> TarHeader? {
        try checkUsable()
        do {
            return try readNext()
        } catch {
            failure = "\(error)"
            throw error
        }
    }

    /// Reads the current entry's body into `buffer`; returns 0 at its end (and always for
    /// kinds without a body).
    /// - Throws: ``ArchiveError`` (`.truncated`) when the archive ends inside the body.
    public func readBody(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try checkUsable()
        guard let current, bodyRemaining > 0, buffer.count > 0 else { return 0 }
        let request = Int(min(Int64(buffer.count), bodyRemaining))
        let n: Int
        do {
            n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<request]))
            guard n > 0 else {
                throw ArchiveError.truncated(
                    "the body of \(quoted(current.name)) (header at offset \(currentHeaderOffset)) ends after \(current.size - bodyRemaining) of \(current.size) bytes"
                )
            }
        } catch {
            failure = "\(error)"
            throw error
        }
        offset += Int64(n)
        bodyRemaining -= Int64(n)
        return n
    }

    private func checkUsable() throws {
        if let failure { throw ArchiveError(.outOfOrder, "the tar reader already failed: \(failure)") }
    }

    /// The current entry's body as a source, valid until the next call to ``next()``.
    public var body: any ByteSource { EntryBody(reader: self, generation: generation) }

    /// An entry's body, tied to the entry it was made for.
    private final class EntryBody: ByteSource {
        let reader: TarReader
        let generation: Int

        init(reader: TarReader, generation: Int) {
            self.reader = reader
            self.generation = generation
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            guard generation == reader.generation else {
                throw ArchiveError(.outOfOrder, "a tar entry body was read after the reader moved on to the next entry")
            }
            return try reader.readBody(into: buffer)
        }
    }

    // MARK: - Reading

    /// What the metadata headers (`x`, `g`, `L`, `K`) read so far say about the entry that
    /// follows them.
    private struct PendingMetadata {
        var localRecords: [String: [UInt8]]?
        var localRecordsOffset: Int64 = 0
        var longName: [UInt8]?
        var longLink: [UInt8]?
        /// The first header that still waits for its entry (a global `g` header waits for none).
        var firstOffset: Int64?
    }

    private func readNext() throws -> TarHeader? {
        generation += 1
        if ended { return nil }
        try skipRest()
        current = nil

        var pending = PendingMetadata()
        while true {
            let headerOffset = offset
            if try !readBlock(at: headerOffset) || isEndMarker(at: headerOffset) {
                if let first = pending.firstOffset { throw metadataWithoutEntry(first) }
                ended = true
                return nil
            }
            try verifyChecksum(at: headerOffset)

            let typeFlag = block[TarField.typeFlag]
            switch typeFlag {
            case TarMetaType.paxLocal, TarMetaType.paxLocalSolaris, TarMetaType.paxGlobal,
                TarMetaType.gnuLongName, TarMetaType.gnuLongLink:
                try readMetadata(typeFlag, headerOffset: headerOffset, into: &pending)
            default:
                return try startEntry(typeFlag, headerOffset: headerOffset, metadata: pending)
            }
        }
    }

    /// Whether the zero block just read at `headerOffset` (if it is one) ends the archive.
    ///
    /// The end-of-archive marker is two zero blocks; a lone one at the very end is accepted
    /// as GNU tar does. A zero block followed by a header is refused, as Go's archive/tar
    /// does, because readers disagree on what it means.
    private func isEndMarker(at headerOffset: Int64) throws -> Bool {
        guard isZeroBlock(block) else { return false }
        let secondOffset = offset
        if try readBlock(at: secondOffset), !isZeroBlock(block) {
            throw ArchiveError(
                .malformed,
                "a zero block at offset \(headerOffset) is followed by a header at offset \(secondOffset): the archive is corrupt or two archives were concatenated"
            )
        }
        return true
    }

    /// Reads the body of the metadata header in `block` and records what it says: global
    /// records at once, the rest in `pending` for the next entry.
    private func readMetadata(_ typeFlag: UInt8, headerOffset: Int64, into pending: inout PendingMetadata) throws {
        let size = try parseNumeric(
            numericField(UnsafeRawBufferPointer(block), TarField.size),
            FieldContext(field: "size", headerOffset: headerOffset))
        let body = try readMetadataBody(size: size, typeFlag: typeFlag, headerOffset: headerOffset)
        // A global header applies to all later entries; it need not precede one.
        if typeFlag != TarMetaType.paxGlobal {
            pending.firstOffset = pending.firstOffset ?? headerOffset
        }
        switch typeFlag {
        case TarMetaType.paxGlobal:
            try mergeGlobal(parsePAXRecords(body, headerOffset: headerOffset), headerOffset: headerOffset)
        case TarMetaType.gnuLongName:
            pending.longName = Array(body.prefix(while: { $0 != 0 }))
        case TarMetaType.gnuLongLink:
            pending.longLink = Array(body.prefix(while: { $0 != 0 }))
        default:
            // Consecutive `x` headers: the last one wins, as in Go's archive/tar.
            var records: [String: [UInt8]] = [:]
            for (key, value) in try parsePAXRecords(body, headerOffset: headerOffset) {
                records[key] = value
            }
            pending.localRecords = records
            pending.localRecordsOffset = headerOffset
        }
    }

    /// Parses the entry header in `block`, applies `metadata` to it, and makes it the current
    /// entry, its body next in the stream.
    private func startEntry(_ typeFlag: UInt8, headerOffset: Int64, metadata: PendingMetadata) throws -> TarHeader {
        let format = TarFormat(UnsafeRawBufferPointer(block))
        var header = try parseHeader(format: format, headerOffset: headerOffset)
        if let longName = metadata.longName { header.name = decodeText(longName) }
        if let longLink = metadata.longLink { header.linkName = decodeText(longLink) }
        try applyPAX(
            local: metadata.localRecords ?? [:], to: &header,
            headerOffset: metadata.localRecords == nil ? headerOffset : metadata.localRecordsOffset)
        if header.kind.isHeaderOnly { header.size = 0 }
        if typeFlag == TarMetaType.gnuSparse, format == .gnu, block[TarField.gnuIsExtended] != 0 {
            try skipSparseExtensions()
        }
        current = header
        currentHeaderOffset = headerOffset
        bodyRemaining = header.size
        paddingRemaining = (Int64(tarBlockSize) - header.size % Int64(tarBlockSize)) % Int64(tarBlockSize)
        return header
    }

    private func metadataWithoutEntry(_ headerOffset: Int64) -> ArchiveError {
        .truncated("the extended header at offset \(headerOffset) is not followed by an entry")
    }

    /// Reads one block into `block`. Returns false at the end of the stream exactly at a
    /// block boundary; throws when the stream ends inside the block.
    private func readBlock(at headerOffset: Int64) throws -> Bool {
        let n = try source.readFully(into: block)
        offset += Int64(n)
        if n == 0 { return false }
        guard n == tarBlockSize else {
            var message = "the header at offset \(headerOffset) has only \(n) of \(tarBlockSize) bytes"
            if headerOffset == 0, let hint = Self.formatHint(UnsafeRawBufferPointer(rebasing: block[..<n])) {
                message += "; " + hint
            }
            throw ArchiveError.truncated(message)
        }
        return true
    }

    /// For a stream that fails as tar at its first block: what it looks like instead, when
    /// its magic number says.
    private static func formatHint(_ start: UnsafeRawBufferPointer) -> String? {
        if let foreign = Compression.describeForeign(start.prefix(6)) {
            return "the data looks \(foreign)-compressed, which layers never are"
        }
        let detected = Compression.detect(UnsafeRawBufferPointer(rebasing: start.prefix(4)))
        if detected != .none {
            return "the data looks \(detected)-compressed: read it through decompressing(_:)"
        }
        return nil
    }

    private func isZeroBlock(_ block: UnsafeMutableRawBufferPointer) -> Bool {
        block.allSatisfy { $0 == 0 }
    }

    private func verifyChecksum(at headerOffset: Int64) throws {
        let raw = UnsafeRawBufferPointer(block)
        let field = numericField(raw, TarField.checksum)
        let computed = headerChecksums(raw)
        let stored: Int64
        do {
            stored = try parseNumeric(field, FieldContext(field: "checksum", headerOffset: headerOffset))
        } catch {
            stored = -1
        }
        guard stored != computed.unsigned, stored != computed.signed else { return }
        var message =
            "bad checksum at offset \(headerOffset): the header stores \(quotedBytes(Array(raw[TarField.checksum]))), its bytes sum to \(String(computed.unsigned, radix: 8)) (octal)"
        if headerOffset == 0, let hint = Self.formatHint(raw) { message += "; " + hint }
        throw ArchiveError(.badChecksum, message)
    }

    private func readMetadataBody(size: Int64, typeFlag: UInt8, headerOffset: Int64) throws -> [UInt8] {
        let kind = String(UnicodeScalar(typeFlag))
        guard size >= 0 else {
            throw ArchiveError(.invalidField, "negative size \(size) in the '\(kind)' header at offset \(headerOffset)")
        }
        guard size <= Int64(Self.metadataLimit) else {
            throw ArchiveError(
                .limitExceeded,
                "the '\(kind)' header at offset \(headerOffset) has a \(size)-byte body; the limit is \(Self.metadataLimit) bytes"
            )
        }
        let padded = (Int(size) + tarBlockSize - 1) / tarBlockSize * tarBlockSize
        var body = [UInt8](repeating: 0, count: padded)
        let n = try body.withUnsafeMutableBytes { try source.readFully(into: $0) }
        offset += Int64(n)
        guard n == padded else {
            throw ArchiveError.truncated(
                "the '\(kind)' header at offset \(headerOffset) ends after \(n) of its \(size) bytes")
        }
        body.removeLast(padded - Int(size))
        return body
    }

    private func mergeGlobal(_ records: [(key: String, value: [UInt8])], headerOffset: Int64) throws {
        for (key, value) in records {
            // An empty value deletes the keyword (POSIX pax, "Extended Header Keywords").
            if value.isEmpty { globalRecords[key] = nil } else { globalRecords[key] = value }
        }
        let total = globalRecords.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }
        guard total <= Self.metadataLimit else {
            throw ArchiveError(
                .limitExceeded,
                "global PAX records reach \(total) bytes at the header at offset \(headerOffset); the limit is \(Self.metadataLimit) bytes"
            )
        }
    }

    /// GNU's old sparse format continues the sparse map in extra blocks after the header,
    /// outside the entry's size; they carry no data for us.
    private func skipSparseExtensions() throws {
        var extended = true
        while extended {
            let blockOffset = offset
            guard try readBlock(at: blockOffset) else {
                throw ArchiveError.truncated("the archive ends inside the GNU sparse map at offset \(blockOffset)")
            }
            extended = block[TarField.gnuExtensionIsExtended] != 0
        }
    }

    /// Parses the fields of the ustar, GNU or v7 header in `block`.
    private func parseHeader(format: TarFormat, headerOffset: Int64) throws -> TarHeader {
        let raw = UnsafeRawBufferPointer(block)
        func number(_ field: String, _ range: Range<Int>) throws -> Int64 {
            try parseNumeric(numericField(raw, range), FieldContext(field: field, headerOffset: headerOffset))
        }
        var nameBytes = Array(fieldBytes(raw, TarField.name))
        if format == .ustar {
            let isStar = Array(raw[TarField.starTrailer]) == Array("tar\0".utf8)
            let prefix = fieldBytes(raw, isStar ? TarField.starPrefix : TarField.prefix)
            if !prefix.isEmpty { nameBytes = Array(prefix) + [UInt8(ascii: "/")] + nameBytes }
        }
        let typeFlag = raw[TarField.typeFlag]
        var kind = TarHeader.Kind(typeFlag: typeFlag)
        // Before type flags existed, a directory was a regular entry whose name ends in '/'.
        // Only the NUL flag gets this reading, as in Go's archive/tar.
        if typeFlag == 0, nameBytes.last == UInt8(ascii: "/") { kind = .directory }

        let size = try number("size", TarField.size)
        guard size >= 0 else {
            throw ArchiveError(.invalidField, "negative size \(size) in the header at offset \(headerOffset)")
        }
        let mode = try number("mode", TarField.mode)
        var header = TarHeader(
            name: decodeText(nameBytes),
            kind: kind,
            mode: UInt32(truncatingIfNeeded: mode) & 0o7777,
            size: size,
            modificationTime: Date(timeIntervalSince1970: Double(try number("mtime", TarField.mtime))),
            linkName: decodeText(fieldBytes(raw, TarField.linkName)),
            uid: Int(try number("uid", TarField.uid)),
            gid: Int(try number("gid", TarField.gid))
        )
        if format != .v7 {
            header.userName = decodeText(fieldBytes(raw, TarField.userName))
            header.groupName = decodeText(fieldBytes(raw, TarField.groupName))
            // Other kinds leave these fields unused, and some writers fill them with junk.
            if kind == .characterDevice || kind == .blockDevice {
                header.deviceMajor = try deviceNumber(
                    number("devmajor", TarField.deviceMajor), "devmajor", headerOffset)
                header.deviceMinor = try deviceNumber(
                    number("devminor", TarField.deviceMinor), "devminor", headerOffset)
            }
        }
        return header
    }

    private func deviceNumber(_ value: Int64, _ field: String, _ headerOffset: Int64) throws -> UInt32 {
        guard let number = UInt32(exactly: value) else {
            throw ArchiveError(
                .invalidField, "\(field) \(value) in the header at offset \(headerOffset) is not a device number")
        }
        return number
    }

    /// Applies the global records overridden by `local` to `header`'s fields, and stores them
    /// all in `paxRecords`.
    private func applyPAX(local: [String: [UInt8]], to header: inout TarHeader, headerOffset: Int64) throws {
        guard !local.isEmpty || !globalRecords.isEmpty else { return }
        var records = globalRecords
        for (key, value) in local {
            // An empty value in an `x` header cancels a global record for this entry only.
            if value.isEmpty { records[key] = nil } else { records[key] = value }
        }
        for (key, value) in records {
            header.paxRecords[key] = decodeText(value)
            switch key {
            case "path":
                header.name = try pathValue(key, value, headerOffset)
            case "linkpath":
                header.linkName = try pathValue(key, value, headerOffset)
            case "uname":
                header.userName = try pathValue(key, value, headerOffset)
            case "gname":
                header.groupName = try pathValue(key, value, headerOffset)
            case "size":
                header.size = try parsePAXInteger(key, value, headerOffset: headerOffset)
            case "uid":
                header.uid = Int(try parsePAXInteger(key, value, headerOffset: headerOffset))
            case "gid":
                header.gid = Int(try parsePAXInteger(key, value, headerOffset: headerOffset))
            case "mtime":
                header.modificationTime = try parsePAXTime(key, value, headerOffset: headerOffset)
            case "SCHILY.devmajor", "SCHILY.devminor":
                let number = try parsePAXInteger(key, value, headerOffset: headerOffset)
                guard let device = UInt32(exactly: number) else {
                    throw ArchiveError(
                        .badPAXRecord,
                        "bad PAX record \(key)=\(quotedBytes(value)) in the extended header at offset \(headerOffset): not a device number"
                    )
                }
                if key == "SCHILY.devmajor" { header.deviceMajor = device } else { header.deviceMinor = device }
            case _ where key.hasPrefix(xattrPrefix) && key.utf8.count > xattrPrefix.utf8.count:
                header.extendedAttributes[String(key.dropFirst(xattrPrefix.count))] = value
            default:
                break
            }
        }
    }

    /// A PAX text value that ends up as a path or a name. A NUL is refused: C would cut the
    /// path there, so `..\0x` would pass a check on the Swift string as one harmless component
    /// and then open `..`.
    private func pathValue(_ key: String, _ value: [UInt8], _ headerOffset: Int64) throws -> String {
        guard !value.contains(0) else {
            throw ArchiveError(
                .badPAXRecord,
                "bad PAX record \(key)=\(quotedBytes(value)) in the extended header at offset \(headerOffset): it contains a NUL byte"
            )
        }
        return decodeText(value)
    }

    /// Discards the unread rest of the current entry's body and its padding.
    private func skipRest() throws {
        guard let current else { return }
        for phase in 0..<2 {
            while (phase == 0 ? bodyRemaining : paddingRemaining) > 0 {
                let remaining = phase == 0 ? bodyRemaining : paddingRemaining
                let request = Int(min(Int64(skipBuffer.count), remaining))
                let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: skipBuffer[..<request]))
                guard n > 0 else {
                    if phase == 0 {
                        throw ArchiveError.truncated(
                            "the body of \(quoted(current.name)) (header at offset \(currentHeaderOffset)) ends after \(current.size - bodyRemaining) of \(current.size) bytes"
                        )
                    }
                    throw ArchiveError.truncated(
                        "the archive ends inside the padding after \(quoted(current.name)) (header at offset \(currentHeaderOffset))"
                    )
                }
                offset += Int64(n)
                if phase == 0 { bodyRemaining -= Int64(n) } else { paddingRemaining -= Int64(n) }
            }
        }
    }
}
