import Foundation
import Testing

@testable import Archive

/// Builds raw header blocks byte by byte, for formats and mistakes our writer never produces.
struct RawHeader {
    var block = [UInt8](repeating: 0, count: 512)

    init(
        _ name: String, type: UInt8 = UInt8(ascii: "0"), size: Int64 = 0, mode: Int64 = 0o644,
        mtime: Int64 = 1_600_000_000, link: String = "", magic: String = "ustar\u{0}", version: String = "00"
    ) {
        writeText(Array(name.utf8), into: &block, TarField.name)
        writeNumeric(mode, into: &block, TarField.mode)
        writeNumeric(0, into: &block, TarField.uid)
        writeNumeric(0, into: &block, TarField.gid)
        writeNumeric(size, into: &block, TarField.size)
        writeNumeric(mtime, into: &block, TarField.mtime)
        block[TarField.typeFlag] = type
        writeText(Array(link.utf8), into: &block, TarField.linkName)
        writeText(Array(magic.utf8), into: &block, TarField.magic)
        writeText(Array(version.utf8), into: &block, TarField.version)
    }

    /// Overwrites a field's bytes (checksum recomputed by ``bytes``).
    func with(_ range: Range<Int>, _ bytes: [UInt8]) -> RawHeader {
        var copy = self
        copy.block.replaceSubrange(range, with: bytes + [UInt8](repeating: 0, count: range.count - bytes.count))
        return copy
    }

    var bytes: [UInt8] {
        var block = block
        writeChecksum(into: &block)
        return block
    }
}

/// A body padded to whole blocks.
func padded(_ body: [UInt8]) -> [UInt8] {
    body + [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
}

let endMarker = [UInt8](repeating: 0, count: 1024)

func paxBody(_ records: [(String, String)]) -> [UInt8] {
    records.flatMap { encodePAXRecord(key: $0.0, value: Array($0.1.utf8)) }
}

@Suite("Tar reader formats")
struct TarReaderTests {
    @Test func gnuLongNameAndLongLink() throws {
        let longName = String(repeating: "L", count: 300)
        let longLink = String(repeating: "K", count: 150)
        var archive: [UInt8] = []
        archive +=
            RawHeader(
                "././@LongLink", type: UInt8(ascii: "L"), size: Int64(longName.utf8.count + 1), magic: "ustar ",
                version: " \u{0}"
            ).bytes
        archive += padded(Array(longName.utf8) + [0])
        archive +=
            RawHeader(
                "././@LongLink", type: UInt8(ascii: "K"), size: Int64(longLink.utf8.count + 1), magic: "ustar ",
                version: " \u{0}"
            ).bytes
        archive += padded(Array(longLink.utf8) + [0])
        archive +=
            RawHeader(
                String(longName.prefix(100)), type: UInt8(ascii: "2"), link: String(longLink.prefix(100)),
                magic: "ustar ", version: " \u{0}"
            ).bytes
        archive += endMarker
        let entries = try readTar(Data(archive))
        #expect(entries.count == 1)
        #expect(entries.first?.header.name == longName)
        #expect(entries.first?.header.linkName == longLink)
        #expect(entries.first?.header.kind == .symbolicLink)
    }

    @Test func globalPAXRecordsApplyToLaterEntriesAndLocalOnesOverride() throws {
        var archive: [UInt8] = []
        let global = paxBody([("comment", "built by slipway"), ("uname", "globaluser")])
        archive +=
            RawHeader("pax_global_header", type: UInt8(ascii: "g"), size: Int64(global.count)).bytes + padded(global)
        archive += RawHeader("a", size: 0).bytes
        let local = paxBody([("uname", ""), ("path", "renamed/b")])  // empty value: cancel the global
        archive += RawHeader("PaxHeaders/b", type: UInt8(ascii: "x"), size: Int64(local.count)).bytes + padded(local)
        archive += RawHeader("b", size: 0).with(TarField.userName, Array("fielduser".utf8)).bytes
        archive += endMarker
        let entries = try readTar(Data(archive))
        #expect(entries.map(\.header.name) == ["a", "renamed/b"])
        #expect(entries[0].header.userName == "globaluser")
        #expect(entries[0].header.paxRecords == ["comment": "built by slipway", "uname": "globaluser"])
        #expect(entries[1].header.userName == "fielduser")
        #expect(entries[1].header.paxRecords == ["comment": "built by slipway", "path": "renamed/b"])
    }

    @Test func aGlobalHeaderAloneIsAnEmptyArchive() throws {
        let global = paxBody([("comment", "0123456789abcdef")])  // what `git archive` writes first
        let archive =
            RawHeader("pax_global_header", type: UInt8(ascii: "g"), size: Int64(global.count)).bytes + padded(global)
            + endMarker
        #expect(try readTar(Data(archive)).isEmpty)
    }

    @Test func v7HeadersAndTheTrailingSlashDirectoryConvention() throws {
        var archive: [UInt8] = []
        archive += RawHeader("old/", type: 0, magic: "", version: "").with(TarField.userName, Array("junk".utf8)).bytes
        archive += RawHeader("old/file", type: 0, size: 3, magic: "", version: "").bytes + padded(Array("abc".utf8))
        archive += endMarker
        let entries = try readTar(Data(archive))
        #expect(entries.map(\.header.kind) == [.directory, .regular])
        #expect(entries[0].header.userName == "", "v7 headers have no user name field")
        #expect(entries[1].body == Data("abc".utf8))
    }

    @Test func base256AndSpacePaddedNumericFields() throws {
        var header = RawHeader("n", size: 0)
        // Negative mtime in base-256 (GNU tar writes this for dates before 1970).
        var field = [UInt8](repeating: 0xff, count: 12)
        field[11] = 0xfe  // -2
        header = header.with(TarField.mtime, field)
        header = header.with(TarField.mode, Array("   755 \u{0}".utf8))
        header = header.with(TarField.uid, [0x80, 0, 0, 0, 0x01, 0x00, 0x00, 0x00])  // 2^24
        let entries = try readTar(Data(header.bytes + endMarker))
        #expect(entries.first?.header.modificationTime == Date(timeIntervalSince1970: -2))
        #expect(entries.first?.header.mode == 0o755)
        #expect(entries.first?.header.uid == 1 << 24)
    }

    @Test func starHeadersUseTheShorterPrefix() throws {
        let header = RawHeader("file")
            .with(TarField.starPrefix, Array("some/dir".utf8))
            .with(476..<488, Array("14000000000\u{0}".utf8))  // star's atime, inside the long prefix
            .with(TarField.starTrailer, Array("tar\u{0}".utf8))
        #expect(try readTar(Data(header.bytes + endMarker)).first?.header.name == "some/dir/file")
    }

    @Test func headerOnlyKindsHaveNoBodyWhateverTheirSize() throws {
        // Go's archive/tar (containerd, BuildKit) ignores the size of these kinds; a reader that
        // honoured it would see a different next entry.
        var archive: [UInt8] = []
        archive += RawHeader("dir", type: UInt8(ascii: "5"), size: 512).bytes
        archive += RawHeader("next").bytes
        archive += endMarker
        let entries = try readTar(Data(archive))
        #expect(entries.map(\.header.name) == ["dir", "next"])
        #expect(entries[0].header.size == 0)
    }

    @Test func gnuSparseExtensionBlocksAreSkipped() throws {
        var archive: [UInt8] = []
        var extensionBlock = [UInt8](repeating: 0, count: 512)
        extensionBlock[504] = 1
        let last = [UInt8](repeating: 0, count: 512)
        archive +=
            RawHeader("sparse", type: UInt8(ascii: "S"), size: 3, magic: "ustar ", version: " \u{0}").with(
                482..<483, [1]
            ).bytes
        archive += extensionBlock + last + padded(Array("abc".utf8))
        archive += RawHeader("after").bytes + endMarker
        let entries = try readTar(Data(archive))
        #expect(entries.map(\.header.name) == ["sparse", "after"])
        #expect(entries[0].header.kind == .other(UInt8(ascii: "S")))
        #expect(entries[0].body == Data("abc".utf8))
    }

    @Test(
        "the end of the archive",
        arguments: [
            [UInt8](),  // EOF right after the last entry
            [UInt8](repeating: 0, count: 512),  // a lone zero block, as GNU tar accepts
            endMarker,
            endMarker + [UInt8](repeating: 0, count: 8192),  // record padding
            endMarker + Array("trailing junk after the end marker".utf8),
        ] as [[UInt8]])
    func endOfArchive(trailer: [UInt8]) throws {
        let archive = RawHeader("only").bytes + trailer
        let reader = TarReader(DataSource(Data(archive)))
        #expect(try reader.next()?.name == "only")
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test func nonUTF8NamesStayDistinct() throws {
        let latin1 = RawHeader("x").with(TarField.name, [0x63, 0x61, 0x66, 0xe9])  // "café" in ISO 8859-1
        let other = RawHeader("x").with(TarField.name, [0x63, 0x61, 0x66, 0xe8])
        let entries = try readTar(Data(latin1.bytes + other.bytes + endMarker))
        #expect(entries.map(\.header.name) == ["caf\u{e9}", "caf\u{e8}"])
    }
}
