import Foundation
import TestSupport
import Testing

@testable import Archive

@Suite("Compression")
struct CompressionTests {
    // MARK: Detection

    @Test(
        "detects compression from magic bytes",
        arguments: [
            ([0x1f, 0x8b, 0x08, 0x00], Compression.gzip),
            ([0x1f, 0x8b], .gzip),
            ([0x28, 0xb5, 0x2f, 0xfd, 0x04], .zstd),
            ([0x50, 0x2a, 0x4d, 0x18], .zstd),  // skippable frame
            ([0x5f, 0x2a, 0x4d, 0x18], .zstd),
            ([0x28, 0xb5, 0x2f], .none),  // too short to tell
            ([0x1f], .none),
            ([], .none),
            ([0x1f, 0x8c], .none),
            ([0x62, 0x69, 0x6e, 0x2f], .none),  // "bin/": a tar header
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], .none),  // xz is not a layer compression
        ] as [([UInt8], Compression)])
    func detect(bytes: [UInt8], expected: Compression) {
        #expect(bytes.withUnsafeBytes { Compression.detect($0) } == expected)
    }

    @Test("decompressing() picks the decompressor from the bytes", arguments: [Compression.none, .gzip, .zstd])
    func decompressingPicksFromBytes(compression: Compression) throws {
        let data = sampleBytes(200_000)
        let stored: Data
        switch compression {
        case .none: stored = data
        case .gzip: stored = try gzipped(data)
        case .zstd: stored = try zstded(data)
        }
        // Served a byte at a time, so the sniffing must gather its prefix across reads.
        let (source, detected) = try decompressing(ChunkedSource(DataSource(stored), chunk: 1))
        #expect(detected == compression)
        #expect(try readAll(source) == data)
    }

    @Test("decompressing() passes short and empty streams through", arguments: [0, 1, 3])
    func decompressingShortStreams(count: Int) throws {
        let data = Data([0x1f, 0x28, 0xb5].prefix(count))
        let (source, detected) = try decompressing(DataSource(data))
        #expect(detected == Compression.none)
        #expect(try readAll(source) == data)
    }

    // MARK: gzip

    @Test("gzip round trip", arguments: [0, 1, 100, 70_000, 3_000_000])
    func gzipRoundTrip(count: Int) throws {
        let data = sampleBytes(count, seed: UInt64(count))
        let compressed = try gzipped(data)
        #expect(try readAll(GzipDecompressor(ChunkedSource(DataSource(compressed), chunk: 777))) == data)
    }

    @Test func gzipOutputIsDeterministic() throws {
        let data = sampleBytes(500_000)
        let first = try gzipped(data)
        #expect(try gzipped(data) == first)
        // RFC 1952 header: magic, deflate, no flags (no name), mtime 0, XFL, OS 255 (unknown).
        #expect(Array(first.prefix(10)) == [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff])
        #expect(try gzipped(data, level: 9) != first)
    }

    @Test func gzipLevelOutOfRangeIsRefused() {
        let error = archiveError { _ = try GzipCompressor(DataSink(), level: 12) }
        #expect(error?.description == "gzip level 12 is out of range: use 0 (store) to 9 (smallest)")
        #expect(error?.kind == .invalidLevel)
    }

    @Test func gunzipReadsOurGzip() throws {
        try withTemporaryDirectory { directory in
            let data = sampleBytes(1_500_000)
            let path = directory.appending("ours.gz").path
            let sink = try FileSink(path: path)
            let gzip = try GzipCompressor(sink)
            try gzip.write(data)
            try gzip.finish()
            try runProcess("gzip", ["-t", path]).checked()
            #expect(try runProcess("gunzip", ["-c", path]).checked().stdout == data)
        }
    }

    @Test func weReadGzipCLIOutputIncludingMultipleMembers() throws {
        let first = sampleBytes(400_000, seed: 1)
        let second = sampleBytes(123_457, seed: 2)
        let a = try runProcess("gzip", ["-c", "-9"], stdin: first).checked().stdout
        let b = try runProcess("gzip", ["-c", "-1"], stdin: second).checked().stdout
        let empty = try runProcess("gzip", ["-c"], stdin: Data()).checked().stdout
        #expect(try readAll(GzipDecompressor(DataSource(a))) == first)
        // `cat a.gz empty.gz b.gz`: gunzip yields the concatenation, and so must we.
        let multi = a + empty + b
        #expect(try runProcess("gunzip", ["-c"], stdin: multi).checked().stdout == first + second)
        for chunk in [1, 2, 3, 65_536] {
            #expect(try readAll(GzipDecompressor(ChunkedSource(DataSource(multi), chunk: chunk))) == first + second)
        }
        // gzip -n writes a name-less header; plain gzip of a file stores the name: both read.
        try withTemporaryDirectory { directory in
            let path = directory.appending("named").path
            try first.write(to: URL(fileURLWithPath: path))
            try runProcess("gzip", [path]).checked()
            #expect(try readAll(GzipDecompressor(FileSource(path: path + ".gz"))) == first)
        }
    }

    @Test func gzipTrailingGarbageIsAnError() throws {
        let compressed = try gzipped(sampleBytes(10_000))
        for garbage in [Data([0]), Data("garbage".utf8), Data([0x1f, 0x00])] {
            let error = archiveError { _ = try readAll(GzipDecompressor(DataSource(compressed + garbage))) }
            #expect(error?.kind == .compressedData)
            #expect(
                error?.description
                    == "gzip data error: trailing data that is not a gzip member at compressed offset \(compressed.count), after the last member"
            )
        }
    }

    @Test func gzipTruncationIsAnError() throws {
        let compressed = try gzipped(sampleBytes(100_000))
        for cut in [1, 4, 9, 10, 20, compressed.count / 2, compressed.count - 8, compressed.count - 1] {
            let error = archiveError { _ = try readAll(GzipDecompressor(DataSource(compressed.prefix(cut)))) }
            #expect(error?.kind == .truncated, "cut at \(cut)")
            #expect(
                error?.description == "truncated gzip stream: it ends inside a member after \(cut) compressed bytes")
        }
        let empty = archiveError { _ = try readAll(GzipDecompressor(DataSource(Data()))) }
        #expect(empty?.kind == .truncated)
    }

    @Test func gzipCorruptionIsAnError() throws {
        let data = sampleBytes(100_000)
        var compressed = try gzipped(data)
        // Flip a bit of the CRC-32 in the trailer.
        compressed[compressed.count - 6] ^= 0x01
        let error = archiveError { _ = try readAll(GzipDecompressor(DataSource(compressed))) }
        #expect(error?.kind == .compressedData)
        #expect(error?.description.hasPrefix("gzip data error: incorrect data check near compressed offset ") == true)
        var header = try gzipped(data)
        header[2] = 0x07  // not deflate
        #expect(
            archiveError { _ = try readAll(GzipDecompressor(DataSource(header))) }?.description.contains(
                "unknown compression method") == true)
    }

    // MARK: zstd

    @Test("zstd round trip", arguments: [0, 1, 100, 200_000, 3_000_000])
    func zstdRoundTrip(count: Int) throws {
        let data = sampleBytes(count, seed: UInt64(count) + 7)
        let compressed = try zstded(data)
        #expect(try readAll(ZstdDecompressor(ChunkedSource(DataSource(compressed), chunk: 999))) == data)
    }

    @Test func zstdCLIReadsOurs() throws {
        let data = sampleBytes(2_000_000)
        let compressed = try zstded(data, level: 5)
        #expect(try runProcess("zstd", ["-d", "-c"], stdin: compressed).checked().stdout == data)
        try runProcess("zstd", ["-t"], stdin: compressed).checked()
    }

    @Test func weReadZstdCLIOutputIncludingMultipleFrames() throws {
        let first = sampleBytes(700_000, seed: 3)
        let second = sampleBytes(99_999, seed: 4)
        let a = try runProcess("zstd", ["-c", "-19"], stdin: first).checked().stdout
        let b = try runProcess("zstd", ["-c", "--no-check", "-1"], stdin: second).checked().stdout
        #expect(try readAll(ZstdDecompressor(DataSource(a))) == first)
        let multi = a + b
        #expect(try runProcess("zstd", ["-d", "-c"], stdin: multi).checked().stdout == first + second)
        for chunk in [1, 5, 131_075] {
            #expect(try readAll(ZstdDecompressor(ChunkedSource(DataSource(multi), chunk: chunk))) == first + second)
        }
        // A skippable frame (RFC 8878 §3.1.2) in front, as some writers add metadata.
        let skippable = Data([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 0xaa, 0xbb, 0xcc])
        let (source, detected) = try decompressing(DataSource(skippable + multi))
        #expect(detected == .zstd)
        #expect(try readAll(source) == first + second)
        // And our own frames concatenated.
        #expect(try readAll(ZstdDecompressor(DataSource(try zstded(first) + zstded(second)))) == first + second)
    }

    @Test func zstdTruncationIsAnError() throws {
        let compressed = try zstded(sampleBytes(300_000))
        for cut in [0, 1, 4, 6, 100, compressed.count / 2, compressed.count - 1] {
            let error = archiveError { _ = try readAll(ZstdDecompressor(DataSource(compressed.prefix(cut)))) }
            #expect(error?.kind == .truncated, "cut at \(cut)")
            #expect(error?.description == "truncated zstd stream: it ends inside a frame after \(cut) compressed bytes")
        }
    }

    @Test func zstdGarbageAndCorruptionAreErrors() throws {
        let data = sampleBytes(300_000)
        let compressed = try zstded(data)
        let trailing = archiveError {
            _ = try readAll(ZstdDecompressor(DataSource(compressed + Data("garbage!".utf8))))
        }
        #expect(trailing?.kind == .compressedData)
        #expect(
            trailing?.description.hasPrefix(
                "zstd data error: Unknown frame descriptor near compressed offset \(compressed.count)") == true)
        var corrupt = compressed
        corrupt[corrupt.count - 2] ^= 0xff  // inside the content checksum
        let checksum = archiveError { _ = try readAll(ZstdDecompressor(DataSource(corrupt))) }
        #expect(checksum?.kind == .compressedData)
        #expect(checksum?.description.contains("checksum") == true)
    }

    @Test func zstdWindowsOverTheLimitAreRefused() throws {
        // --long=31 asks the decoder for a 2 GiB window; the zstd CLI refuses it by default too.
        let compressed = try runProcess("zstd", ["--long=31", "-c"], stdin: sampleBytes(100_000)).checked().stdout
        let error = archiveError { _ = try readAll(ZstdDecompressor(DataSource(compressed))) }
        #expect(error?.kind == .compressedData)
        #expect(
            error?.description
                == "zstd data error: Frame requires too much memory for decoding (its window is over the 128 MiB limit: written with zstd --long=28 or more) near compressed offset 0"
        )
    }

    @Test func decompressorErrorsAreSticky() throws {
        var corrupt = try gzipped(sampleBytes(200_000))
        corrupt[corrupt.count / 2] ^= 0xff
        let gzip = try GzipDecompressor(DataSource(corrupt))
        let first = archiveError { _ = try readAll(gzip) }
        #expect(first?.kind == .compressedData)
        #expect(archiveError { _ = try readAll(gzip) }?.description == first?.description)

        var zstdCorrupt = try zstded(sampleBytes(200_000))
        zstdCorrupt[zstdCorrupt.count / 2] ^= 0xff
        let zstd = try ZstdDecompressor(DataSource(zstdCorrupt))
        let zstdFirst = archiveError { _ = try readAll(zstd) }
        #expect(zstdFirst?.kind == .compressedData)
        #expect(archiveError { _ = try readAll(zstd) }?.description == zstdFirst?.description)
    }

    @Test func aCorruptTrailerShowsOnlyWhenTheStreamIsDrained() throws {
        // A tar reader stops at the end-of-archive blocks; the gzip trailer after them (and any
        // record padding) is checked only when the caller reads the stream to its end.
        // GNU tar pads archives to 10 KiB records; the padding comes after the end marker.
        let archive =
            try makeTar([(TarHeader(name: "f", kind: .regular, size: 5), Data("hello".utf8))]) + Data(count: 20 << 10)
        var compressed = try gzipped(archive)
        compressed[compressed.count - 5] ^= 0x01  // CRC-32
        let (source, _) = try decompressing(DataSource(compressed))
        let reader = TarReader(source)
        #expect(try reader.next()?.name == "f")
        #expect(try reader.next() == nil)
        #expect(archiveError { try drain(source) }?.kind == .compressedData)
    }

    @Test func compressorsRefuseWritesAfterFinish() throws {
        let gzip = try GzipCompressor(DataSink())
        try gzip.finish()
        #expect(archiveError { try gzip.write(Data([1])) }?.kind == .outOfOrder)
    }
}
