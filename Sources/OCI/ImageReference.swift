import Errors

/// A full image reference as a user writes it, such as `busybox`, `ghcr.io/org/app:1.0` or
/// `127.0.0.1:5000/team/app@sha256:…`, parsed with Docker's rules.
///
/// See the [distribution reference grammar](https://github.com/distribution/reference/blob/v0.6.0/reference.go)
/// and Docker's [normalisation](https://github.com/distribution/reference/blob/v0.6.0/normalize.go).
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// Why a string is not an image reference.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<ImageReference.ValidationError>
        public var kind: Kind { .invalidReference }

        /// The rejected text, exactly as given.
        public var value: String
        /// Which part was wrong, in one clause.
        public var reason: String

        /// Creates an error for the rejected text.
        public init(value: String, reason: String) {
            self.value = value
            self.reason = reason
        }

        /// One line naming the value, what was wrong, and the accepted form; a value that
        /// may hold a user name and password (``ImageReference/mayHoldCredentials(_:)``) is
        /// not repeated.
        public var message: String {
            if ImageReference.mayHoldCredentials(value) {
                return "invalid image reference: \(reason)"
            }
            return
                "invalid image reference \(quoted(value)): \(reason); expected [host[:port]/]path[:tag][@digest], such as busybox:1.36 or ghcr.io/org/app@sha256:<64 hex digits>"
        }
    }

    /// The registry holding the image; ``RegistryHost/dockerHub`` when none was written.
    public var registry: RegistryHost
    /// The repository path, with `library/` added for single-component Docker Hub names.
    public var repository: Repository
    /// The tag, when one was written.
    public var tag: Tag?
    /// The digest, when one was written; it wins over the tag when fetching.
    public var digest: Digest?

    /// Creates a reference from parts already parsed.
    public init(registry: RegistryHost = .dockerHub, repository: Repository, tag: Tag? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Whether `text` may hold credentials: a URL (`scheme://`) with an `@`; `user:password@`
    /// before any `/`; or an `@` followed by a host and path (`user@host/path`). Such text is
    /// never repeated in an error. An `@` that only misspells a digest (`app@`, `app@latest`,
    /// `team/app@sha1:…`) is not: its error names it.
    public static func mayHoldCredentials(_ text: String) -> Bool {
        guard let at = text.firstIndex(of: "@") else { return false }
        if text.contains("://") { return true }
        let before = text[..<at]
        let after = text[text.index(after: at)...]
        if (after.hasPrefix("sha256:") || after.hasPrefix("sha512:")) && !after.contains("/") && !after.contains("@") {
            return false
        }
        if !before.contains("/") && before.contains(":") { return true }
        return after.contains("/") || after.contains("@")
    }

    /// Parses an image reference with Docker's rules.
    ///
    /// The first path component is a registry host when it contains `.` or `:` or is
    /// `localhost` (so `host:5000/app` has a port, not a tag); otherwise the image is on
    /// Docker Hub, where a single-component name means `library/<name>`. Docker Hub's other
    /// names (`index.docker.io`, `registry-1.docker.io`) become `docker.io`, so equal images
    /// compare equal.
    ///
    /// - Throws: ``ImageReference/ValidationError`` naming `string` and the part at fault.
    public init(_ string: String) throws(ValidationError) {
        func fail(_ reason: String) -> ValidationError {
            ValidationError(value: string, reason: reason)
        }

        if Self.mayHoldCredentials(string) {
            throw fail(
                "it looks like it holds a user name or password (user:password@host, or a URL); it is not shown. "
                    + "Give host/path only, and the credentials as source.username and source.password (or in a Docker config)"
            )
        }
        var name = Substring(string)
        if let at = name.firstIndex(of: "@") {
            let digestText = String(name[name.index(after: at)...])
            guard let digest = try? Digest(digestText) else {
                throw fail("digest \(quoted(digestText)) is not sha256:<64 lowercase hex digits> or sha512:<128>")
            }
            self.digest = digest
            name = name[..<at]
        }

        var registry = RegistryHost.dockerHub
        if let first = Self.takeHost(from: &name) {
            do {
                registry = try RegistryHost(String(first))
            } catch {
                throw fail("registry host \(quoted(String(first))) is not host[:port]")
            }
        }
        if registry.isDockerHub {
            registry = .dockerHub
        }

        // With the host removed, a colon can only start the tag.
        if let colon = name.lastIndex(of: ":") {
            let tagText = String(name[name.index(after: colon)...])
            guard let tag = try? Tag(tagText) else {
                throw fail(
                    tagText.isEmpty
                        ? "tag is empty after ':'"
                        : "tag \(quoted(tagText)) is not 1 to 128 of A-Z a-z 0-9 _ . - starting with a letter, digit or _"
                )
            }
            self.tag = tag
            name = name[..<colon]
        }

        var path = String(name)
        if path.isEmpty {
            throw fail("repository path is empty")
        }
        if registry.isDockerHub, !path.contains("/") {
            path = "library/" + path
        }
        do {
            repository = try Repository(path)
        } catch {
            throw fail("repository path \(quoted(path)) \(Self.repositoryFault(path))")
        }
        // distribution caps the whole name, host included.
        let total = registry.rawValue.utf8.count + 1 + path.utf8.count
        guard total <= Repository.maximumLength else {
            throw fail("name is \(total) characters long; at most \(Repository.maximumLength) including the host")
        }
        self.registry = registry
    }

    /// The first component of `name` when it is a registry host (it contains `.` or `:`, or
    /// is `localhost`), removed from `name` with its `/`; nil, leaving `name` alone, otherwise.
    static func takeHost(from name: inout Substring) -> Substring? {
        guard let slash = name.firstIndex(of: "/") else { return nil }
        let first = name[..<slash]
        guard first.contains(".") || first.contains(":") || first == "localhost" else { return nil }
        name = name[name.index(after: slash)...]
        return first
    }

    /// Why `path`, which ``Repository`` refused, is not a repository path, in one clause.
    static func repositoryFault(_ path: String) -> String {
        path.contains(where: \.isUppercase)
            ? "must be lowercase"
            : path.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty)
                ? "has an empty component"
                : "is not lowercase components of a-z 0-9 joined by '/', '.', '_', '__' or '-'"
    }

    /// What to fetch: the digest when there is one, else the tag, else `latest`.
    public var reference: Reference {
        if let digest { return .digest(digest) }
        return .tag(tag ?? .latest)
    }

    /// `registry/repository`, such as `docker.io/library/busybox`.
    public var name: String {
        "\(registry.rawValue)/\(repository.rawValue)"
    }

    /// The canonical form: registry and repository always, then the tag (or `:latest` when
    /// there is neither tag nor digest), then the digest; such as
    /// `docker.io/library/busybox:latest` or `127.0.0.1:5000/team/app@sha256:…`.
    public var description: String {
        var text = name
        if let tag {
            text += ":" + tag.rawValue
        } else if digest == nil {
            text += ":" + Tag.latest.rawValue
        }
        if let digest {
            text += "@" + digest.rawValue
        }
        return text
    }
}

extension ErrorKind where Owner == ImageReference.ValidationError {
    /// The text is not an image reference.
    public static var invalidReference: Self { Self("invalid reference") }
}
