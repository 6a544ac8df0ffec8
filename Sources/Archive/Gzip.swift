import CZlib
import Foundation

/// The zlib `windowBits` that selects a gzip wrapper (RFC 1952) around a 32 KiB window.
private let gzipWindowBits: Int32 = 15 + 16
/// How much compressed input or output is buffered at a time.
private let chunkSize = 64 << 10

/// Decompresses a gzip stream (RFC 1952) as it is read, through the system zlib.
///
/// Accepts several members one after another (`cat a.gz b.gz`, and what pigz and bgzip
/// write) and yields their contents concatenated, as `gunzip` does. Rejects anything else
/// after the last member, a truncated member and a CRC or length mismatch in a trailer, each
/// with one line naming the compressed byte offset. Memory is zlib's 32 KiB window plus a
/// 64 KiB input buffer, whatever the stream's size.
public final class GzipDecompressor: ByteSource {
    private let upstream: any ByteSource
    // zlib keeps a pointer back to its `z_stream` and checks it on every call, so the stream
    // lives at a fixed address rather than in a Swift stored property that may move.
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    /// Compressed bytes consumed from upstream so far (for error offsets).
    private var inputOffset: Int64 = 0
    private var upstreamEnded = false
    /// True between members: the previous one ended and no byte of the next one is decoded.
    private var atMemberBoundary = false
    private var finished = false

    /// Decompresses `upstream`, which must start with a gzip member.
    /// - Throws: ``ArchiveError`` (`.library`) when zlib cannot be initialised.
    public init(_ upstream: any ByteSource) throws {
        self.upstream = upstream
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(byteCount: chunkSize, alignment: 16)
        let status = slipway_inflateInit2(stream, gzipWindowBits)
        guard status == Z_OK else {
            stream.deallocate()
            input.deallocate()
            throw ArchiveError(.libraryFailed, "cannot initialise zlib inflate: status \(status)")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Where the next compressed byte comes from, for error messages.
    private var compressedOffset: Int64 { inputOffset - Int64(stream.pointee.avail_in) }

    /// Refills the input buffer once it is empty; returns false at the end of upstream.
    private func refill() throws -> Bool {
        if stream.pointee.avail_in > 0 { return true }
        if upstreamEnded { return false }
        let n = try upstream.read(into: input)
        if n == 0 {
            upstreamEnded = true
            return false
        }
        inputOffset += Int64(n)
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(n)
        return true
    }

    private var failure = StickyFailure()

    /// Decompresses the next bytes.
    /// - Throws: ``ArchiveError``: `.truncated` when the stream ends inside a member,
    ///   `.compressedData` for corrupt data, a bad trailer or trailing garbage; every later
    ///   read throws the same error.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try failure.guarding { try decompress(into: buffer) }
    }

    private func decompress(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            if atMemberBoundary {
                // Another member, or the end of the stream; anything else is garbage.
                guard try refill() else {
                    finished = true
                    return 0
                }
                // The next member's two magic bytes may straddle two reads from upstream.
                let first = stream.pointee.next_in[0]
                var magic = [first]
                if stream.pointee.avail_in >= 2 {
                    magic.append(stream.pointee.next_in[1])
                } else if !upstreamEnded {
                    // Keep the lone byte: move it to the front and append the next read.
                    input[0] = first
                    let n = try upstream.read(into: UnsafeMutableRawBufferPointer(rebasing: input[1...]))
                    if n == 0 { upstreamEnded = true } else { magic.append(input[1]) }
                    inputOffset += Int64(n)
                    stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_in = uInt(1 + n)
                }
                guard magic == [0x1f, 0x8b] else {
                    throw ArchiveError(
                        .compressedData,
                        "gzip data error: trailing data that is not a gzip member at compressed offset \(compressedOffset), after the last member"
                    )
                }
                inflateReset(stream)
                atMemberBoundary = false
            }

            if stream.pointee.avail_in == 0, !(try refill()) {
                throw ArchiveError(
                    .truncated, "truncated gzip stream: it ends inside a member after \(inputOffset) compressed bytes")
            }
            stream.pointee.next_out = base.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(min(buffer.count, Int(UInt32.max)))
            let status = inflate(stream, Z_NO_FLUSH)
            let produced = min(buffer.count, Int(UInt32.max)) - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                // Z_BUF_ERROR only means no progress was possible with the input so far;
                // the next pass reads more, or reports truncation at the end of upstream.
                break
            case Z_STREAM_END:
                atMemberBoundary = true
            case Z_NEED_DICT:
                throw ArchiveError(
                    .compressedData,
                    "gzip data error: stream needs a preset dictionary at compressed offset \(compressedOffset)")
            case Z_MEM_ERROR:
                throw ArchiveError(.libraryFailed, "zlib is out of memory")
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
                throw ArchiveError(
                    .compressedData, "gzip data error: \(reason) near compressed offset \(compressedOffset)")
            }
            if produced > 0 { return produced }
        }
    }
}

/// Compresses to gzip (RFC 1952) as bytes are written, through the system zlib.
///
/// The output is deterministic: the header has modification time 0, no file name, and
/// operating system 255 ("unknown", as Go's `compress/gzip` writes) rather than the build
/// platform's code, so equal input, level and zlib version give equal bytes, and a layer
/// rebuilt from the same files keeps its digest.
public final class GzipCompressor: ByteSink {
    private let downstream: any ByteSink
    private let stream: UnsafeMutablePointer<z_stream>
    // zlib reads the header lazily, so it must outlive the first `deflate` call.
    private let header: UnsafeMutablePointer<gz_header>
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false

    /// Compresses into `downstream` at zlib `level` (0 stores, 1 is fastest, 9 smallest;
    /// 6 is gzip's default).
    /// - Throws: ``ArchiveError`` (`.library`) for a level outside -1…9 or when zlib cannot be
    ///   initialised.
    public init(_ downstream: any ByteSink, level: Int32 = 6) throws {
        guard (-1...9).contains(level) else {
            throw ArchiveError(.invalidLevel, "gzip level \(level) is out of range: use 0 (store) to 9 (smallest)")
        }
        self.downstream = downstream
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        header = .allocate(capacity: 1)
        header.initialize(to: gz_header())
        header.pointee.os = 255
        output = .allocate(byteCount: chunkSize, alignment: 16)
        var status = slipway_deflateInit2(stream, level, gzipWindowBits)
        if status == Z_OK {
            status = deflateSetHeader(stream, header)
            if status != Z_OK { deflateEnd(stream) }
        }
        guard status == Z_OK else {
            stream.deallocate()
            header.deallocate()
            output.deallocate()
            throw ArchiveError(.libraryFailed, "cannot initialise zlib deflate at level \(level): status \(status)")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        header.deallocate()
        output.deallocate()
    }

    /// Compresses `bytes`, writing full output buffers downstream as they fill.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw ArchiveError(.outOfOrder, "write to a gzip stream after finish()") }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        // `avail_in` is 32 bits wide, so feed huge buffers in slices.
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: (base + offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(n)
            try pump(Z_NO_FLUSH)
            offset += n
        }
    }

    /// Writes the final block and the trailer (CRC-32 and length), then finishes downstream.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try pump(Z_FINISH)
        try downstream.finish()
    }

    /// Runs deflate until it has taken all input (or, with `Z_FINISH`, ended the stream),
    /// writing each full output buffer downstream.
    private func pump(_ flush: Int32) throws {
        while true {
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let status = deflate(stream, flush)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw ArchiveError(.libraryFailed, "zlib deflate failed: status \(status)")
            }
            let produced = output.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try downstream.write(UnsafeRawBufferPointer(rebasing: output[..<produced]))
            }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 {
                return
            }
        }
    }
}
