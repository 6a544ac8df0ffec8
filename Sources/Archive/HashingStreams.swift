import Foundation
import OCI

/// Counts and SHA-256-hashes the bytes read through it, so a blob's digest is computed over
/// exactly the bytes that were consumed, in the same pass.
public final class HashingSource: ByteSource {
    private let upstream: any ByteSource
    private var hasher = DigestHasher()

    /// How many bytes have been read through this source.
    public private(set) var count: Int64 = 0

    /// The digest of the bytes read so far (of all of them once ``read(into:)`` returned 0).
    public var digest: Digest { hasher.finalize() }

    /// Hashes what is read from `upstream`.
    public init(_ upstream: any ByteSource) {
        self.upstream = upstream
    }

    /// Reads from upstream and hashes what came.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try upstream.read(into: buffer)
        if n > 0 {
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            count += Int64(n)
        }
        return n
    }
}

/// Counts and SHA-256-hashes the bytes written through it on their way to `downstream`, so the
/// digest of a compressed layer is known the moment it has been written.
public final class HashingSink: ByteSink {
    private let downstream: any ByteSink
    private var hasher = DigestHasher()

    /// How many bytes have been written through this sink.
    public private(set) var count: Int64 = 0

    /// The digest of the bytes written so far.
    public var digest: Digest { hasher.finalize() }

    /// Hashes what is written to `downstream`.
    public init(_ downstream: any ByteSink) {
        self.downstream = downstream
    }

    /// Writes `bytes` downstream, then hashes them (so a failed write is not counted).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try downstream.write(bytes)
        hasher.update(bytes)
        count += Int64(bytes.count)
    }

    /// Finishes downstream; the digest stays readable.
    public func finish() throws {
        try downstream.finish()
    }
}

/// Checks, while reading, that a stream is exactly the blob its descriptor names.
///
/// Too many bytes fail as soon as the first extra byte arrives, so a hostile registry cannot
/// make a reader consume an endless body; too few bytes, or a different digest, fail at the end
/// of the stream. Until then the bytes are unverified: a consumer must not act on them
/// irrevocably (rename a blob into place) before this source has returned 0.
///
/// See the [image spec, Verification](https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#verification).
public final class VerifyingSource: ByteSource {
    private let upstream: any ByteSource
    private let expectedSize: Int64
    private let expectedDigest: Digest
    private var hasher = DigestHasher()
    private var count: Int64 = 0
    /// Set once the end of the stream has been seen and checked, so later reads return 0
    /// without checking again.
    private var verified = false

    /// Verifies that `upstream` yields exactly `expectedSize` bytes whose digest is
    /// `expectedDigest`.
    public init(_ upstream: any ByteSource, expectedSize: Int64, expectedDigest: Digest) {
        self.upstream = upstream
        self.expectedSize = expectedSize
        self.expectedDigest = expectedDigest
    }

    /// Reads the next bytes.
    /// - Throws: ``ArchiveError`` `.sizeMismatch` when the stream is longer than expected (at
    ///   once) or shorter (at its end), `.digestMismatch` at the end when the digest differs.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !verified, buffer.count > 0 else { return 0 }
        // Ask for at most one byte more than the expected size, so an overlong stream is
        // caught without reading further into it.
        let allowed = expectedSize - count
        let request = allowed < Int64(buffer.count) ? Int(max(allowed, 0)) + 1 : buffer.count
        let n = try upstream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<request]))
        if n == 0 {
            guard count == expectedSize else {
                throw ArchiveError(
                    .sizeMismatch,
                    "blob \(expectedDigest) ended after \(count) bytes; its descriptor says \(expectedSize) bytes")
            }
            let actual = hasher.finalize()
            guard actual == expectedDigest else {
                throw ArchiveError(
                    .digestMismatch, "blob of \(expectedSize) bytes has digest \(actual), expected \(expectedDigest)")
            }
            verified = true
            return 0
        }
        guard Int64(n) <= allowed else {
            throw ArchiveError(
                .sizeMismatch, "blob \(expectedDigest) is longer than the \(expectedSize) bytes its descriptor says")
        }
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        count += Int64(n)
        return n
    }
}
