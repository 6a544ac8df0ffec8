import Foundation

/// How a layer's bytes are compressed.
///
/// Decided from the bytes themselves, never from a media type: registries and builders
/// mislabel layers (a gzip layer under `.tar`, a zstd layer under `.tar+gzip`), and the bytes
/// cannot lie about their own magic number.
public enum Compression: Sendable, Equatable {
    /// Plain bytes (an uncompressed tar).
    case none
    /// gzip (RFC 1952), the usual layer compression.
    case gzip
    /// Zstandard (RFC 8878), which BuildKit and newer builders can write.
    case zstd

    /// The compression whose magic number starts `prefix`: `1f 8b` is gzip (RFC 1952), and
    /// `28 b5 2f fd` (a zstd frame) or `5? 2a 4d 18` (a zstd skippable frame, which may lead a
    /// zstd stream) is zstd (RFC 8878). Anything else, including a prefix too short to tell,
    /// is `.none`.
    public static func detect(_ prefix: UnsafeRawBufferPointer) -> Compression {
        if prefix.count >= 2, prefix[0] == 0x1f, prefix[1] == 0x8b { return .gzip }
        if prefix.count >= 4 {
            if prefix[0] == 0x28, prefix[1] == 0xb5, prefix[2] == 0x2f, prefix[3] == 0xfd { return .zstd }
            if prefix[0] & 0xf0 == 0x50, prefix[1] == 0x2a, prefix[2] == 0x4d, prefix[3] == 0x18 { return .zstd }
        }
        return .none
    }

    /// The magic numbers of formats that OCI layers never use but that a reader might be
    /// handed by mistake, to name them in an error instead of reporting a bad tar checksum.
    static func describeForeign(_ prefix: some Collection<UInt8>) -> String? {
        let bytes = Array(prefix.prefix(6))
        if bytes.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return "xz" }
        if bytes.starts(with: [0x42, 0x5a, 0x68]) { return "bzip2" }
        if bytes.starts(with: [0x04, 0x22, 0x4d, 0x18]) { return "lz4" }
        if bytes.starts(with: [0x50, 0x4b, 0x03, 0x04]) { return "zip" }
        return nil
    }
}

/// Wraps `source` in the decompressor its first bytes call for and returns it with the
/// compression found; an uncompressed stream comes back readable from its first byte.
///
/// Reads at most four bytes ahead to decide, and replays them.
public func decompressing(_ source: any ByteSource) throws -> (any ByteSource, Compression) {
    var prefix = [UInt8](repeating: 0, count: 4)
    let n = try prefix.withUnsafeMutableBytes { try source.readFully(into: $0) }
    prefix.removeLast(4 - n)
    let compression = prefix.withUnsafeBytes { Compression.detect($0) }
    let replayed = PrefixedSource(prefix: prefix, upstream: source)
    switch compression {
    case .none: return (replayed, .none)
    case .gzip: return (try GzipDecompressor(replayed), .gzip)
    case .zstd: return (try ZstdDecompressor(replayed), .zstd)
    }
}

/// A decompressor's first error, thrown again by every later read: after corrupt data the
/// library's state is undefined, so nothing more may come out of it.
struct StickyFailure {
    private var failure: (any Error)?

    /// `body`'s result, or its error, which every later call throws without running `body`.
    mutating func guarding<R>(_ body: () throws -> R) throws -> R {
        if let failure { throw failure }
        do {
            return try body()
        } catch {
            failure = error
            throw error
        }
    }
}
