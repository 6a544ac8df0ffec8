import Errors

/// A tag, such as `latest` or `1.36.1`: a mutable name for a manifest in a repository.
///
/// See the [distribution spec, Pulling manifests](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests),
/// which gives the grammar.
public struct Tag: ValidatedString {
    /// Why a string is not a tag.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Tag.ValidationError>
        public var kind: Kind { .invalidTag }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted form.
        public var message: String {
            let length = value.utf8.count > 128 ? " (\(value.utf8.count) characters)" : ""
            return
                "invalid tag \(quoted(value))\(length): expected 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
        }
    }

    /// The tag Docker assumes when a reference names none.
    public static let latest = Tag(known: "latest")

    /// The tag, such as `latest`.
    public let rawValue: String

    /// Parses a tag against the grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    ///
    /// - Throws: ``Tag/ValidationError`` naming `rawValue`.
    public init(_ rawValue: String) throws(ValidationError) {
        let bytes = rawValue.utf8
        guard let first = bytes.first, bytes.count <= 128,
            isTagByte(first), first != UInt8(ascii: "."), first != UInt8(ascii: "-"),
            bytes.allSatisfy(isTagByte)
        else { throw ValidationError(value: rawValue) }
        self.rawValue = rawValue
    }

    private init(known rawValue: String) {
        self.rawValue = rawValue
    }

}

private func isTagByte(_ byte: UInt8) -> Bool {
    isAlphanumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
}

extension ErrorKind where Owner == Tag.ValidationError {
    /// The text is not a tag.
    public static var invalidTag: Self { Self("invalid tag") }
}
