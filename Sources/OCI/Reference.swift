import Errors

/// What follows `/manifests/` in a registry URL: a tag or a digest.
///
/// See the [distribution spec, Pulling manifests](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests).
public enum Reference: Hashable, Sendable, CustomStringConvertible {
    /// A tag, which may move to another manifest at any time.
    case tag(Tag)
    /// A digest, which always names the same bytes.
    case digest(Digest)

    /// Why a string is neither a tag nor a digest.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Reference.ValidationError>
        public var kind: Kind { .invalidReference }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted forms.
        public var message: String {
            "invalid manifest reference \(quoted(value)): expected a tag (1 to 128 of A-Z a-z 0-9 _ . -) or a digest (sha256:<64 lowercase hex digits>)"
        }
    }

    /// Parses a digest when `string` contains `:` (which no tag may), else a tag.
    ///
    /// - Throws: ``Reference/ValidationError`` naming `string`.
    public init(_ string: String) throws(ValidationError) {
        do {
            self = string.contains(":") ? .digest(try Digest(string)) : .tag(try Tag(string))
        } catch {
            throw ValidationError(value: string)
        }
    }

    /// The tag or digest as written in a URL.
    public var description: String {
        switch self {
        case .tag(let tag): tag.rawValue
        case .digest(let digest): digest.rawValue
        }
    }
}

extension ErrorKind where Owner == Reference.ValidationError {
    /// The text is not a tag or a digest.
    public static var invalidReference: Self { Self("invalid reference") }
}
