import Foundation
import OCI
import TestSupport
import Testing

@testable import Archive

@Suite("Byte streams")
struct ByteStreamTests {
    @Test("DataSource yields its bytes then 0, whatever the buffer size", arguments: [1, 7, 4096])
    func dataSource(chunk: Int) throws {
        let data = sampleBytes(10_000)
        let source = DataSource(data[100...])  // a slice: indices do not start at 0
        var collected = Data()
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            collected.append(contentsOf: buffer[..<n])
        }
        #expect(collected == data[100...])
        #expect(try buffer.withUnsafeMutableBytes { try source.read(into: $0) } == 0)
    }

    @Test func dataSinkEnforcesItsLimit() throws {
        let sink = DataSink(limit: 10)
        try sink.write(Data(repeating: 1, count: 6))
        let error = archiveError { try sink.write(Data(repeating: 2, count: 5)) }
        #expect(error?.kind == .limitExceeded)
        #expect(error?.description == "in-memory buffer limit of 10 bytes exceeded: 11 bytes written")
        #expect(sink.data == Data(repeating: 1, count: 6))
        try sink.write(Data(repeating: 3, count: 4))
        #expect(sink.data.count == 10)
    }

    @Test func fileSinkAndSourceRoundTrip() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appending("file").path
            let data = sampleBytes(3_000_000)
            let sink = try FileSink(path: path, mode: 0o600)
            try sink.write(data)
            try sink.synchronize()
            try sink.finish()
            #expect(try FileFacts(path: path).mode == 0o600)
            #expect(try readAll(FileSource(path: path)) == data)

            // Create/truncate: a shorter second write leaves no tail of the first.
            let again = try FileSink(path: path)
            try again.write(Data("short".utf8))
            try again.finish()
            #expect(try readAll(FileSource(path: path)) == Data("short".utf8))
            #expect(archiveError { try again.write(Data("x".utf8)) }?.kind == .outOfOrder)
        }
    }

    @Test func fileDescriptorStreamsLeaveTheDescriptorOpen() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appending("fd").path
            let fd = open(path, O_RDWR | O_CREAT, 0o644)
            #expect(fd >= 0)
            defer { close(fd) }
            let sink = FileSink(fileDescriptor: fd, closeOnDeinit: false)
            try sink.write(Data("hello".utf8))
            try sink.finish()
            // Still open: the caller's descriptor is usable after finish().
            #expect(lseek(fd, 0, SEEK_SET) == 0)
            #expect(try readAll(FileSource(fileDescriptor: fd, closeOnDeinit: false)) == Data("hello".utf8))
            #expect(fcntl(fd, F_GETFD) >= 0)
        }
    }

    @Test func fileErrorsNameThePathAndReason() {
        let error = archiveError { _ = try FileSource(path: "/nonexistent/slipway/layer.tar") }
        #expect(error?.kind == .fileSystem)
        #expect(
            error?.description
                == #"cannot open "/nonexistent/slipway/layer.tar" for reading: No such file or directory"#)
        let sinkError = archiveError { _ = try FileSink(path: "/nonexistent/slipway/out.tar") }
        #expect(sinkError?.description == #"cannot create "/nonexistent/slipway/out.tar": No such file or directory"#)
    }

    @Test func copyMovesEverythingAndCounts() throws {
        let data = sampleBytes(2_500_000)
        let sink = DataSink()
        let copied = try copy(from: ChunkedSource(DataSource(data), chunk: 70_001), to: sink, bufferSize: 65_536)
        #expect(copied == Int64(data.count))
        #expect(sink.data == data)
        #expect(try drain(DataSource(data)) == Int64(data.count))
    }

    @Test func hashingSourceAndSinkAgreeWithDigest() throws {
        let data = sampleBytes(1_000_003)
        let source = HashingSource(ChunkedSource(DataSource(data), chunk: 4099))
        let sink = HashingSink(DataSink())
        try copy(from: source, to: sink)
        #expect(source.digest == Digest.sha256(data))
        #expect(sink.digest == Digest.sha256(data))
        #expect(source.count == Int64(data.count))
        #expect(sink.count == Int64(data.count))
        #expect(
            HashingSource(DataSource(Data())).digest.rawValue
                == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func verifyingSourcePassesTheRightBlob() throws {
        let data = sampleBytes(300_000)
        let source = VerifyingSource(
            ChunkedSource(DataSource(data), chunk: 1000), expectedSize: Int64(data.count), expectedDigest: .sha256(data)
        )
        #expect(try readAll(source) == data)
        // Reads after the verified end keep returning 0.
        var byte: UInt8 = 0
        #expect(try withUnsafeMutableBytes(of: &byte) { try source.read(into: $0) } == 0)
    }

    @Test func verifyingSourceRejectsAShortBlobAtItsEnd() {
        let data = sampleBytes(1000)
        let source = VerifyingSource(DataSource(data.prefix(999)), expectedSize: 1000, expectedDigest: .sha256(data))
        let error = archiveError { _ = try readAll(source) }
        #expect(error?.kind == .sizeMismatch)
        #expect(
            error?.description == "blob \(Digest.sha256(data)) ended after 999 bytes; its descriptor says 1000 bytes")
    }

    @Test("verifyingSource rejects a long blob at the first extra byte", arguments: [1 << 20, 1000])
    func verifyingSourceRejectsALongBlob(chunk: Int) throws {
        let endless = PatternSource()
        let digest = Digest.sha256(Data())
        let source = VerifyingSource(ChunkedSource(endless, chunk: chunk), expectedSize: 10_000, expectedDigest: digest)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
        defer { buffer.deallocate() }
        var total = 0
        let error = archiveError {
            while true { total += try source.read(into: buffer) }
        }
        #expect(error?.kind == .sizeMismatch)
        #expect(error?.description == "blob \(digest) is longer than the 10000 bytes its descriptor says")
        // In one big read, no byte is passed on; in small ones, exactly the expected size is.
        #expect(total == (chunk > 10_000 ? 0 : 10_000))
        #expect(endless.produced == 10_001, "reads no further than one byte past the expected size")
    }

    @Test func verifyingSourceRejectsTheWrongDigest() {
        let data = sampleBytes(5000)
        let other = Digest.sha256(Data("other".utf8))
        let source = VerifyingSource(DataSource(data), expectedSize: 5000, expectedDigest: other)
        let error = archiveError { _ = try readAll(source) }
        #expect(error?.kind == .digestMismatch)
        #expect(error?.description == "blob of 5000 bytes has digest \(Digest.sha256(data)), expected \(other)")
    }
}
