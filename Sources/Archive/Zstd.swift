import CZstd
import Foundation

/// The largest window a frame may ask the decompressor to keep, as a power of two: zstd's own
/// default limit (128 MiB), which everything but `zstd --long=28` and above stays within.
/// It bounds the decompressor's memory whatever a hostile frame header claims.
private let maximumWindowLog: Int32 = 27

/// Decompresses a zstd stream (RFC 8878) as it is read, through the system libzstd.
///
/// Accepts any number of frames one after another, skippable frames included, and yields
/// their contents concatenated, as `zstd -d` does. Memory is one input buffer and the frame's
/// window (a few MiB at the levels builders use; at most 128 MiB). A truncated frame, a bad
/// checksum or trailing garbage fails with one line naming the compressed byte offset.
public final class ZstdDecompressor: ByteSource {
    private let upstream: any ByteSource
    private let context: OpaquePointer
    private let input: UnsafeMutableRawBufferPointer
    private var inBuffer: ZSTD_inBuffer
    private var inputOffset: Int64 = 0
    private var upstreamEnded = false
    /// libzstd's last hint: 0 exactly when the last frame is complete and flushed.
    private var lastHint: Int = 1
    private var finished = false

    /// Decompresses `upstream`, which must start with a zstd frame.
    /// - Throws: ``ArchiveError`` (`.library`) when libzstd cannot be initialised.
    public init(_ upstream: any ByteSource) throws {
        guard let context = ZSTD_createDStream() else {
            throw ArchiveError(.libraryFailed, "cannot create a zstd decompression stream")
        }
        let status = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, maximumWindowLog)
        guard ZSTD_isError(status) == 0 else {
            ZSTD_freeDStream(context)
            throw ArchiveError(
                .libraryFailed, "cannot limit the zstd window: \(String(cString: ZSTD_getErrorName(status)))")
        }
        self.upstream = upstream
        self.context = context
        input = .allocate(byteCount: ZSTD_DStreamInSize(), alignment: 16)
        inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: 0, pos: 0)
    }

    deinit {
        ZSTD_freeDStream(context)
        input.deallocate()
    }

    private var compressedOffset: Int64 { inputOffset - Int64(inBuffer.size - inBuffer.pos) }

    private var failure = StickyFailure()

    /// Decompresses the next bytes.
    /// - Throws: ``ArchiveError``: `.truncated` when the stream ends inside a frame,
    ///   `.compressedData` for corrupt data, a bad checksum, trailing garbage or a window over
    ///   the limit; every later read throws the same error.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try failure.guarding { try decompress(into: buffer) }
    }

    private func decompress(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            if inBuffer.pos == inBuffer.size && !upstreamEnded {
                let n = try upstream.read(into: input)
                if n == 0 {
                    upstreamEnded = true
                } else {
                    inputOffset += Int64(n)
                    inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: n, pos: 0)
                }
            }
            if inBuffer.pos == inBuffer.size && upstreamEnded && lastHint == 0 {
                // The last frame is complete and flushed. (Calling libzstd again would start
                // waiting for another frame header and forget that.)
                finished = true
                return 0
            }
            var outBuffer = ZSTD_outBuffer(dst: base, size: buffer.count, pos: 0)
            let offsetBefore = compressedOffset
            let hint = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(hint) != 0 {
                var reason = String(cString: ZSTD_getErrorName(hint))
                if ZSTD_getErrorCode(hint) == ZSTD_error_frameParameter_windowTooLarge {
                    reason +=
                        " (its window is over the \(1 << (maximumWindowLog - 20)) MiB limit: written with zstd --long=28 or more)"
                }
                throw ArchiveError(.compressedData, "zstd data error: \(reason) near compressed offset \(offsetBefore)")
            }
            lastHint = hint
            if outBuffer.pos > 0 { return outBuffer.pos }
            if inBuffer.pos == inBuffer.size && upstreamEnded {
                guard lastHint == 0 else {
                    throw ArchiveError(
                        .truncated,
                        "truncated zstd stream: it ends inside a frame after \(inputOffset) compressed bytes")
                }
                finished = true
                return 0
            }
        }
    }
}
