import Errors
import Foundation

/// A lock that could not be taken or released: what failed, with which key, and what to do.
public struct LockError: SlipwayError, Equatable {
    /// The class of failure (callers branch on it, the message is for people).
    public typealias Kind = ErrorKind<LockError>

    /// What kind of failure this is.
    public let kind: Kind
    /// What failed, with which value, and what to do.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

extension ErrorKind where Owner == LockError {
    /// `LOCK`, `LOCK_TIMEOUT`, `LOCK_TTL` or the backend text is invalid.
    public static var configuration: Self { Self("configuration") }
    /// The lock stayed held for longer than `LOCK_TIMEOUT`.
    public static var timeout: Self { Self("timeout") }
    /// The lock directory or lock repository cannot be used.
    public static var backend: Self { Self("backend") }
}
