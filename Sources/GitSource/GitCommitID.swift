import Errors
import OCI

/// The full name of a git commit: 40 lowercase hexadecimal digits (SHA-1).
///
/// Versions carry the full name, never an abbreviation: an abbreviation that is unique
/// today can become ambiguous as the repository grows, and Concourse compares versions as
/// strings, so one commit must always be spelled the same way.
public struct GitCommitID: ValidatedString, Comparable {
    /// Why a string is not a commit name.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<GitCommitID.ValidationError>
        public var kind: Kind { .invalidCommit }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        public var message: String {
            let shown = value.count > 80 ? String(value.prefix(80)) + "…" : value
            return
                "invalid git commit \(quoted(shown)): expected 40 lowercase hexadecimal digits (a full SHA-1 commit name)"
        }
    }

    /// The 40 hexadecimal digits.
    public let rawValue: String

    /// Parses a full commit name.
    /// - Throws: ``ValidationError`` naming `rawValue` unless it is exactly 40 of `0-9a-f`.
    public init(_ rawValue: String) throws(ValidationError) {
        let bytes = rawValue.utf8
        guard bytes.count == 40, bytes.allSatisfy(isLowercaseHexDigit) else {
            throw ValidationError(value: rawValue)
        }
        self.rawValue = rawValue
    }

    /// The first 12 digits: the `{short_ref}` image tag and the `.git/short_ref` file.
    /// Twelve digits stay unambiguous in repositories far larger than any we serve.
    public var short: String { String(rawValue.prefix(12)) }

    public static func < (lhs: GitCommitID, rhs: GitCommitID) -> Bool { lhs.rawValue < rhs.rawValue }

}

private func isLowercaseHexDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
}

extension ErrorKind where Owner == GitCommitID.ValidationError {
    /// The text is not a full commit name.
    public static var invalidCommit: Self { Self("invalid commit") }
}
