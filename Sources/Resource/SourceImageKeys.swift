import Foundation
import OCI
import Registry

/// A regular expression from `source` (`tag_regex`, `label_regex`, `annotation_regex`),
/// checked once when the source is read. It matches anywhere in the text unless anchored,
/// as registry-image's Go `regexp.MatchString` does. Slipway reads it with ICU's syntax,
/// which agrees with RE2's for everything RE2 accepts except a few spellings (RE2's
/// `(?P<name>…)` is ICU's `(?<name>…)`); ICU's extras (lookaround, backreferences) are
/// accepted too.
public struct KeyPattern: Sendable, CustomStringConvertible {
    public let pattern: String

    init(_ object: InputObject, _ key: String) throws(InputError) {
        let text = try object.requiredString(key)
        do { _ = try NSRegularExpression(pattern: text) } catch {
            throw object.invalid(key, "\"\(InputObject.printable(text))\" is not a valid regular expression")
        }
        pattern = text
    }

    /// A matcher compiled once, for a pass over many strings.
    public func matcher() -> (String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return { _ in false } }
        return { text in regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil }
    }

    public var description: String { pattern }
}

/// registry-image's `tag_regex` mode: every tag matching the pattern, in the order the
/// registry lists them or, with `created_at_sort`, by the creation time of their images.
public struct TagRegexSelection: Sendable {
    public var pattern: KeyPattern
    public var createdAtSort: Bool
}

/// `label_regex` and `annotation_regex`: which config labels and manifest annotations `get`
/// reports as metadata.
public struct MetadataPatterns: Sendable {
    public var labels: KeyPattern?
    public var annotations: KeyPattern?
    public var isEmpty: Bool { labels == nil && annotations == nil }
}

extension Source {
    static let contentTrustRefusal =
        "source.content_trust: Docker Content Trust (Notary v1) is retired and Slipway does not sign or verify with it; use source.sign and source.verify (cosign-compatible signatures) instead"

    /// `tag`, which registry-image also takes as a JSON number (YAML `tag: 1`): the number's
    /// text is the tag, as its `Tag` type keeps a number's raw JSON.
    static func tagText(_ source: InputObject) throws(InputError) -> String? {
        switch source.raw("tag") {
        case .integer(let number)?: return String(number)
        case .number(let number)?: return "\(number)"
        default: return try source.string("tag")
        }
    }

    /// A `platform` object (`source.platform`, `params.platform`): registry-image's defaults,
    /// the running machine's OS and architecture for whichever is not given.
    static func platform(_ object: InputObject?) throws(InputError) -> Platform? {
        guard let object else { return nil }
        let host = Platform.host
        let os = try object.string("os").flatMap { $0.isEmpty ? nil : $0 }
        let architecture = try object.string("architecture").flatMap { $0.isEmpty ? nil : $0 }
        let variant = try object.string("variant").flatMap { $0.isEmpty ? nil : $0 }
        return Platform(
            os: os ?? host.os, architecture: architecture ?? host.architecture,
            variant: architecture == nil && variant == nil ? host.variant : variant)
    }

    /// `label_regex` and `annotation_regex`.
    static func metadataPatterns(_ source: InputObject) throws(InputError) -> MetadataPatterns {
        MetadataPatterns(
            labels: source.has("label_regex") ? try KeyPattern(source, "label_regex") : nil,
            annotations: source.has("annotation_regex") ? try KeyPattern(source, "annotation_regex") : nil)
    }

    /// `tag_regex` with `created_at_sort`, or nil when `tag_regex` is not set. Keys of the
    /// other image modes are refused beside it rather than ignored as registry-image does.
    static func tagRegex(_ source: InputObject) throws(InputError) -> TagRegexSelection? {
        guard source.has("tag_regex") else {
            if source.has("created_at_sort") {
                throw InputError("source.created_at_sort applies to source.tag_regex, which is not set")
            }
            return nil
        }
        if source.has("tag") {
            throw InputError(
                "source.tag and source.tag_regex are both set: give tag to follow one tag, or tag_regex to follow every matching tag"
            )
        }
        for key in ["variant", "semver_constraint", "pre_releases", "pre_release_prefixes"] where source.has(key) {
            throw InputError(
                "source.\(key) applies to semver mode, which is used only when neither source.tag nor source.tag_regex is set"
            )
        }
        return TagRegexSelection(
            pattern: try KeyPattern(source, "tag_regex"), createdAtSort: try source.bool("created_at_sort") ?? false)
    }
}
