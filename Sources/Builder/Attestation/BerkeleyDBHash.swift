import Errors

/// The key/value items of a Berkeley DB hash database file: rpm's `Packages` before rpm 4.16
/// (RHEL and UBI 8, CentOS 7, Amazon Linux 2). Read page by page, as far as rpm needs: hash
/// pages, items on the page or on a chain of overflow pages; no duplicates, no encryption, no
/// page checksums (rpm uses none of them).
///
/// The layout follows Berkeley DB's `db_page.h`: every page starts with a 26-byte header (LSN,
/// page number, previous and next page, entry count, free-space offset, level, type); page 0
/// is the metadata page (magic 0x061561 at offset 12, in the byte order of the machine that
/// wrote the file). Like ``SQLiteFile``, the file is hostile until read: offsets are checked
/// against their page, and an overflow chain visits each page at most once.
struct BerkeleyDBHashFile {
    static let hashMagic: UInt32 = 0x061561
    static let headerSize = 26

    enum PageType: UInt8 {
        case hashUnsorted = 2
        case overflow = 7
        case hashMetadata = 8
        case hash = 13
    }

    enum ItemType: UInt8 {
        case keyData = 1
        case duplicate = 2
        case offPage = 3
        case offPageDuplicate = 4
    }

    let pageSize: Int
    let lastPage: Int
    let bigEndian: Bool
    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 512 else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "not a Berkeley DB database (too short)")
        }
        if Self.littleEndian32(bytes, 12) == Self.hashMagic {
            bigEndian = false
        } else if SQLiteFile.bigEndian32(bytes, 12) == Self.hashMagic {
            bigEndian = true
        } else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "not a Berkeley DB hash database")
        }
        self.bytes = bytes
        let pageSize = Int(bigEndian ? SQLiteFile.bigEndian32(bytes, 20) : Self.littleEndian32(bytes, 20))
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw PackageDatabaseError(
                .malformedBerkeleyDB, "page size \(pageSize) is not a power of two from 512 to 65536")
        }
        self.pageSize = pageSize
        guard bytes[24] == 0 else { throw PackageDatabaseError(.malformedBerkeleyDB, "the database is encrypted") }
        guard bytes[25] == PageType.hashMetadata.rawValue else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "not a hash database (metadata type \(bytes[25]))")
        }
        guard bytes[26] & 0x01 == 0 else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "pages with checksums are not read")
        }
        // The file may end before its last page's end only if it is truncated.
        let last = Int(bigEndian ? SQLiteFile.bigEndian32(bytes, 32) : Self.littleEndian32(bytes, 32))
        guard (last + 1) * pageSize <= bytes.count else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "the file ends before its page \(last)")
        }
        lastPage = last
    }

    /// Every key/value pair on the hash pages, in page order.
    func items() throws -> [(key: [UInt8], value: [UInt8])] {
        var items: [(key: [UInt8], value: [UInt8])] = []
        guard lastPage >= 1 else { return items }
        for number in 1...lastPage {
            let page = number * pageSize
            guard let type = PageType(rawValue: bytes[page + 25]), type == .hash || type == .hashUnsorted else {
                continue
            }
            let entries = Int(number16(page + 20))
            let index = page + Self.headerSize
            guard index + 2 * entries <= page + pageSize else {
                throw PackageDatabaseError(.malformedBerkeleyDB, "page \(number) has more entries than room")
            }
            let offsets = (0..<entries).map { Int(number16(index + 2 * $0)) }
            // Items are packed from the page's end down: item i ends where item i - 1 starts.
            func item(_ at: Int) throws -> [UInt8] {
                let start = offsets[at]
                let end = at == 0 ? pageSize : offsets[at - 1]
                guard start >= Self.headerSize + 2 * entries, start < end, end <= pageSize else {
                    throw PackageDatabaseError(.malformedBerkeleyDB, "item \(at) of page \(number) is outside its page")
                }
                let type = ItemType(rawValue: bytes[page + start])
                switch type {
                case .keyData:
                    return Array(bytes[(page + start + 1)..<(page + end)])
                case .offPage:
                    guard end - start >= 12 else {
                        throw PackageDatabaseError(.malformedBerkeleyDB, "item \(at) of page \(number) is too short")
                    }
                    return try overflow(from: Int(number32(page + start + 4)), length: Int(number32(page + start + 8)))
                case .duplicate, .offPageDuplicate, nil:
                    throw PackageDatabaseError(
                        .malformedBerkeleyDB,
                        "item \(at) of page \(number) has type \(bytes[page + start]), which is not read")
                }
            }
            for pair in stride(from: 0, to: entries - 1, by: 2) {
                items.append((try item(pair), try item(pair + 1)))
            }
        }
        return items
    }

    /// An item of `length` bytes kept on a chain of overflow pages from `first`.
    private func overflow(from first: Int, length: Int) throws -> [UInt8] {
        guard length <= bytes.count else {
            throw PackageDatabaseError(.malformedBerkeleyDB, "an item is larger than the file")
        }
        var value: [UInt8] = []
        value.reserveCapacity(length)
        var visited = Set<Int>()
        var number = first
        while value.count < length {
            guard number >= 1, number <= lastPage, visited.insert(number).inserted else {
                throw PackageDatabaseError(
                    .malformedBerkeleyDB, "an overflow chain reaches page \(number) (outside the file, or a loop)")
            }
            let page = number * pageSize
            guard bytes[page + 25] == PageType.overflow.rawValue else {
                throw PackageDatabaseError(.malformedBerkeleyDB, "page \(number) is not an overflow page")
            }
            // On an overflow page the free-space offset holds the length of the data on it.
            let used = Int(number16(page + 22))
            guard Self.headerSize + used <= pageSize, value.count + used <= length else {
                throw PackageDatabaseError(.malformedBerkeleyDB, "overflow page \(number) holds more than its item")
            }
            value.append(contentsOf: bytes[(page + Self.headerSize)..<(page + Self.headerSize + used)])
            number = Int(number32(page + 16))
            if number == 0 && value.count < length {
                throw PackageDatabaseError(.malformedBerkeleyDB, "an overflow chain ends early")
            }
        }
        return value
    }

    private func number32(_ offset: Int) -> UInt32 {
        bigEndian ? SQLiteFile.bigEndian32(bytes, offset) : Self.littleEndian32(bytes, offset)
    }

    private func number16(_ offset: Int) -> UInt16 {
        guard offset >= 0, offset + 2 <= bytes.count else { return 0 }
        return bigEndian
            ? UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            : UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset])
    }

    static func littleEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        SQLiteFile.bigEndian32(bytes, offset).byteSwapped
    }
}
