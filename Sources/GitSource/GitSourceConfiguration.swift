import Foundation
import OCI

/// The `git:` part of a source-keyed source, plus `tag_file`. Every key
/// means what it means in Concourse's git-resource, with that resource's known bugs fixed.
public struct GitSourceConfiguration: Sendable, Equatable {
    /// The repository: `https://`, `http://`, `ssh://`, `git://`, `git@host:path`, `file://`
    /// or a local path; git's remote helpers (`fd::`, `ext::`, other schemes) are refused.
    /// User information in an https URL (`https://user:token@host/…`) is moved to
    /// ``username`` / ``password`` and never reaches a process argument or a log line.
    public var uri: String
    /// The branch to follow; nil follows the remote's default branch (its `HEAD`).
    public var branch: GitBranchName?
    /// Only commits that change these pathspecs make versions; empty means every commit.
    /// Each entry is one git pathspec: a directory matches everything below it, `*`
    /// crosses `/`, magic such as `:(glob)` works, and spaces are part of the name.
    public var paths: [String]
    /// Changes only to these pathspecs make no version (git's `:(exclude)`).
    public var ignorePaths: [String]
    /// When false (the default), a commit whose message contains `[ci skip]` or
    /// `[skip ci]` (any whitespace between the words, case-sensitive) makes no version.
    public var disableCISkip: Bool
    /// Message filters (`commit_filter`).
    public var commitFilter: CommitFilter?
    /// How many versions the first check returns (the newest N, oldest first); nil is 1.
    public var versionDepth: Int?
    /// Release mode: versions are git tags whose names match this glob (`git tag --list`).
    public var tagFilter: String?
    /// Release mode: versions are git tags whose whole names match this POSIX extended
    /// regular expression (as `grep -Ex`).
    public var tagRegex: String?
    /// An SSH private key (PEM or OpenSSH format) for `ssh://` and `git@host:` URIs.
    public var privateKey: String?
    /// The https user name.
    public var username: String?
    /// The https password or token.
    public var password: String?
    /// A file whose value is part of every version; its path is always watched.
    public var tagFile: TagFileSpec?

    /// Creates a configuration; only `uri` is required.
    public init(
        uri: String,
        branch: GitBranchName? = nil,
        paths: [String] = [],
        ignorePaths: [String] = [],
        disableCISkip: Bool = false,
        commitFilter: CommitFilter? = nil,
        versionDepth: Int? = nil,
        tagFilter: String? = nil,
        tagRegex: String? = nil,
        privateKey: String? = nil,
        username: String? = nil,
        password: String? = nil,
        tagFile: TagFileSpec? = nil
    ) {
        self.uri = uri
        self.branch = branch
        self.paths = paths
        self.ignorePaths = ignorePaths
        self.disableCISkip = disableCISkip
        self.commitFilter = commitFilter
        self.versionDepth = versionDepth
        self.tagFilter = tagFilter
        self.tagRegex = tagRegex
        self.privateKey = privateKey
        self.username = username
        self.password = password
        self.tagFile = tagFile
    }

    /// True when versions come from tags (`tag_filter` or `tag_regex`).
    public var isReleaseMode: Bool { tagFilter != nil || tagRegex != nil }

    /// The number of versions a first check returns.
    public var effectiveVersionDepth: Int { versionDepth ?? 1 }

    /// Checks everything that can be checked without git, so a bad source fails before
    /// any network traffic, with the key and value named.
    /// - Throws: ``GitSourceError`` (`.configuration`).
    public func validate() throws {
        func fail(_ message: String) -> GitSourceError { GitSourceError(.invalidConfiguration, message) }
        let display = RemoteURL(uri).display
        if uri.trimmingCharacters(in: .whitespaces).isEmpty { throw fail("git.uri is empty: give the repository URL") }
        if uri.contains(where: { $0.isNewline }) { throw fail("git.uri \(quoted(display)) contains a line break") }
        if let refusal = GitTransport.refusal(uri) { throw fail(refusal) }
        for (key, list) in [("git.paths", paths), ("git.ignore_paths", ignorePaths)] {
            for entry in list where entry.isEmpty || entry.contains("\0") || entry.contains(where: { $0.isNewline }) {
                throw fail(
                    "\(key) entry \(quoted(entry)) is not a pathspec: it is empty or contains a line break or NUL")
            }
        }
        if let versionDepth, versionDepth < 1 {
            throw fail("git.version_depth is \(versionDepth): it must be 1 or more")
        }
        if tagFilter != nil && tagRegex != nil {
            throw fail("git.tag_filter and git.tag_regex are both set: use one of them")
        }
        if let tagFilter, tagFilter.isEmpty { throw fail("git.tag_filter is empty: give a glob such as \"v*\"") }
        if let tagRegex { _ = try PosixRegex(tagRegex, dialect: .extended, key: "git.tag_regex") }
        if let commitFilter {
            for pattern in commitFilter.include {
                _ = try PosixRegex(pattern, dialect: .basic, key: "git.commit_filter.include")
            }
            for pattern in commitFilter.exclude {
                _ = try PosixRegex(pattern, dialect: .basic, key: "git.commit_filter.exclude")
            }
        }
        if password != nil && (username ?? RemoteURL(uri).username) == nil {
            throw fail("git.password is set without git.username: set both for https")
        }
        if let username, username.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw fail("git.username contains a line break")
        }
        if let password, password.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw fail("git.password contains a line break (its value is not shown)")
        }
        if let privateKey, !privateKey.contains("-----BEGIN") {
            throw fail(
                "git.private_key is not a PEM or OpenSSH private key (no -----BEGIN line; its value is not shown)")
        }
        if let tagFile { try tagFile.validate() }
    }
}

/// `commit_filter`: regular expressions (POSIX basic, as `git log --grep`) matched against
/// every line of the commit message.
public struct CommitFilter: Sendable, Equatable {
    /// A commit makes a version only if its message matches one of these (all of them
    /// with ``includeAllMatch``); empty means no restriction.
    public var include: [String]
    /// A commit whose message matches one of these (all of them with
    /// ``excludeAllMatch``) makes no version.
    public var exclude: [String]
    /// git-resource's `include_all_match`.
    public var includeAllMatch: Bool
    /// git-resource's `exclude_all_match`.
    public var excludeAllMatch: Bool

    /// Creates a filter.
    public init(
        include: [String] = [], exclude: [String] = [], includeAllMatch: Bool = false, excludeAllMatch: Bool = false
    ) {
        self.include = include
        self.exclude = exclude
        self.includeAllMatch = includeAllMatch
        self.excludeAllMatch = excludeAllMatch
    }
}

/// `tag_file`: a file in the repository whose value becomes part of each version.
///
/// The format follows the extension: `.yaml`/`.yml` (YAML), `.json` (JSON), anything else
/// plain text (the trimmed content). YAML and JSON need ``key``, a dotted path such as
/// `tags.bitops_base`, unless the whole document is one scalar.
public struct TagFileSpec: Sendable, Equatable {
    /// The path from the repository root, e.g. `images/banana/VERSION`.
    public var path: String
    /// The dotted key for YAML and JSON files.
    public var key: String?

    /// Creates a tag file specification.
    public init(path: String, key: String? = nil) {
        self.path = path
        self.key = key
    }

    /// The path without a leading `./` or `/`, as git names it in a tree.
    public var normalizedPath: String {
        var result = path
        while result.hasPrefix("./") { result.removeFirst(2) }
        while result.hasPrefix("/") { result.removeFirst() }
        return result
    }

    /// The format the extension selects.
    public var format: TagFileFormat {
        let lowered = normalizedPath.lowercased()
        if lowered.hasSuffix(".yaml") || lowered.hasSuffix(".yml") { return .yaml }
        if lowered.hasSuffix(".json") { return .json }
        return .plain
    }

    func validate() throws {
        let path = normalizedPath
        if path.isEmpty || path.hasSuffix("/") {
            throw GitSourceError(.invalidConfiguration, "tag_file path \(quoted(self.path)) does not name a file")
        }
        if path.split(separator: "/").contains("..") || path.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw GitSourceError(
                .invalidConfiguration,
                "tag_file path \(quoted(self.path)) must stay inside the repository (no .., no line breaks)")
        }
        if let key {
            if format == .plain {
                throw GitSourceError(
                    .invalidConfiguration,
                    "tag_file \(quoted(self.path)) has key \(quoted(key)), but only .yaml, .yml and .json files have keys; remove the key or use such a file"
                )
            }
            if key.isEmpty || key.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                throw GitSourceError(
                    .invalidConfiguration, "tag_file key \(quoted(key)) is not a dotted key such as tags.base")
            }
        }
    }
}

/// How a tag file is read.
public enum TagFileFormat: String, Sendable, Equatable {
    /// The whole file, trimmed of surrounding whitespace.
    case plain
    /// A YAML document and a dotted key.
    case yaml
    /// A JSON document and a dotted key.
    case json
}
