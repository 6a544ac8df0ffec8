import Errors

/// The rows of a table in an SQLite 3 database file, read straight from its pages (and from
/// its write-ahead log, when one is given): as much of the file format
/// (https://www.sqlite.org/fileformat2.html) as reading rpm's `rpmdb.sqlite` needs, and no
/// more: table b-trees, overflow pages, records, UTF-8 text, committed WAL frames.
///
/// The file comes from an image, so it is hostile until read: every offset is checked against
/// its page, every page is visited at most once (a loop in the tree or an overflow chain is an
/// error, not a hang), and a payload is never larger than the file that holds it.
struct SQLiteFile {
    enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case real(Double)
        case text(String)
        case blob([UInt8])
    }

    let pageSize: Int
    /// A page's size less the bytes reserved at its end (by an extension, e.g. for a checksum).
    let usableSize: Int
    let pageCount: Int
    private let database: [UInt8]
    private let log: [UInt8]
    /// Page number → offset in `log` of its newest committed copy.
    private let logPages: [Int: Int]

    /// - Parameter wal: the `-wal` file beside it, if any; frames after its last commit, or
    ///   from an older generation of the log (salts or checksums that do not match), are not read.
    init(_ database: [UInt8], wal: [UInt8]? = nil) throws {
        guard database.count >= 100, database.starts(with: Array("SQLite format 3\u{0}".utf8)) else {
            throw PackageDatabaseError(.malformedSQLite, "not an SQLite 3 database")
        }
        let size = Int(database[16]) << 8 | Int(database[17])
        let pageSize = size == 1 ? 65536 : size
        self.pageSize = pageSize
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw PackageDatabaseError(.malformedSQLite, "page size \(size) is not a power of two from 512 to 65536")
        }
        usableSize = pageSize - Int(database[20])
        guard usableSize >= 480 else {
            throw PackageDatabaseError(.malformedSQLite, "usable page size \(usableSize) is under 480")
        }
        let encoding = Self.bigEndian32(database, 56)
        guard encoding <= 1 else {
            throw PackageDatabaseError(.malformedSQLite, "text encoding \(encoding) is UTF-16 (only UTF-8 is read)")
        }
        self.database = database

        var pages = database.count / pageSize
        let (committed, committedPages) = wal.map { Self.committedFrames($0, pageSize: pageSize) } ?? ([:], nil)
        if let committedPages {
            pages = committedPages
        } else if Self.bigEndian32(database, 92) == Self.bigEndian32(database, 24), Self.bigEndian32(database, 28) > 0 {
            // The header's page count is valid when written by the same change as its version.
            pages = min(pages, Int(Self.bigEndian32(database, 28)))
        }
        log = committed.isEmpty ? [] : (wal ?? [])
        logPages = committed
        pageCount = pages
    }

    /// The rows of the table `name`, in rowid order, each its columns' values (an `INTEGER
    /// PRIMARY KEY` column reads as null: SQLite keeps it as the rowid, which is the first element).
    func rows(ofTable name: String) throws -> [(rowid: Int64, values: [Value])] {
        let schema = try rows(rootPage: 1)
        // sqlite_schema: type, name, tbl_name, rootpage, sql.
        guard
            let entry = schema.first(where: {
                $0.values.count >= 4 && $0.values[0] == .text("table") && $0.values[1] == .text(name)
            }),
            case .integer(let root) = entry.values[3], root >= 1, root <= pageCount
        else {
            throw PackageDatabaseError(.malformedSQLite, "no table \(name)")
        }
        return try rows(rootPage: Int(root))
    }

    /// The rows of the table b-tree whose root is `rootPage`.
    func rows(rootPage: Int) throws -> [(rowid: Int64, values: [Value])] {
        var rows: [(rowid: Int64, values: [Value])] = []
        var visited = Set<Int>()
        var pending = [rootPage]  // pages to read, the next one last
        while let number = pending.popLast() {
            let page = try self.page(number, visited: &visited)
            let header = number == 1 ? 100 : 0  // page 1 starts with the file header
            guard header + 8 <= page.count else {
                throw PackageDatabaseError(.malformedSQLite, "page \(number) is too short")
            }
            let kind = page[header]
            let cells = Int(page[header + 3]) << 8 | Int(page[header + 4])
            let pointers = header + (kind == 0x05 ? 12 : 8)
            guard pointers + 2 * cells <= page.count else {
                throw PackageDatabaseError(.malformedSQLite, "page \(number) has more cells than room")
            }
            let offsets = (0..<cells).map { Int(page[pointers + 2 * $0]) << 8 | Int(page[pointers + 2 * $0 + 1]) }
            switch kind {
            case 0x05:  // interior table page: each cell a left child and a key, then the right-most child
                var children: [Int] = []
                for offset in offsets {
                    guard offset + 4 <= page.count else {
                        throw PackageDatabaseError(.malformedSQLite, "a cell of page \(number) is past its end")
                    }
                    children.append(Int(Self.bigEndian32(page, offset)))
                }
                children.append(Int(Self.bigEndian32(page, header + 8)))
                pending.append(contentsOf: children.reversed())
            case 0x0D:  // leaf table page: each cell a payload size, a rowid and the payload
                for offset in offsets {
                    var position = offset
                    let size = try Self.varint(page, &position)
                    let rowid = try Self.varint(page, &position)
                    let payload = try self.payload(
                        of: page, number: number, at: position, size: size, visited: &visited)
                    rows.append((Int64(bitPattern: rowid), try Self.record(payload)))
                }
            default:
                throw PackageDatabaseError(.malformedSQLite, "page \(number) is not a table b-tree page (type \(kind))")
            }
        }
        return rows
    }

    /// Page `number` (1-based), newest committed copy, marked as visited.
    private func page(_ number: Int, visited: inout Set<Int>) throws -> [UInt8] {
        guard number >= 1, number <= pageCount else {
            throw PackageDatabaseError(.malformedSQLite, "page \(number) is outside the database's \(pageCount) pages")
        }
        guard visited.insert(number).inserted else {
            throw PackageDatabaseError(.malformedSQLite, "page \(number) is reached twice (a loop)")
        }
        if let offset = logPages[number] { return Array(log[offset..<offset + usableSize]) }
        let start = (number - 1) * pageSize
        guard start + pageSize <= database.count else {
            throw PackageDatabaseError(.malformedSQLite, "page \(number) is past the end of the file")
        }
        return Array(database[start..<start + usableSize])
    }

    /// A cell's payload of `size` bytes: the part on `page` at `start`, then its overflow pages.
    private func payload(of page: [UInt8], number: Int, at start: Int, size: UInt64, visited: inout Set<Int>) throws
        -> [UInt8]
    {
        guard size <= UInt64(pageCount) * UInt64(usableSize) else {
            throw PackageDatabaseError(.malformedSQLite, "a payload of page \(number) is larger than the file")
        }
        let total = Int(size)
        // How much of a payload stays on a leaf table page (the file format's rule).
        let maxLocal = usableSize - 35
        let minLocal = (usableSize - 12) * 32 / 255 - 23
        var local = total
        if total > maxLocal {
            let spill = minLocal + (total - minLocal) % (usableSize - 4)
            local = spill <= maxLocal ? spill : minLocal
        }
        let localEnd = start + local
        guard localEnd <= page.count, local == total || localEnd + 4 <= page.count else {
            throw PackageDatabaseError(.malformedSQLite, "a cell of page \(number) is past its end")
        }
        var bytes = Array(page[start..<localEnd])
        bytes.reserveCapacity(total)
        var next = local == total ? 0 : Int(Self.bigEndian32(page, localEnd))
        while bytes.count < total {
            guard next != 0 else {
                throw PackageDatabaseError(.malformedSQLite, "an overflow chain of page \(number) ends early")
            }
            let overflow = try self.page(next, visited: &visited)
            let take = min(total - bytes.count, usableSize - 4)
            bytes.append(contentsOf: overflow[4..<(4 + take)])
            next = Int(Self.bigEndian32(overflow, 0))
        }
        return bytes
    }

    /// A record: a header of serial types, then each column's bytes.
    static func record(_ payload: [UInt8]) throws -> [Value] {
        var position = 0
        let headerSize = try varint(payload, &position)
        guard headerSize <= UInt64(payload.count) else {
            throw PackageDatabaseError(.malformedSQLite, "a record's header is longer than the record")
        }
        var types: [UInt64] = []
        while position < Int(headerSize) { types.append(try varint(payload, &position)) }
        var body = Int(headerSize)
        var values: [Value] = []
        for type in types {
            let length: Int
            switch type {
            case 0, 8, 9: length = 0
            case 1, 2, 3, 4: length = Int(type)
            case 5: length = 6
            case 6, 7: length = 8
            case 10, 11: throw PackageDatabaseError(.malformedSQLite, "a record uses reserved serial type \(type)")
            default:
                guard type <= UInt64(payload.count) * 2 + 13 else {
                    throw PackageDatabaseError(.malformedSQLite, "a record's value is longer than the record")
                }
                length = Int((type - 12) / 2)
            }
            guard body + length <= payload.count else {
                throw PackageDatabaseError(.malformedSQLite, "a record's value is past its end")
            }
            let bytes = Array(payload[body..<body + length])
            body += length
            switch type {
            case 0: values.append(.null)
            case 8: values.append(.integer(0))
            case 9: values.append(.integer(1))
            case 1...6:
                // Big-endian two's complement of 1, 2, 3, 4, 6 or 8 bytes.
                var value = Int64(Int8(bitPattern: bytes.first ?? 0))
                for byte in bytes.dropFirst() { value = value << 8 | Int64(byte) }
                values.append(.integer(value))
            case 7: values.append(.real(Double(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            default:
                values.append(type % 2 == 0 ? .blob(Array(bytes)) : .text(String(decoding: bytes, as: UTF8.self)))
            }
        }
        return values
    }

    /// SQLite's variable-length integer: up to eight bytes of seven bits (high bit: more
    /// follows), the ninth contributing all eight.
    static func varint(_ bytes: [UInt8], _ position: inout Int) throws -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<9 {
            guard position >= 0, position < bytes.count else {
                throw PackageDatabaseError(.malformedSQLite, "a number runs past its page")
            }
            let byte = bytes[position]
            position += 1
            if index == 8 { return value << 8 | UInt64(byte) }
            value = value << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 { return value }
        }
        return value
    }

    /// The pages the log's committed transactions wrote (page → offset of its content) and the
    /// database's size in pages after the last of them; nothing when the log is empty or not
    /// one of this database's.
    static func committedFrames(_ log: [UInt8], pageSize: Int) -> (pages: [Int: Int], pageCount: Int?) {
        guard log.count >= 32 else { return ([:], nil) }
        let magic = bigEndian32(log, 0)
        guard magic == 0x377F_0682 || magic == 0x377F_0683, Int(bigEndian32(log, 8)) == pageSize else {
            return ([:], nil)
        }
        let bigEndianSums = magic & 1 == 1
        var sums = checksum(log, 0..<24, bigEndian: bigEndianSums, seed: (0, 0))
        guard sums == (bigEndian32(log, 24), bigEndian32(log, 28)) else { return ([:], nil) }
        let salts = (bigEndian32(log, 16), bigEndian32(log, 20))
        var committed: [Int: Int] = [:]
        var uncommitted: [Int: Int] = [:]
        var pageCount: Int?
        var frame = 32
        while frame + 24 + pageSize <= log.count {
            guard (bigEndian32(log, frame + 8), bigEndian32(log, frame + 12)) == salts else { break }
            sums = checksum(log, frame..<frame + 8, bigEndian: bigEndianSums, seed: sums)
            sums = checksum(log, (frame + 24)..<(frame + 24 + pageSize), bigEndian: bigEndianSums, seed: sums)
            guard sums == (bigEndian32(log, frame + 16), bigEndian32(log, frame + 20)) else { break }
            uncommitted[Int(bigEndian32(log, frame))] = frame + 24
            let sizeAfterCommit = Int(bigEndian32(log, frame + 4))
            if sizeAfterCommit > 0 {
                committed.merge(uncommitted) { $1 }
                uncommitted = [:]
                pageCount = sizeAfterCommit
            }
            frame += 24 + pageSize
        }
        return (committed, pageCount)
    }

    /// The log's running checksum over `range` of `bytes`, read as pairs of 32-bit words.
    static func checksum(_ bytes: [UInt8], _ range: Range<Int>, bigEndian: Bool, seed: (UInt32, UInt32)) -> (
        UInt32, UInt32
    ) {
        var (s0, s1) = seed
        var index = range.lowerBound
        func word(_ at: Int) -> UInt32 {
            let value = bigEndian32(bytes, at)
            return bigEndian ? value : value.byteSwapped
        }
        while index + 8 <= range.upperBound {
            s0 = s0 &+ word(index) &+ s1
            s1 = s1 &+ word(index + 4) &+ s0
            index += 8
        }
        return (s0, s1)
    }

    /// The big-endian 32-bit number at `offset` (zero past the end: callers check bounds first).
    static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= bytes.count else { return 0 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }
}
