import Foundation

/// A pull-based byte stream: files, decompressors, tar entry bodies, network bodies.
///
/// Everything in this module moves bytes through caller-owned buffers, a chunk at a time,
/// so a multi-gigabyte layer passes through in bounded memory. Sources are classes used
/// from one thread at a time (they hold a file offset or a C library's stream state), so
/// they are deliberately not `Sendable`.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes into `buffer` and returns how many were read.
    ///
    /// Returns 0 only at the end of the stream (never for a non-empty buffer before it), and
    /// may return fewer bytes than asked for at any time.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A push-based byte stream: files, compressors, hashers, in-memory buffers.
///
/// Like ``ByteSource``, a sink is used from one thread and is not `Sendable`.
public protocol ByteSink: AnyObject {
    /// Writes all of `bytes` (a sink never accepts part of a buffer).
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Flushes and completes the stream: a compressor writes its trailer and finishes its
    /// downstream sink. A sink does not close a file descriptor it was handed, only one it
    /// opened itself. Nothing may be written afterwards.
    func finish() throws
}

extension ByteSink {
    /// Writes the bytes of `data`.
    public func write(_ data: some DataProtocol) throws {
        for region in data.regions {
            try region.withUnsafeBytes { try write($0) }
        }
    }
}

extension ByteSource {
    /// Reads until `buffer` is full or the stream ends, returning how many bytes were read
    /// (less than `buffer.count` only at the end of the stream).
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if n == 0 { break }
            filled += n
        }
        return filled
    }
}

/// Copies every byte of `from` into `to`, a chunk of `bufferSize` bytes at a time, and returns
/// how many bytes were copied.
///
/// Does not call `to.finish()`: several sources may be copied into one sink (a tar writer's
/// entry bodies, a multi-member gzip), and only the caller knows when it is complete.
@discardableResult
public func copy(from source: any ByteSource, to sink: any ByteSink, bufferSize: Int = 1 << 20) throws -> Int64 {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bufferSize, 1), alignment: 16)
    defer { buffer.deallocate() }
    var total: Int64 = 0
    while true {
        let n = try source.read(into: buffer)
        if n == 0 { return total }
        try sink.write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        total += Int64(n)
    }
}

/// Reads `source` to its end, discarding the bytes, and returns how many there were.
///
/// A reader that stops early (a tar reader at its end-of-archive blocks) leaves the rest of a
/// stream unread; draining it makes a ``VerifyingSource`` underneath see its end of stream and
/// check the digest, and makes a decompressor check its trailer.
@discardableResult
public func drain(_ source: any ByteSource, bufferSize: Int = 64 << 10) throws -> Int64 {
    try copy(from: source, to: DiscardingSink(), bufferSize: bufferSize)
}

/// A sink that keeps nothing, for ``drain(_:bufferSize:)``.
private final class DiscardingSink: ByteSink {
    func write(_ bytes: UnsafeRawBufferPointer) throws {}
    func finish() throws {}
}

/// Replays bytes already read from a stream (to sniff its format) before the rest of it.
final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private var position = 0
    private let upstream: any ByteSource

    init(prefix: [UInt8], upstream: any ByteSource) {
        self.prefix = prefix
        self.upstream = upstream
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        if position < prefix.count {
            let n = min(buffer.count, prefix.count - position)
            prefix.withUnsafeBytes { bytes in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[position..<position + n]))
            }
            position += n
            if position == prefix.count {
                prefix = []
                position = 0
            }
            return n
        }
        return try upstream.read(into: buffer)
    }
}
