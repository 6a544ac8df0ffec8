import Errors
import Foundation

/// A lock that could not be taken or released: what failed, with which key, and what to do.
public typealias LockError = KindedError<LockErrorDomain>

/// Whose kinds ``LockError``'s are.
public enum LockErrorDomain {}

extension ErrorKind where Owner == LockErrorDomain {
    /// `LOCK`, `LOCK_TIMEOUT`, `LOCK_TTL` or the backend text is invalid.
    public static var invalidSetting: Self { Self("invalid setting") }
    /// The lock stayed held for longer than `LOCK_TIMEOUT`.
    public static var timedOut: Self { Self("timed out") }
    /// The lock directory or lock repository cannot be used.
    public static var unusableBackend: Self { Self("unusable backend") }
}
