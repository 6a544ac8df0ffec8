import Errors

/// An installed package's header as rpm keeps it in its database (the `blob` of
/// `rpmdb.sqlite`'s `Packages` table): the header structure of the rpm file format without its
/// leading magic. A count of index entries and the data's length (32-bit big-endian each), the
/// entries (tag, type, offset into the data, count; 16 bytes each), then the data.
///
/// Only what an SBOM names is read: name, epoch, version, release and architecture.
struct RPMHeader: Sendable, Equatable {
    var name: String
    var epoch: Int?
    var version: String
    var release: String
    var architecture: String?

    /// `[epoch:]version-release`, as `rpm -q` and package managers' version comparisons write it.
    var fullVersion: String {
        (epoch.map { "\($0):" } ?? "") + version + "-" + release
    }

    enum Tag: UInt32 {
        case name = 1000
        case version = 1001
        case release = 1002
        case epoch = 1003
        case architecture = 1022
    }

    /// rpm's own bounds on a header (`hdrMaxIndex`, and the data a header may carry).
    static let maximumEntries = 0xFFFF
    static let maximumDataLength = 256 << 20

    init(name: String, epoch: Int? = nil, version: String, release: String, architecture: String?) {
        self.name = name
        self.epoch = epoch
        self.version = version
        self.release = release
        self.architecture = architecture
    }

    init(_ blob: [UInt8]) throws {
        let entries = Int(SQLiteFile.bigEndian32(blob, 0))
        let dataLength = Int(SQLiteFile.bigEndian32(blob, 4))
        guard blob.count >= 8, entries >= 1, entries <= Self.maximumEntries, dataLength <= Self.maximumDataLength,
            8 + 16 * entries + dataLength <= blob.count
        else {
            throw PackageDatabaseError(
                .malformedRPMHeader, "a package header's sizes do not fit its \(blob.count) bytes")
        }
        let data = 8 + 16 * entries
        var strings: [Tag: String] = [:]
        var epoch: Int?
        for entry in 0..<entries {
            let at = 8 + 16 * entry
            guard let tag = Tag(rawValue: SQLiteFile.bigEndian32(blob, at)) else { continue }
            let type = SQLiteFile.bigEndian32(blob, at + 4)
            let offset = Int(SQLiteFile.bigEndian32(blob, at + 8))
            guard offset < dataLength else {
                throw PackageDatabaseError(.malformedRPMHeader, "tag \(tag.rawValue)'s value is past the header's data")
            }
            switch (tag, type) {
            case (.epoch, 4):  // INT32
                guard offset + 4 <= dataLength else {
                    throw PackageDatabaseError(.malformedRPMHeader, "the epoch is past the header's data")
                }
                epoch = Int(Int32(bitPattern: SQLiteFile.bigEndian32(blob, data + offset)))
            case (.epoch, _):
                throw PackageDatabaseError(.malformedRPMHeader, "the epoch has type \(type), not INT32")
            case (_, 6), (_, 9):  // STRING, I18NSTRING (its first string)
                let start = data + offset
                let end = blob[start..<(data + dataLength)].firstIndex(of: 0) ?? -1
                guard end >= start else {
                    throw PackageDatabaseError(.malformedRPMHeader, "tag \(tag.rawValue)'s string has no end")
                }
                if strings[tag] == nil { strings[tag] = String(decoding: blob[start..<end], as: UTF8.self) }
            default:
                throw PackageDatabaseError(.malformedRPMHeader, "tag \(tag.rawValue) has type \(type), not a string")
            }
        }
        guard let name = strings[.name], let version = strings[.version], let release = strings[.release] else {
            throw PackageDatabaseError(.malformedRPMHeader, "a package header lacks its name, version or release")
        }
        self.init(name: name, epoch: epoch, version: version, release: release, architecture: strings[.architecture])
    }

    /// The packages of a Berkeley DB `Packages` (its items keyed by header number; key 0 holds
    /// rpm's next number, not a package).
    static func packages(berkeleyDB database: [UInt8]) throws -> [RPMHeader] {
        try BerkeleyDBHashFile(database).items().filter { !$0.key.allSatisfy { $0 == 0 } }.map { item in
            do { return try RPMHeader(item.value) } catch let error as PackageDatabaseError {
                throw PackageDatabaseError(
                    .malformedRPMHeader,
                    "package \(item.key.map { String($0) }.joined(separator: ".")): \(error.description)")
            }
        }
    }

    /// The packages of an `rpmdb.sqlite` (with its `-wal`, if any), in the database's order.
    static func packages(sqlite database: [UInt8], wal: [UInt8]?) throws -> [RPMHeader] {
        let file = try SQLiteFile(database, wal: wal)
        return try file.rows(ofTable: "Packages").map { row in
            // Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)
            guard row.values.count >= 2, case .blob(let blob) = row.values[1] else {
                throw PackageDatabaseError(.malformedRPMHeader, "package \(row.rowid) has no header blob")
            }
            do { return try RPMHeader(blob) } catch let error as PackageDatabaseError {
                throw PackageDatabaseError(.malformedRPMHeader, "package \(row.rowid): \(error.description)")
            }
        }
    }
}
