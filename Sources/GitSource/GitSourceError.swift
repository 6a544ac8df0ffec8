import Foundation

/// A failure of the git change detector: what failed, with which value, and what to do.
///
/// Messages never contain a secret: commands carry none in their arguments (see
/// ``Command``), URLs are shown without their user information, and git's own output is
/// scrubbed of the configured password and key before it is quoted.
public struct GitSourceError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The class of failure, as an opaque code with static members.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let description: String

        /// The source configuration is invalid (a bad regex, a bad path, conflicting keys).
        public static let configuration = Kind(description: "configuration")
        /// A program could not be started, or git failed.
        public static let command = Kind(description: "command")
        /// The remote or the branch cannot be read (not found, no access).
        public static let remote = Kind(description: "remote")
        /// The tag file or its key is missing or holds no usable value.
        public static let tagFile = Kind(description: "tag file")
        /// A commit that was asked for does not exist in the repository.
        public static let commitNotFound = Kind(description: "commit not found")
        /// The clone cache cannot be created or locked.
        public static let cache = Kind(description: "cache")
    }

    /// What kind of failure this is.
    public let kind: Kind
    /// One or more lines: what failed, with which value, and what to do.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
