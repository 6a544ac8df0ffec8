import Errors
import Foundation
import OCI

/// What a tag template can refer to: the source an image was built from.
public struct TagContext: Sendable, Equatable {
    /// The full 40-hex commit.
    public var commit: String
    /// The branch the commit was built from, as git names it (`feature/login`).
    public var branch: String?
    /// The base-image digest summary (`track_base`).
    public var base: Digest?
    /// The tag file's value at the commit.
    public var tagFile: String?
    /// The git tag name of the version in release mode (`git.tag_filter`/`tag_regex`).
    public var release: String?

    public init(
        commit: String, branch: String? = nil, base: Digest? = nil, tagFile: String? = nil, release: String? = nil
    ) {
        self.commit = commit
        self.branch = branch
        self.base = base
        self.tagFile = tagFile
        self.release = release
    }
}

/// A tag template such as `{short_ref}` or `{branch}-latest`.
///
/// Placeholders: `{ref}` (the 40-hex commit), `{short_ref}` (its first 12), `{branch}`,
/// `{short_base}` (12 hex of the base digest), `{tag_file}`, `{release}` (the git tag of a
/// release-mode version, e.g. `{release}-base` for `v2.1.0-base` in `ci/pipelines/000-base-and-prebuilt.yml`). The rendered text is made a
/// valid tag by `TagSanitizer`, so a branch like `feature/Login#12` still gives a tag.
public struct TagTemplate: Sendable, Equatable, CustomStringConvertible {
    public struct ValidationError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<TagTemplate.ValidationError>
        public var kind: Kind { .invalidTemplate }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    public static let placeholders = ["ref", "short_ref", "branch", "short_base", "tag_file", "release"]
    public let description: String

    public init(_ text: String) throws(ValidationError) {
        guard !text.isEmpty else { throw ValidationError("an empty tag template") }
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw ValidationError("tag template \(quoted(text)): unclosed {")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard Self.placeholders.contains(name) else {
                throw ValidationError(
                    "tag template \(quoted(text)): unknown placeholder {\(quoted(name).dropFirst().dropLast())}; known: \(Self.placeholders.map { "{\($0)}" }.joined(separator: ", "))"
                )
            }
            rest = rest[rest.index(after: close)...]
        }
        description = text
    }

    /// The tag for `context`. Throws when the template needs something the context lacks.
    public func render(_ context: TagContext) throws(ValidationError) -> Tag {
        var text = description
        func fill(_ name: String, _ value: String?) throws(ValidationError) {
            guard text.contains("{\(name)}") else { return }
            guard let value, !value.isEmpty else {
                throw ValidationError(
                    "tag template \(quoted(description)) needs {\(name)}, which this build does not have")
            }
            text = text.replacingOccurrences(of: "{\(name)}", with: value)
        }
        try fill("ref", context.commit)
        try fill("short_ref", String(context.commit.prefix(12)))
        try fill("branch", context.branch)
        try fill("short_base", context.base.map { String($0.encoded.prefix(12)) })
        try fill("tag_file", context.tagFile)
        try fill("release", context.release)
        return TagSanitizer.tag(text)
    }
}

/// Turns any text (a branch name, a tag file's value) into a valid tag
/// (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`), the way docker/metadata-action does and then some:
/// every run of invalid characters becomes one `-` (none at the end); leading `.` and `-`
/// go; text longer
/// than 128 is cut and given a short hash of the whole, so two long names that share a
/// prefix still get different tags.
public enum TagSanitizer {
    public static func sanitize(_ text: String) -> String {
        var result = ""
        var inRun = false
        for scalar in text.unicodeScalars {
            let valid =
                scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "_.-".unicodeScalars.contains(scalar))
            if valid {
                result.unicodeScalars.append(scalar)
                inRun = false
            } else if !inRun {
                result += "-"
                inRun = true
            }
        }
        if inRun { result.removeLast() }  // a trailing run of invalid characters leaves no dash behind
        while let first = result.first, first == "." || first == "-" { result.removeFirst() }
        if result.isEmpty { result = "_" }
        if result.count > 128 {
            let hash = Digest.sha256(Data(text.utf8)).encoded.prefix(8)
            result = String(result.prefix(128 - 9)) + "-" + hash
        }
        return result
    }

    /// The sanitised text as a tag (always valid).
    public static func tag(_ text: String) -> Tag {
        // sanitize() only produces the tag grammar; the fallback is unreachable but keeps this total.
        (try? Tag(sanitize(text))) ?? Tag.latest
    }
}

extension ErrorKind where Owner == TagTemplate.ValidationError {
    /// A tag template is not valid.
    public static var invalidTemplate: Self { Self("invalid template") }
}
