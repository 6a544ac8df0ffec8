import Errors

/// A repository path within a registry, such as `library/busybox` or `team/app`: the
/// `<name>` in `/v2/<name>/manifests/…`, without the registry host.
///
/// See the [distribution spec, Pulling manifests](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests),
/// which gives the grammar.
public struct Repository: ValidatedString {
    /// Why a string is not a repository path.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Repository.ValidationError>
        public var kind: Kind { .invalidRepository }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted form.
        public var message: String {
            var hint = ""
            if value.contains(where: \.isUppercase) {
                hint = " (repository names must be lowercase)"
            } else if value.utf8.count > Repository.maximumLength {
                hint = " (\(value.utf8.count) characters; at most \(Repository.maximumLength))"
            }
            return
                "invalid repository \(quoted(value))\(hint): expected lowercase path components of a-z 0-9 separated by single '.', '_', '__' or dashes, joined by '/', at most \(Repository.maximumLength) characters"
        }
    }

    /// The longest repository name distribution accepts.
    public static let maximumLength = 255

    /// The path, such as `library/busybox`.
    public let rawValue: String

    /// Parses a repository path against the distribution grammar
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    ///
    /// - Throws: ``Repository/ValidationError`` naming `rawValue`.
    public init(_ rawValue: String) throws(ValidationError) {
        guard rawValue.utf8.count <= Repository.maximumLength,
            rawValue.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(isPathComponent)
        else { throw ValidationError(value: rawValue) }
        self.rawValue = rawValue
    }

}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or any run of `-`.
private func isPathComponent(_ component: Substring) -> Bool {
    let bytes = Array(component.utf8)
    var index = 0
    func alphanumericRun() -> Bool {
        let start = index
        while index < bytes.count, isLowerAlphanumeric(bytes[index]) { index += 1 }
        return index > start
    }
    guard alphanumericRun() else { return false }
    while index < bytes.count {
        switch bytes[index] {
        case UInt8(ascii: "."):
            index += 1
        case UInt8(ascii: "_"):
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "_") { index += 1 }
        case UInt8(ascii: "-"):
            while index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        default:
            return false
        }
        guard alphanumericRun() else { return false }
    }
    return true
}

extension ErrorKind where Owner == Repository.ValidationError {
    /// The text is not a repository name.
    public static var invalidRepository: Self { Self("invalid repository") }
}
