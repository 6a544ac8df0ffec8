import Foundation

/// A lock that could not be taken or released: what failed, with which key, and what to do.
public struct LockError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The class of failure, as an opaque code with static members.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let description: String

        /// `LOCK`, `LOCK_TIMEOUT`, `LOCK_TTL` or the backend text is invalid.
        public static let configuration = Kind(description: "configuration")
        /// The lock stayed held for longer than `LOCK_TIMEOUT`.
        public static let timeout = Kind(description: "timeout")
        /// The lock directory or lock repository cannot be used.
        public static let backend = Kind(description: "backend")
    }

    /// What kind of failure this is.
    public let kind: Kind
    /// What failed, with which value, and what to do.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
