import Foundation

/// One change of the source: a commit that touched the watched paths (or, in release mode,
/// a release tag), with what a version and its metadata need.
///
/// Stable by construction: every field is read from the commit (and, in release mode,
/// the tag name), so the same commit always yields the same value and Concourse never
/// sees one commit as two versions.
public struct SourceChange: Sendable, Equatable {
    /// The commit (in release mode, the commit the tag points at).
    public var commit: GitCommitID
    /// The tag file's value at ``commit``, when a tag file is configured.
    public var tagFileValue: String?
    /// The tag name, in release mode.
    public var release: String?
    /// The author's name.
    public var author: String
    /// The author date.
    public var date: Date
    /// The first line of the commit message.
    public var message: String

    /// Creates a change.
    public init(
        commit: GitCommitID, tagFileValue: String? = nil, release: String? = nil, author: String, date: Date,
        message: String
    ) {
        self.commit = commit
        self.tagFileValue = tagFileValue
        self.release = release
        self.author = author
        self.date = date
        self.message = message
    }

    /// What identifies a version when `check` is given one: the commit, and in release mode
    /// the tag name. The tag file value is not part of it: it is derived from the commit.
    public struct Key: Sendable, Hashable {
        /// The version's commit (`ref`).
        public var commit: GitCommitID
        /// The version's tag name (`release`); only release mode looks at it.
        public var release: String?

        /// Creates a key.
        public init(commit: GitCommitID, release: String? = nil) {
            self.commit = commit
            self.release = release
        }
    }

    /// This change's key.
    public var key: Key { Key(commit: commit, release: release) }
}
