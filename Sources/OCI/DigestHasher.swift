import Crypto
import Foundation

/// An incremental SHA-256 over bytes that arrive in pieces, such as a blob streamed from a
/// registry or to a file, so that a digest never requires holding the whole blob in memory.
///
/// ```swift
/// var hasher = DigestHasher()
/// for chunk in chunks { hasher.update(chunk) }
/// guard hasher.finalize() == expected else { … }
/// ```
///
/// See the [image spec, Verification](https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#verification).
public struct DigestHasher: @unchecked Sendable {
    // `@unchecked` because Crypto's SHA256 does not declare Sendable, yet it is a
    // copy-on-write value: `update` copies a shared context before mutating it, and
    // `finalize` only reads it. So a copy handed to another task can never race.
    private var state = SHA256()

    /// Starts a digest of no bytes.
    public init() {}

    /// Adds the bytes in `bytes` to the digest.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        state.update(bufferPointer: bytes)
    }

    /// Adds the bytes of `data` to the digest.
    public mutating func update(_ data: some DataProtocol) {
        state.update(data: data)
    }

    /// The digest of every byte added so far.
    ///
    /// Leaves the hasher unchanged, so a running digest can be checked part way through a
    /// stream and hashing can carry on afterwards.
    public func finalize() -> Digest {
        Digest.sha256(finalized: state.finalize())
    }
}
