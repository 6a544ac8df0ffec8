import Crypto
import Errors
import Foundation

/// A content digest such as `sha256:6c3c624b…`, the address of every blob and manifest.
///
/// Only the two algorithms the image spec registers are accepted, each with its exact
/// lowercase hex length, so a digest that parses can be compared byte for byte with one
/// computed locally: there is no second spelling of the same digest.
///
/// See the [image spec, Digests](https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#digests).
public struct Digest: ValidatedString {
    /// Why a string is not a digest.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Digest.ValidationError>
        public var kind: Kind { .invalidDigest }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted forms.
        public var message: String {
            "invalid digest \(quoted(value)): expected sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex digits>"
        }
    }

    /// The whole digest, `algorithm:encoded`.
    public let rawValue: String

    /// Parses `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
    ///
    /// Uppercase hex is rejected rather than folded: the spec's grammar requires lowercase
    /// for these algorithms, and a registry compares digests as strings.
    ///
    /// - Throws: ``Digest/ValidationError`` naming `rawValue`.
    public init(_ rawValue: String) throws(ValidationError) {
        guard let colon = rawValue.firstIndex(of: ":") else { throw ValidationError(value: rawValue) }
        let algorithm = rawValue[..<colon]
        let encoded = rawValue[rawValue.index(after: colon)...]
        let expectedLength: Int
        switch algorithm {
        case "sha256": expectedLength = 64
        case "sha512": expectedLength = 128
        default: throw ValidationError(value: rawValue)
        }
        guard encoded.utf8.count == expectedLength, encoded.utf8.allSatisfy(isLowercaseHex) else {
            throw ValidationError(value: rawValue)
        }
        self.rawValue = rawValue
    }

    /// Builds a digest from parts already known to be valid (computed hashes).
    private init(trusted rawValue: String) {
        self.rawValue = rawValue
    }

    /// The algorithm name, `sha256` or `sha512`.
    public var algorithm: String {
        String(rawValue[..<separatorIndex])
    }

    /// The lowercase hex after the colon.
    public var encoded: String {
        String(rawValue[rawValue.index(after: separatorIndex)...])
    }

    /// The same as ``rawValue``, so digests interpolate into paths and messages unchanged.

    private var separatorIndex: String.Index {
        // Validated on construction, so the colon is always present.
        rawValue.firstIndex(of: ":") ?? rawValue.startIndex
    }

    /// The SHA-256 digest of `data`.
    ///
    /// For bytes that arrive in pieces use ``DigestHasher`` instead of joining them first.
    public static func sha256(_ data: some DataProtocol) -> Digest {
        Digest(trusted: "sha256:" + hex(SHA256.hash(data: data)))
    }

    /// The SHA-512 digest of `data`, for the rare registry content addressed that way.
    public static func sha512(_ data: some DataProtocol) -> Digest {
        Digest(trusted: "sha512:" + hex(SHA512.hash(data: data)))
    }

    static func sha256(finalized digest: SHA256.Digest) -> Digest {
        Digest(trusted: "sha256:" + hex(digest))
    }

}

private func hex(_ digest: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in digest {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

extension ErrorKind where Owner == Digest.ValidationError {
    /// The text is not a digest.
    public static var invalidDigest: Self { Self("invalid digest") }
}
