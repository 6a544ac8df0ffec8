/// The one shape of every Slipway error: a kind that callers and tests branch on, and a
/// message for people.
///
/// The rendered error (`description`) is one line: the message, unless a type carries more
/// (a registry's status and error codes, a layer entry's name) and renders that in its own
/// one line. Messages say what failed, with which value, and what to do; they never hold a
/// secret, and untrusted text in them is quoted so it cannot forge a second log line.
public protocol SlipwayError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure: an opaque value with static members, whose `description` names it.
    associatedtype Kind: Hashable & Sendable & CustomStringConvertible
    /// What went wrong, for code that branches on it.
    var kind: Kind { get }
    /// What went wrong, with which value, and what to do, in one line.
    var message: String { get }
}

extension SlipwayError {
    /// The message: the error as a log line.
    public var description: String { message }
}

/// The kind of an error of type `Owner`: a name with static members, declared by each error
/// type in a constrained extension (`extension ErrorKind where Owner == ArchiveError`), so the
/// kinds of one error type are never offered for another.
public struct ErrorKind<Owner>: Hashable, Sendable, CustomStringConvertible {
    /// The kind's name, for logs (`digest mismatch`).
    public let description: String

    /// A kind named `description`.
    public init(_ description: String) {
        self.description = description
    }
}

/// An error that is a kind and a message, nothing more: the error of each module whose
/// failures carry nothing else, so that shape is written once. `Domain` says whose kinds
/// these are (`ArchiveError` is `KindedError<ArchiveErrorDomain>`), so the kinds of one
/// module's error are never offered for another's.
public struct KindedError<Domain>: SlipwayError, Equatable {
    /// The class of failure (callers branch on it, the message is for people).
    public typealias Kind = ErrorKind<Domain>

    /// What kind of failure this is.
    public let kind: Kind
    /// What failed, with which value, and what to do, in one line.
    public let message: String

    /// Creates an error; `message` is one line, untrusted values in it quoted.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}
