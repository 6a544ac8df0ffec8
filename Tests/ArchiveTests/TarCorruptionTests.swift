import Foundation
import Testing

@testable import Archive

@Suite("Tar corruption and truncation")
struct TarCorruptionTests {
    static func sampleArchive() throws -> Data {
        try makeTar([
            (TarHeader(name: "f", kind: .regular, size: 1000), sampleBytes(1000)),
            (TarHeader(name: "g", kind: .regular, size: 10), sampleBytes(10)),
        ])
    }

    @Test func truncatedInsideAHeader() throws {
        let error = archiveError { _ = try readTar(try Self.sampleArchive().prefix(300)) }
        #expect(error?.kind == .truncated)
        #expect(error?.description == "truncated archive: the header at offset 0 has only 300 of 512 bytes")
    }

    @Test func truncatedInsideABodyWhileReadingIt() throws {
        let error = archiveError { _ = try readTar(try Self.sampleArchive().prefix(512 + 700)) }
        #expect(error?.kind == .truncated)
        #expect(
            error?.description
                == #"truncated archive: the body of "f" (header at offset 0) ends after 700 of 1000 bytes"#)
    }

    @Test func truncatedInsideABodyWhileSkippingIt() throws {
        let reader = TarReader(DataSource(try Self.sampleArchive().prefix(512 + 700)))
        #expect(try reader.next()?.name == "f")
        let error = archiveError { _ = try reader.next() }
        #expect(
            error?.description
                == #"truncated archive: the body of "f" (header at offset 0) ends after 700 of 1000 bytes"#)
        // The reader stays failed: it cannot know where a next header would be.
        #expect(archiveError { _ = try reader.next() }?.kind == .outOfOrder)
    }

    @Test func truncatedInsidePadding() throws {
        let error = archiveError { _ = try readTar(try Self.sampleArchive().prefix(512 + 1010)) }
        #expect(
            error?.description
                == #"truncated archive: the archive ends inside the padding after "f" (header at offset 0)"#)
    }

    @Test func truncatedAfterAnExtendedHeader() throws {
        let archive = try makeTar([(TarHeader(name: String(repeating: "x", count: 200), kind: .regular), nil)])
        let error = archiveError { _ = try readTar(archive.prefix(1024)) }
        #expect(error?.kind == .truncated)
        #expect(error?.description == "truncated archive: the extended header at offset 0 is not followed by an entry")
    }

    @Test func badChecksumNamesTheOffset() throws {
        var archive = try Self.sampleArchive()
        archive[512 + 1024] = UInt8(ascii: "h")  // the second header's name
        let reader = TarReader(DataSource(archive))
        #expect(try reader.next()?.name == "f")
        let error = archiveError { _ = try reader.next() }
        #expect(error?.kind == .badChecksum)
        #expect(error?.description.hasPrefix("bad checksum at offset 1536: the header stores \"") == true)
    }

    @Test func invalidOctalFieldNamesFieldValueAndOffset() throws {
        let header = RawHeader("m").with(TarField.mode, Array("0000x44\u{0}".utf8))
        let error = archiveError { _ = try readTar(Data(header.bytes + endMarker)) }
        #expect(error?.kind == .invalidField)
        #expect(error?.description == #"invalid octal field mode "0000x44\u{0}" in the header at offset 0"#)
    }

    @Test func outOfRangeBase256Field() throws {
        let header = RawHeader("s").with(
            TarField.size, [0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        let error = archiveError { _ = try readTar(Data(header.bytes + endMarker)) }
        #expect(error?.kind == .invalidField)
        #expect(error?.description.hasPrefix("numeric field size [80 ff ff") == true)
    }

    @Test(
        "bad PAX records are named",
        arguments: [
            (Array("garbage".utf8), "bad PAX record at byte 0 of the extended header at offset 0: no length"),
            (
                Array("x7 a=b\n".utf8),
                #"bad PAX record at byte 0 of the extended header at offset 0: length "x7" is not a decimal number"#
            ),
            (
                Array("99 a=b\n".utf8),
                "bad PAX record at byte 0 of the extended header at offset 0: length 99 does not fit the 7 bytes left"
            ),
            (
                Array("6 a=bc\n".utf8),
                "bad PAX record at byte 0 of the extended header at offset 0: record of length 6 does not end in a newline"
            ),
            (
                Array("6 abc\n".utf8),
                #"bad PAX record at byte 0 of the extended header at offset 0: record "abc" is not key=value"#
            ),
            (
                paxBody([("size", "-5")]),
                #"bad PAX record size="-5" in the extended header at offset 0: not a non-negative decimal integer"#
            ),
            (
                paxBody([("uid", "99999999999999999999")]),
                #"bad PAX record uid="99999999999999999999" in the extended header at offset 0: not a non-negative decimal integer"#
            ),
            (
                paxBody([("mtime", "1.2.3")]),
                #"bad PAX record mtime="1.2.3" in the extended header at offset 0: not a time in seconds like 1700000000.5"#
            ),
            (
                paxBody([("path", "..\u{0}/etc")]),
                #"bad PAX record path="..\u{0}/etc" in the extended header at offset 0: it contains a NUL byte"#
            ),
        ] as [([UInt8], String)])
    func badPAX(body: [UInt8], message: String) {
        let archive =
            RawHeader("PaxHeaders/x", type: UInt8(ascii: "x"), size: Int64(body.count)).bytes + padded(body)
            + RawHeader("x").bytes + endMarker
        let error = archiveError { _ = try readTar(Data(archive)) }
        #expect(error?.kind == .badPAXRecord)
        #expect(error?.description == message)
    }

    @Test func oversizedMetadataIsRefusedBeforeItIsRead() {
        let header = RawHeader("PaxHeaders/x", type: UInt8(ascii: "x"), size: 8 << 30)
        let error = archiveError { _ = try readTar(Data(header.bytes)) }
        #expect(error?.kind == .limitExceeded)
        #expect(
            error?.description == "the 'x' header at offset 0 has a 8589934592-byte body; the limit is 1048576 bytes")
        let longName = RawHeader("././@LongLink", type: UInt8(ascii: "L"), size: 2 << 20)
        #expect(archiveError { _ = try readTar(Data(longName.bytes)) }?.kind == .limitExceeded)
    }

    @Test func aZeroBlockFollowedByAHeaderIsRefused() throws {
        let archive = RawHeader("a").bytes + [UInt8](repeating: 0, count: 512) + RawHeader("hidden").bytes + endMarker
        let error = archiveError { _ = try readTar(Data(archive)) }
        #expect(error?.kind == .malformed)
        #expect(
            error?.description
                == "a zero block at offset 512 is followed by a header at offset 1024: the archive is corrupt or two archives were concatenated"
        )
    }

    @Test func compressedInputGetsAHint() throws {
        let archive = try makeTar([(TarHeader(name: "f", kind: .regular, size: 100_000), sampleBytes(100_000))])
        let gzip = archiveError { _ = try readTar(try gzipped(archive)) }
        #expect(gzip?.kind == .badChecksum)
        #expect(
            gzip?.description.hasSuffix("; the data looks gzip-compressed: read it through decompressing(_:)") == true)
        let xz = Data([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) + Data(repeating: 1, count: 600)
        #expect(
            archiveError { _ = try readTar(xz) }?.description.hasSuffix(
                "; the data looks xz-compressed, which layers never are") == true)
        #expect(
            archiveError { _ = try readTar(Data(repeating: 7, count: 512)) }?.description.hasSuffix("(octal)") == true)
        // Too short for a header, but recognisably compressed.
        let tiny = try gzipped(Data("x".utf8))
        let truncated = archiveError { _ = try readTar(tiny) }
        #expect(
            truncated?.description
                == "truncated archive: the header at offset 0 has only \(tiny.count) of 512 bytes; the data looks gzip-compressed: read it through decompressing(_:)"
        )
    }

    @Test func hostileNamesCannotBreakTheErrorLine() throws {
        let name = "evil\nname\u{1b}[31m" + String(repeating: "z", count: 500)
        let archive = try makeTar([(TarHeader(name: name, kind: .regular, size: 100), sampleBytes(100))])
        let error = archiveError { _ = try readTar(archive.prefix(archive.count - 1024 - 512 + 10)) }
        #expect(error?.description.contains(#""evil\u{a}name\u{1b}[31mzzz"#) == true)
        #expect((error?.description.count ?? 0) < 400, "long names are shortened")
    }

    // MARK: Fuzzing

    /// An archive using most features: PAX, ustar prefix, GNU long names, every kind.
    static func richArchive() throws -> Data {
        var entries: [(TarHeader, Data?)] = [
            (TarHeader(name: "dir/", kind: .directory, mode: 0o755), nil),
            (TarHeader(name: "dir/file", kind: .regular, size: 700), sampleBytes(700)),
            (
                TarHeader(name: String(repeating: "long/", count: 40) + "name", kind: .regular, size: 5),
                Data("hello".utf8)
            ),
            (TarHeader(name: "dir/link", kind: .symbolicLink, linkName: String(repeating: "t", count: 150)), nil),
            (TarHeader(name: "dir/hard", kind: .hardLink, linkName: "dir/file"), nil),
            (TarHeader(name: "fifo", kind: .fifo, modificationTime: Date(timeIntervalSince1970: -3.5)), nil),
            (TarHeader(name: String(repeating: "p", count: 120) + "/" + "x", kind: .regular, size: 1), Data("1".utf8)),
        ]
        var xattr = TarHeader(name: "x", kind: .regular, size: 2)
        xattr.extendedAttributes["user.a"] = [0, 1, 2]
        entries.append((xattr, Data("xy".utf8)))
        var archive = try makeTar(entries)
        // A GNU long-name entry spliced in at the front.
        var gnu: [UInt8] = RawHeader(
            "././@LongLink", type: UInt8(ascii: "L"), size: 201, magic: "ustar ", version: " \u{0}"
        ).bytes
        gnu += padded([UInt8](repeating: UInt8(ascii: "g"), count: 200) + [0])
        gnu += RawHeader("g", size: 3, magic: "ustar ", version: " \u{0}").bytes + padded(Array("abc".utf8))
        archive = Data(gnu) + archive
        return archive
    }

    /// Reads everything, and accepts only success or an ``ArchiveError``.
    static func consume(_ data: Data, decompress: Bool = false) -> Bool {
        do {
            var source: any ByteSource = DataSource(data)
            if decompress { source = try decompressing(source).0 }
            let reader = TarReader(source)
            var buffer = [UInt8](repeating: 0, count: 333)
            var entries = 0
            while try reader.next() != nil {
                entries += 1
                while try buffer.withUnsafeMutableBytes({ try reader.readBody(into: $0) }) > 0 {}
            }
            _ = entries
            return true
        } catch is ArchiveError {
            return true
        } catch {
            Issue.record("non-ArchiveError thrown: \(error)")
            return false
        }
    }

    /// Recomputes the checksum of every block that looks like a header, so mutations reach the
    /// field parsers instead of all stopping at the checksum.
    static func fixChecksums(_ data: inout [UInt8]) {
        var offset = 0
        while offset + 512 <= data.count {
            if data[offset + 257..<offset + 262].elementsEqual("ustar".utf8) {
                var block = Array(data[offset..<offset + 512])
                writeChecksum(into: &block)
                data.replaceSubrange(offset..<offset + 512, with: block)
            }
            offset += 512
        }
    }

    @Test func fuzzMutatedArchives() throws {
        let original = Array(try Self.richArchive())
        #expect(try readTar(Data(original)).count == 9)
        var random = SeededGenerator(seed: 0x5eed)
        for iteration in 0..<3000 {
            var data = original
            switch iteration % 4 {
            case 0:  // flip a few bytes anywhere
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    data[Int.random(in: 0..<data.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            case 1:  // mutate header fields, then make the checksums right again
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let block = Int.random(in: 0..<(data.count / 512), using: &random) * 512
                    let interesting = [0, 99, 100, 124, 130, 135, 136, 156, 157, 345, 482, 504]
                    let position =
                        block + interesting.randomElement(using: &random)! + Int.random(in: 0..<12, using: &random)
                    if position < data.count {
                        data[position] = [
                            0x00, 0x20, 0x30, 0x37, 0x38, 0x80, 0xff, 0x2f, 0x2e,
                            UInt8.random(in: 0...255, using: &random),
                        ].randomElement(using: &random)!
                    }
                }
                Self.fixChecksums(&data)
            case 2:  // cut anywhere
                data = Array(data.prefix(Int.random(in: 0..<data.count, using: &random)))
            default:  // corrupt a PAX record body and fix the checksums
                if let x = data.indices.first(where: { data[$0] == UInt8(ascii: "=") }) {
                    let position = x + Int.random(in: -6...6, using: &random)
                    if data.indices.contains(position) {
                        data[position] = [0x00, 0x0a, 0x20, 0x3d, 0x39, 0x2d, 0x2e].randomElement(using: &random)!
                    }
                }
                Self.fixChecksums(&data)
            }
            guard Self.consume(Data(data)) else { return }
        }
        for _ in 0..<500 {
            let count = Int.random(in: 0...4096, using: &random)
            var data = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            Self.fixChecksums(&data)
            guard Self.consume(Data(data)) else { return }
        }
    }

    @Test func fuzzCompressedArchives() throws {
        let archive = try Self.richArchive()
        var random = SeededGenerator(seed: 42)
        for compressed in [try gzipped(archive), try zstded(archive)] {
            let original = Array(compressed)
            for iteration in 0..<600 {
                var data = original
                if iteration % 3 == 0 {
                    data = Array(data.prefix(Int.random(in: 0..<data.count, using: &random)))
                } else {
                    for _ in 0..<Int.random(in: 1...4, using: &random) {
                        data[Int.random(in: 0..<data.count, using: &random)] ^= UInt8.random(
                            in: 1...255, using: &random)
                    }
                }
                guard Self.consume(Data(data), decompress: true) else { return }
            }
        }
    }
}
