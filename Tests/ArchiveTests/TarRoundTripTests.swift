import Foundation
import Testing

@testable import Archive

@Suite("Tar round trips")
struct TarRoundTripTests {
    static let time = Date(timeIntervalSince1970: 1_700_000_000)

    static func header(_ name: String, _ kind: TarHeader.Kind, size: Int64 = 0, link: String = "") -> TarHeader {
        var header = TarHeader(
            name: name, kind: kind, mode: 0o755, size: size, modificationTime: time, linkName: link, uid: 1000, gid: 100
        )
        header.userName = "builder"
        header.groupName = "users"
        return header
    }

    @Test(
        "every kind reads back as written",
        arguments: [
            header("file.txt", .regular, size: 1234),
            header("empty", .regular),
            header("dir/", .directory),
            header("dir/link", .symbolicLink, link: "../file.txt"),
            header("dir/hard", .hardLink, link: "file.txt"),
            header("pipe", .fifo),
            {
                var device = header("dev/null", .characterDevice)
                device.deviceMajor = 1
                device.deviceMinor = 3
                return device
            }(),
            {
                var device = header("dev/sda", .blockDevice)
                device.deviceMajor = 8
                device.deviceMinor = 0
                return device
            }(),
            header("vendor", .other(UInt8(ascii: "V")), size: 10),
        ])
    func everyKind(header: TarHeader) throws {
        let body = header.size > 0 ? sampleBytes(Int(header.size)) : nil
        let archive = try makeTar([(header, body)])
        #expect(archive.count % 512 == 0)
        // Plain ustar: one header block, no PAX header in front.
        #expect(archive[156] == header.kind.typeFlag)
        for chunk in [1, 511, 4096] {
            let entries = try readTar(archive, chunk: chunk)
            #expect(entries.count == 1)
            #expect(entries.first?.header == header)
            #expect(entries.first?.body == (body ?? Data()))
        }
    }

    @Test(
        "values that do not fit ustar go through PAX and read back",
        arguments: [
            header(String(repeating: "n", count: 255), .regular, size: 3),
            header(String(repeating: "deep/", count: 60) + "file", .regular, size: 3),
            header("link", .symbolicLink, link: String(repeating: "t", count: 200)),
            header("hard", .hardLink, link: String(repeating: "h/", count: 80) + "x"),
            header("caf\u{e9}/\u{65e5}\u{672c}/\u{1F4E6}.txt", .regular, size: 3),
            header("ascii-name", .symbolicLink, link: "\u{fc}ber"),
            header("frac", .regular).with { $0.modificationTime = Date(timeIntervalSince1970: 1_700_000_000.5) },
            header("neg", .regular).with { $0.modificationTime = Date(timeIntervalSince1970: -86_400) },
            header("negfrac", .regular).with { $0.modificationTime = Date(timeIntervalSince1970: -1.25) },
            header("future", .regular).with { $0.modificationTime = Date(timeIntervalSince1970: 1e13) },
            header("bigids", .regular).with {
                $0.uid = 3_000_000_000
                $0.gid = 2_097_152
            },
            header("longnames", .regular).with {
                $0.userName = String(repeating: "u", count: 40)
                $0.groupName = "gr\u{fc}ppe"
            },
            header("dev", .characterDevice).with {
                $0.deviceMajor = 4_000_000
                $0.deviceMinor = 7
            },
            // 32 bytes: no room for the NUL.
            header("uname32", .regular).with { $0.userName = String(repeating: "u", count: 32) },
        ])
    func paxCases(header: TarHeader) throws {
        let body = header.size > 0 ? Data("abc".utf8) : nil
        let archive = try makeTar([(header, body)])
        #expect(archive[156] == UInt8(ascii: "x"), "a PAX header comes first")
        let entries = try readTar(archive)
        #expect(entries.count == 1)
        var read = try #require(entries.first).header
        // The reader reports the records it applied; the writer derived them from fields.
        #expect(read.paxRecords.keys.allSatisfy { TarWriter.derivedKeys.contains($0) })
        read.paxRecords = [:]
        #expect(read == header)
        #expect(entries.first?.body == (body ?? Data()))
    }

    @Test func longNamesHavePAXPathAndATruncatedFallback() throws {
        let name = String(repeating: "a", count: 120) + "/" + String(repeating: "b", count: 130)
        let archive = try makeTar([(Self.header(name, .regular), nil)])
        let entries = try readTar(archive)
        #expect(entries.first?.header.paxRecords["path"] == name)
        #expect(entries.first?.header.name == name)
    }

    @Test func namesUpTo256BytesUseTheUstarPrefixWithoutPAX() throws {
        let name = String(repeating: "p", count: 150) + "/" + String(repeating: "n", count: 100)
        let archive = try makeTar([(Self.header(name, .regular), nil)])
        #expect(archive[156] == UInt8(ascii: "0"), "no PAX header")
        #expect(String(decoding: archive[345..<495], as: UTF8.self) == String(repeating: "p", count: 150))
        #expect(try readTar(archive).first?.header.name == name)
    }

    @Test func fractionalTimesSurviveToTheNanosecond() throws {
        let value = 1_700_000_000.123456789
        let archive = try makeTar([
            (Self.header("t", .regular).with { $0.modificationTime = Date(timeIntervalSince1970: value) }, nil)
        ])
        let entries = try readTar(archive)
        let read = try #require(entries.first).header.modificationTime.timeIntervalSince1970
        #expect(abs(read - value) < 1e-6)
        #expect(entries.first?.header.paxRecords["mtime"]?.hasPrefix("1700000000.1234567") == true)
    }

    @Test func paxTimesAreFormattedAsPOSIXSays() {
        #expect(formatPAXTime(seconds: -2, nanoseconds: 500_000_000) == "-1.5")
        #expect(formatPAXTime(seconds: -1, nanoseconds: 750_000_000) == "-0.25")
        #expect(formatPAXTime(seconds: 0, nanoseconds: 0) == "0")
        #expect(formatPAXTime(seconds: 12, nanoseconds: 1) == "12.000000001")
        #expect(formatPAXTime(seconds: -5, nanoseconds: 0) == "-5")
    }

    @Test func aNineGibibyteHeaderRoundTripsWithoutItsBody() throws {
        let size: Int64 = 9 << 30
        let header = Self.header("huge.bin", .regular, size: size)
        let blocks = try TarWriter.encodeHeader(header)
        #expect(blocks.count == 3 * 512, "PAX header, its records, the ustar header")
        // The ustar size field holds the GNU base-256 form too, for readers without PAX.
        #expect(blocks[1024 + 124] == 0x80)
        let reader = TarReader(DataSource(Data(blocks)))
        let read = try #require(try reader.next())
        #expect(read.size == size)
        #expect(read.paxRecords["size"] == "9663676416")
        // Without PAX, the base-256 field alone gives the same size.
        let ustarOnly = TarReader(DataSource(Data(blocks[1024...])))
        #expect(try ustarOnly.next()?.size == size)
    }

    @Test func xattrsAndOtherRecordsPassThrough() throws {
        var header = Self.header("bin/ping", .regular, size: 4)
        header.extendedAttributes["security.capability"] = [
            0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0x0a, 0x00,
        ]
        header.extendedAttributes["user.note"] = Array("caf\u{e9}".utf8)
        header.paxRecords["SCHILY.acl.access"] = "user::rw-"
        header.paxRecords["path"] = "ignored: the name field wins"
        let archive = try makeTar([(header, Data("ping".utf8))])
        let read = try #require(try readTar(archive).first).header
        #expect(read.name == "bin/ping")
        #expect(read.extendedAttributes == header.extendedAttributes)
        #expect(read.paxRecords["SCHILY.acl.access"] == "user::rw-")
        #expect(read.paxRecords["SCHILY.xattr.user.note"] == "caf\u{e9}")
        #expect(read.paxRecords["path"] == nil)
    }

    @Test func writerOutputIsDeterministic() throws {
        var header = Self.header(String(repeating: "x", count: 300), .regular, size: 5)
        header.paxRecords = ["b": "2", "a": "1", "c": "3"]
        header.extendedAttributes = ["user.z": [1], "user.a": [2]]
        let first = try makeTar([(header, Data("hello".utf8))])
        #expect(try makeTar([(header, Data("hello".utf8))]) == first)
    }

    @Test func manyEntriesWithPartialBodyReadsAndSkips() throws {
        var entries: [(TarHeader, Data?)] = []
        for index in 0..<50 {
            let size = (index * 997) % 5000
            entries.append(
                (Self.header("f\(index)", .regular, size: Int64(size)), sampleBytes(size, seed: UInt64(index))))
            entries.append((Self.header("d\(index)/", .directory), nil))
        }
        let archive = try makeTar(entries)
        let reader = TarReader(ChunkedSource(DataSource(archive), chunk: 300))
        var index = 0
        while let header = try reader.next() {
            #expect(header.name == entries[index].0.name)
            // Read part of every third body and skip the rest.
            if index % 3 == 0, header.size > 10 {
                var buffer = [UInt8](repeating: 0, count: 10)
                let n = try buffer.withUnsafeMutableBytes { try reader.readBody(into: $0) }
                #expect(Data(buffer[..<n]) == entries[index].1?.prefix(n))
            }
            index += 1
        }
        #expect(index == entries.count)
        #expect(try reader.next() == nil)
    }

    @Test func aBodyCannotBeReadAfterTheReaderMovedOn() throws {
        let archive = try makeTar([
            (Self.header("a", .regular, size: 3), Data("abc".utf8)),
            (Self.header("b", .regular, size: 1), Data("b".utf8)),
        ])
        let reader = TarReader(DataSource(archive))
        _ = try reader.next()
        let stale = reader.body
        _ = try reader.next()
        #expect(archiveError { _ = try readAll(stale) }?.kind == .outOfOrder)
        #expect(try readAll(reader.body) == Data("b".utf8))
    }

    @Test func writerRejectsBodiesOfTheWrongLength() throws {
        let short = archiveError {
            let writer = TarWriter(DataSink())
            try writer.append(Self.header("short", .regular, size: 10), body: DataSource(Data("abc".utf8)))
        }
        #expect(short?.kind == .bodyLength)
        #expect(short?.description == #"the body of "short" ended after 3 of the 10 bytes its header says"#)

        let long = archiveError {
            let writer = TarWriter(DataSink())
            try writer.append(Self.header("long", .regular, size: 2), body: DataSource(Data("abc".utf8)))
        }
        #expect(long?.description == #"the body of "long" is longer than the 2 bytes its header says"#)

        let sink = DataSink()
        let writer = TarWriter(sink)
        let missing = archiveError { try writer.append(Self.header("missing", .regular, size: 2), body: nil) }
        #expect(missing?.description == #"no body given for "missing", whose header says 2 bytes"#)
        #expect(sink.data.isEmpty, "nothing is written for a refused header")
        // A refused header leaves the writer usable; a failed body does not.
        try writer.append(Self.header("ok", .regular), body: nil)
        #expect(throws: ArchiveError.self) {
            try writer.append(Self.header("bad", .regular, size: 5), body: DataSource(Data()))
        }
        #expect(archiveError { try writer.finish() }?.kind == .outOfOrder)
    }

    @Test(
        "writer refuses headers it cannot represent",
        arguments: [
            (TarHeader(name: "", kind: .regular), #"cannot write tar entry "": the name is empty"#),
            (
                TarHeader(name: "a\u{0}b", kind: .regular),
                #"cannot write tar entry "a\u{0}b": the name contains a NUL byte"#
            ),
            (
                TarHeader(name: "l", kind: .symbolicLink, linkName: "x\u{0}"),
                #"cannot write tar entry "l": the link target contains a NUL byte"#
            ),
            (TarHeader(name: "neg", kind: .regular, size: -1), #"cannot write tar entry "neg": negative size -1"#),
            (
                TarHeader(name: "d", kind: .directory, size: 5),
                #"cannot write tar entry "d": size 5 given for a directory, which has no body"#
            ),
            (TarHeader(name: "u", kind: .regular, uid: -2), #"cannot write tar entry "u": negative uid -2"#),
            (
                TarHeader(name: "x", kind: .other(UInt8(ascii: "x"))),
                #"cannot write tar entry "x": type flag 'x' is reserved for metadata the writer generates"#
            ),
            (
                TarHeader(name: "t", kind: .regular, modificationTime: Date(timeIntervalSince1970: .infinity)),
                #"modification time inf of "t" cannot be stored"#
            ),
            (
                TarHeader(name: "k", kind: .regular).with { $0.paxRecords["a=b"] = "c" },
                #"cannot write tar entry "k": PAX keyword "a=b" is empty or contains '=' or NUL"#
            ),
        ])
    func unencodable(header: TarHeader, message: String) {
        let error = archiveError { _ = try TarWriter.encodeHeader(header) }
        #expect(error?.kind == .unencodable)
        #expect(error?.description == message)
    }

    @Test func modesAreMaskedToPermissionAndSpecialBits() throws {
        let archive = try makeTar([(TarHeader(name: "suid", kind: .regular, mode: 0o104755), nil)])
        #expect(try readTar(archive).first?.header.mode == 0o4755)
    }
}

extension TarHeader {
    /// A copy with `change` applied, for building test cases inline.
    func with(_ change: (inout TarHeader) -> Void) -> TarHeader {
        var copy = self
        change(&copy)
        return copy
    }
}
