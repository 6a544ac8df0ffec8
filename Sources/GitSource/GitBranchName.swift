import Errors
import OCI

/// A branch name as `git check-ref-format --branch` accepts it, e.g. `main` or
/// `feature/login`: the part after `refs/heads/`.
///
/// The detector always asks the remote for `refs/heads/<name>` in full, never for the bare
/// name: git matches a bare name against the end of every ref, so `master` would also
/// match `refs/heads/feature/master` (a git-resource bug this type exists to prevent).
public struct GitBranchName: ValidatedString {
    /// Why a string is not a branch name.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<GitBranchName.ValidationError>
        public var kind: Kind { .invalidBranch }

        /// The rejected text, exactly as given.
        public var value: String
        /// The rule it breaks.
        public var reason: String

        public var message: String {
            "invalid git branch \(quoted(value)): \(reason)"
        }
    }

    /// The name, without `refs/heads/`.
    public let rawValue: String

    /// Validates a branch name against git's ref name rules (`git help check-ref-format`).
    /// A leading `refs/heads/` is accepted and removed.
    /// - Throws: ``ValidationError`` naming the value and the rule it breaks.
    public init(_ rawValue: String) throws(ValidationError) {
        var name = rawValue
        if name.hasPrefix("refs/heads/") { name.removeFirst("refs/heads/".count) }
        func fail(_ reason: String) -> ValidationError { ValidationError(value: rawValue, reason: reason) }
        if name.isEmpty { throw fail("it is empty") }
        if name.hasPrefix("-") { throw fail("it starts with -") }
        if name == "HEAD" || name == "@" { throw fail("\(name) is not a branch") }
        if name.hasPrefix("/") || name.hasSuffix("/") || name.contains("//") { throw fail("empty path component") }
        if name.hasSuffix(".") { throw fail("it ends with .") }
        if name.contains("..") { throw fail("it contains ..") }
        if name.contains("@{") { throw fail("it contains @{") }
        for component in name.split(separator: "/") {
            if component.hasPrefix(".") { throw fail("a component starts with .") }
            if component.hasSuffix(".lock") { throw fail("a component ends with .lock") }
        }
        for scalar in name.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7f || " ~^:?*[\\".unicodeScalars.contains(scalar) {
                throw fail("it contains a space, a control character or one of ~ ^ : ? * [ \\")
            }
        }
        self.rawValue = name
    }

    /// `refs/heads/<name>`.
    public var fullReference: String { "refs/heads/" + rawValue }

}

extension ErrorKind where Owner == GitBranchName.ValidationError {
    /// The text is not a git branch name.
    public static var invalidBranch: Self { Self("invalid branch") }
}
