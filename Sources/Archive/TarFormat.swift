import Foundation

// The byte layout of a tar header block and the codecs for its fields, shared by the reader
// and the writer. Layouts: POSIX ustar (https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06),
// GNU (https://www.gnu.org/software/tar/manual/html_node/Standard.html) and star, whose
// prefix field is shorter.

/// Tar's unit of storage: headers are one block, bodies are padded to whole blocks.
let tarBlockSize = 512

/// Byte ranges of the fields in a header block.
enum TarField {
    static let name = 0..<100
    static let mode = 100..<108
    static let uid = 108..<116
    static let gid = 116..<124
    static let size = 124..<136
    static let mtime = 136..<148
    static let checksum = 148..<156
    static let typeFlag = 156
    static let linkName = 157..<257
    static let magic = 257..<263
    static let version = 263..<265
    static let userName = 265..<297
    static let groupName = 297..<329
    static let deviceMajor = 329..<337
    static let deviceMinor = 337..<345
    static let prefix = 345..<500
    /// star keeps atime and ctime in the tail of the ustar prefix and marks it with `tar\0`.
    static let starPrefix = 345..<476
    static let starTrailer = 508..<512
    /// Old GNU sparse headers: a flag saying more sparse-map blocks follow the header.
    static let gnuIsExtended = 482
    /// In each GNU sparse extension block, the same flag for the next one.
    static let gnuExtensionIsExtended = 504
}

/// The header layouts a reader distinguishes by the magic field.
enum TarFormat {
    /// POSIX ustar and pax (`ustar\0`, version `00`): has a name prefix.
    case ustar
    /// Old GNU (`ustar ` then ` \0`): no prefix; that space holds times and a sparse map.
    case gnu
    /// Unix v7: no magic, no user or group names, no prefix.
    case v7

    init(_ block: UnsafeRawBufferPointer) {
        let magic = Array(block[TarField.magic])
        let version = Array(block[TarField.version])
        if magic == Array("ustar\0".utf8) {
            self = .ustar
        } else if magic == Array("ustar ".utf8) && version == [0x20, 0] {
            self = .gnu
        } else {
            self = .v7
        }
    }
}

/// Typeflags of entries that carry metadata for the entry after them.
enum TarMetaType {
    static let paxLocal = UInt8(ascii: "x")
    /// Solaris tar's pre-standard spelling of `x`.
    static let paxLocalSolaris = UInt8(ascii: "X")
    static let paxGlobal = UInt8(ascii: "g")
    static let gnuLongName = UInt8(ascii: "L")
    static let gnuLongLink = UInt8(ascii: "K")
    static let gnuSparse = UInt8(ascii: "S")
}

/// The PAX keyword prefix for extended attributes, as written by star, GNU tar, bsdtar and Go.
let xattrPrefix = "SCHILY.xattr."

// MARK: - Reading fields

/// The bytes of a NUL-terminated (or full-width) text field.
func fieldBytes(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> ArraySlice<UInt8> {
    let bytes = Array(block[range])[...]
    if let end = bytes.firstIndex(of: 0) { return bytes[..<end] }
    return bytes
}

/// All bytes of a numeric field: base-256 numbers contain NULs, so no cut at the first one.
func numericField(_ block: UnsafeRawBufferPointer, _ range: Range<Int>) -> ArraySlice<UInt8> {
    Array(block[range])[...]
}

/// Decodes stored name bytes: as UTF-8 when they are valid UTF-8 (every modern writer, and
/// what PAX requires), else as ISO 8859-1, which maps each byte to one character so that
/// distinct byte strings never decode to the same name.
func decodeText<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    let text = String(decoding: bytes, as: UTF8.self)
    if text.utf8.elementsEqual(bytes) { return text }
    return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
}

/// Which field failed to parse, for error messages.
struct FieldContext {
    let field: String
    let headerOffset: Int64
}

/// Parses a numeric header field: octal digits (padded with spaces or NULs on either side, as
/// writers differ), or GNU base-256 when the top bit of the first byte is set (two's
/// complement, so it can be negative: times before 1970).
func parseNumeric(_ bytes: ArraySlice<UInt8>, _ context: FieldContext) throws -> Int64 {
    if let first = bytes.first, first & 0x80 != 0 {
        // Base-256, ported from Go's archive/tar parseBinary: the first byte's 0x40 bit is the
        // sign; the 0x80 marker bit is not part of the number.
        let invert: UInt8 = first & 0x40 != 0 ? 0xff : 0
        var value: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            var digit = byte ^ invert
            if index == 0 { digit &= 0x7f }
            guard value >> 56 == 0 else { throw outOfRange(bytes, context) }
            value = value << 8 | UInt64(digit)
        }
        guard value >> 63 == 0 else { throw outOfRange(bytes, context) }
        return invert == 0xff ? ~Int64(value) : Int64(value)
    }
    var digits = bytes
    while let first = digits.first, first == 0x20 || first == 0 { digits.removeFirst() }
    while let last = digits.last, last == 0x20 || last == 0 { digits.removeLast() }
    var value: Int64 = 0
    for byte in digits {
        guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) else {
            throw ArchiveError(
                .invalidField,
                "invalid octal field \(context.field) \(quotedBytes(bytes)) in the header at offset \(context.headerOffset)"
            )
        }
        let (shifted, overflow) = value.multipliedReportingOverflow(by: 8)
        guard !overflow else { throw outOfRange(bytes, context) }
        value = shifted | Int64(byte - UInt8(ascii: "0"))
    }
    return value
}

private func outOfRange(_ bytes: ArraySlice<UInt8>, _ context: FieldContext) -> ArchiveError {
    let hex = bytes.map { String($0, radix: 16) }.joined(separator: " ")
    return ArchiveError(
        .invalidField,
        "numeric field \(context.field) [\(hex)] in the header at offset \(context.headerOffset) is out of range")
}

/// The header checksum: the sum of all 512 bytes with the checksum field counted as spaces.
/// Returns it computed over unsigned bytes (the standard) and over signed bytes (what some
/// historic writers computed), since readers accept either.
func headerChecksums(_ block: UnsafeRawBufferPointer) -> (unsigned: Int64, signed: Int64) {
    var unsigned: Int64 = 0
    var signed: Int64 = 0
    for index in 0..<tarBlockSize {
        let byte = TarField.checksum.contains(index) ? 0x20 : block[index]
        unsigned += Int64(byte)
        signed += Int64(Int8(bitPattern: byte))
    }
    return (unsigned, signed)
}

// MARK: - PAX records

/// Parses the body of a PAX extended header: records `"%d %s=%s\n"`, where the decimal
/// length counts the whole record, itself included. Values are raw bytes, because
/// `SCHILY.xattr.*` values are binary (file capabilities, ACLs).
///
/// See [POSIX pax, pax Extended Header](https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_03).
func parsePAXRecords(_ body: [UInt8], headerOffset: Int64) throws -> [(key: String, value: [UInt8])] {
    var records: [(key: String, value: [UInt8])] = []
    var position = 0
    func bad(_ why: String) -> ArchiveError {
        ArchiveError(
            .badPAXRecord, "bad PAX record at byte \(position) of the extended header at offset \(headerOffset): \(why)"
        )
    }
    while position < body.count {
        // Some writers pad the body with NULs after the last record.
        if body[position...].allSatisfy({ $0 == 0 }) { break }
        guard let space = body[position...].firstIndex(of: 0x20) else { throw bad("no length") }
        let lengthBytes = body[position..<space]
        guard !lengthBytes.isEmpty, lengthBytes.count <= 18,
            lengthBytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let length = Int(String(decoding: lengthBytes, as: UTF8.self))
        else { throw bad("length \(quotedBytes(lengthBytes)) is not a decimal number") }
        guard length > space - position + 1, length <= body.count - position else {
            throw bad("length \(length) does not fit the \(body.count - position) bytes left")
        }
        let end = position + length
        guard body[end - 1] == 0x0a else { throw bad("record of length \(length) does not end in a newline") }
        let record = body[(space + 1)..<(end - 1)]
        guard let equals = record.firstIndex(of: UInt8(ascii: "=")), equals > record.startIndex else {
            throw bad("record \(quotedBytes(record)) is not key=value")
        }
        let keyBytes = record[..<equals]
        guard !keyBytes.contains(0) else { throw bad("key \(quotedBytes(keyBytes)) contains a NUL byte") }
        records.append((decodeText(keyBytes), Array(record[(equals + 1)...])))
        position = end
    }
    return records
}

/// Encodes one PAX record, working out the self-inclusive length.
func encodePAXRecord(key: String, value: [UInt8]) -> [UInt8] {
    let rest = key.utf8.count + value.count + 3  // " ", "=", "\n"
    var length = rest + 1
    while String(length).utf8.count + rest != length {
        length = String(length).utf8.count + rest
    }
    var record = Array("\(length) \(key)=".utf8)
    record += value
    record.append(0x0a)
    return record
}

/// Parses a PAX decimal integer record value (`size`, `uid`, `gid`): digits only.
func parsePAXInteger(_ key: String, _ value: [UInt8], headerOffset: Int64) throws -> Int64 {
    guard !value.isEmpty, value.count <= 19,
        value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
        let number = Int64(String(decoding: value, as: UTF8.self))
    else {
        throw ArchiveError(
            .badPAXRecord,
            "bad PAX record \(key)=\(quotedBytes(value)) in the extended header at offset \(headerOffset): not a non-negative decimal integer"
        )
    }
    return number
}

/// Parses a PAX time (`mtime`): `[-]seconds[.fraction]`, the sign applying to the whole value.
func parsePAXTime(_ key: String, _ value: [UInt8], headerOffset: Int64) throws -> Date {
    func bad() -> ArchiveError {
        ArchiveError(
            .badPAXRecord,
            "bad PAX record \(key)=\(quotedBytes(value)) in the extended header at offset \(headerOffset): not a time in seconds like 1700000000.5"
        )
    }
    var bytes = value[...]
    let negative = bytes.first == UInt8(ascii: "-")
    if negative { bytes = bytes.dropFirst() }
    let isDigit = { (byte: UInt8) in (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    let whole = bytes.prefix(while: isDigit)
    var fraction = bytes[whole.endIndex...]
    if !fraction.isEmpty {
        guard fraction.first == UInt8(ascii: "."), fraction.count > 1 else { throw bad() }
        fraction = fraction.dropFirst()
        guard fraction.allSatisfy(isDigit) else { throw bad() }
    }
    guard !whole.isEmpty, whole.count <= 18, let seconds = Int64(String(decoding: whole, as: UTF8.self)) else {
        throw bad()
    }
    // Nanoseconds are all a file system keeps; further digits cannot matter.
    let nanoDigits = Array(fraction.prefix(9)) + Array(repeating: UInt8(ascii: "0"), count: max(0, 9 - fraction.count))
    let nanoseconds = Int64(String(decoding: nanoDigits, as: UTF8.self)) ?? 0
    let magnitude = Double(seconds) + Double(nanoseconds) / 1e9
    return Date(timeIntervalSince1970: negative ? -magnitude : magnitude)
}

/// Splits a time into whole seconds (rounded down) and nanoseconds, rounding to the nearest
/// nanosecond; nil when it is not finite or beyond what 64-bit seconds can hold.
func splitTime(_ date: Date) -> (seconds: Int64, nanoseconds: Int64)? {
    let interval = date.timeIntervalSince1970
    guard interval.isFinite, abs(interval) < 9.0e18 else { return nil }
    var seconds = interval.rounded(.down)
    var nanoseconds = ((interval - seconds) * 1e9).rounded()
    if nanoseconds >= 1e9 {
        seconds += 1
        nanoseconds -= 1e9
    }
    return (Int64(seconds), Int64(nanoseconds))
}

/// Formats a time as PAX does: `[-]seconds[.fraction]` with trailing zeros dropped.
func formatPAXTime(seconds: Int64, nanoseconds: Int64) -> String {
    // The split rounds down, so -1.5 s is (-2, 500000000); PAX writes the magnitude.
    var negative = seconds < 0
    var whole = seconds.magnitude
    var fraction = nanoseconds
    if negative && fraction > 0 {
        whole -= 1
        fraction = 1_000_000_000 - fraction
    }
    if whole == 0 && fraction == 0 { negative = false }
    var text = (negative ? "-" : "") + String(whole)
    if fraction > 0 {
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        text += "." + digits
    }
    return text
}

// MARK: - Writing fields

/// Whether `value` fits an octal field of `width` bytes (digits plus a terminating NUL).
func fitsOctal(_ value: Int64, width: Int) -> Bool {
    value >= 0 && value < Int64(1) << (3 * (width - 1))
}

/// Writes `value` into `field` as zero-padded octal and a NUL when it fits, else as GNU
/// base-256 (read by GNU tar, bsdtar, Go and Python) when it fits that, else as zeros. The
/// writer adds a PAX record whenever the octal form does not fit, so strictly POSIX readers
/// still get the value.
func writeNumeric(_ value: Int64, into block: inout [UInt8], _ field: Range<Int>) {
    let width = field.count
    if fitsOctal(value, width: width) {
        var digits = Array(String(value, radix: 8).utf8)
        digits = Array(repeating: UInt8(ascii: "0"), count: width - 1 - digits.count) + digits
        block.replaceSubrange(field, with: digits + [0])
        return
    }
    // The first byte is the base-256 marker (0x80, or 0xff when negative), so the number
    // must fit in the other bytes as two's complement.
    let payloadBits = 8 * (width - 1)
    guard payloadBits >= 64 || (value >= -(Int64(1) << (payloadBits - 1)) && value < Int64(1) << (payloadBits - 1))
    else {
        block.replaceSubrange(field, with: [UInt8](repeating: 0, count: width))
        return
    }
    var bytes = [UInt8](repeating: value < 0 ? 0xff : 0, count: width)
    var remaining = value
    for index in stride(from: width - 1, through: max(1, width - 8), by: -1) {
        bytes[index] = UInt8(truncatingIfNeeded: remaining)
        remaining >>= 8
    }
    bytes[0] = value < 0 ? 0xff : 0x80
    block.replaceSubrange(field, with: bytes)
}

/// Copies as much of `bytes` as fits into a text field (the rest stays NUL).
func writeText(_ bytes: some Collection<UInt8>, into block: inout [UInt8], _ field: Range<Int>) {
    for (index, byte) in zip(field, bytes) { block[index] = byte }
}

/// The first bytes of `text`'s UTF-8 that fit `limit`, cut at a character boundary.
func truncatedUTF8(_ text: String, limit: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    for scalar in text.unicodeScalars {
        let encoded = Array(String(scalar).utf8)
        if bytes.count + encoded.count > limit { break }
        bytes += encoded
    }
    return bytes
}

/// Writes the checksum of a block whose other fields are final.
func writeChecksum(into block: inout [UInt8]) {
    let sum = block.withUnsafeBytes { headerChecksums($0).unsigned }
    var digits = Array(String(sum, radix: 8).utf8)
    digits = Array(repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits
    block.replaceSubrange(TarField.checksum, with: digits + [0, 0x20])
}
