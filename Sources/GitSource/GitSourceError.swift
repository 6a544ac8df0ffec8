import Errors
import Foundation

/// A failure of the git change detector: what failed, with which value, and what to do.
///
/// Messages never contain a secret: commands carry none in their arguments (see
/// ``Command``), URLs are shown without their user information, and git's own output is
/// scrubbed of the configured password and key before it is quoted.
public typealias GitSourceError = KindedError<GitSourceErrorDomain>

/// Whose kinds ``GitSourceError``'s are.
public enum GitSourceErrorDomain {}

extension ErrorKind where Owner == GitSourceErrorDomain {
    /// The source configuration is invalid (a bad regex, a bad path, conflicting keys).
    public static var invalidConfiguration: Self { Self("invalid configuration") }
    /// A program could not be started, or git failed.
    public static var gitFailed: Self { Self("git failed") }
    /// The remote or the branch cannot be read (not found, no access).
    public static var unreadableRemote: Self { Self("unreadable remote") }
    /// The tag file or its key is missing or holds no usable value.
    public static var unusableTagFile: Self { Self("unusable tag file") }
    /// A commit that was asked for does not exist in the repository.
    public static var commitNotFound: Self { Self("commit not found") }
    /// The clone cache cannot be created or locked.
    public static var unusableCache: Self { Self("unusable cache") }
}
