import OCI

/// The tags a source-keyed source's own rules give out, which a name taken from repository
/// content (a branch in `{branch}`, a tag file's value, a git tag in `{release}`) or from a
/// task's output (`additional_tags`) must never take.
///
/// Why: a floating tag moves to the image of any newer commit, so a branch named
/// `0123456789ab` (another commit's immutable tag), or a tag file saying `stable`, would
/// move that tag onto whatever image the branch builds; the ancestry guard does not stop it,
/// because the attacker's commit descends from the one whose tag it takes.
///
/// Reserved: `latest` (`latest_on`) and `stable` (`release`); anything shaped like an
/// immutable commit tag: 12 or 40 lowercase hex digits (`{short_ref}`, `{ref}`),
/// `<12 hex>-<12 hex>` (`{short_ref}-{short_base}`), or a rendering of the source's first
/// template for another commit; a release version's tags (`1.2.3`, `v1.2.3`, `1.2.3-rc.1`,
/// `1.2`, `1`), which `release` and `promote.release` make; and tags that start with one of
/// `prefixes` (Slipway's cache tags, cosign's attachment tags).
public struct ReservedTags: Sendable {
    public let immutableTemplate: TagTemplate
    public let prefixes: [String]

    public init(immutableTemplate: TagTemplate, prefixes: [String] = []) {
        self.immutableTemplate = immutableTemplate
        self.prefixes = prefixes
    }

    /// Why `tag` is reserved, or nil when a name from repository content may take it.
    /// - Parameters:
    ///   - releaseAllowed: a git tag rendered by `{release}` is the release itself, so a
    ///     version there is the point, not a collision.
    ///   - againstImmutableTemplate: compare with the renderings of the first template
    ///     (false when `tag` is that template's own rendering).
    public func reason(for tag: Tag, releaseAllowed: Bool = false, againstImmutableTemplate: Bool = true) -> String? {
        if let why = reasonBesidesRelease(for: tag, againstImmutableTemplate: againstImmutableTemplate) { return why }
        if !releaseAllowed, Self.isReleaseTag(tag.rawValue) {
            return "shaped like a release's tag, which only params.release and promote.release make"
        }
        return nil
    }

    /// As ``reason(for:releaseAllowed:againstImmutableTemplate:)`` with release versions allowed.
    public func reasonBesidesRelease(for tag: Tag, againstImmutableTemplate: Bool = true) -> String? {
        let name = tag.rawValue
        switch name {
        case "latest": return "the tag latest_on moves"
        case "stable": return "the tag a release moves"
        default: break
        }
        if let prefix = prefixes.first(where: { name.hasPrefix($0) }) {
            return "a tag Slipway itself makes (\(prefix)…)"
        }
        if Self.isHex(name, count: 12) || Self.isHex(name, count: 40) || Self.isCommitAndBase(name) {
            return "shaped like a commit's immutable tag"
        }
        if againstImmutableTemplate, immutableTemplate.couldRenderForAnotherCommit(name) {
            return "shaped like a commit's immutable tag (source.tags' first template \(immutableTemplate.description))"
        }
        return nil
    }

    /// `1.2.3`, `v1.2.3`, `1.2.3-rc.1` (a full version, as written) and the aliases `1.2`, `1`.
    public static func isReleaseTag(_ name: String) -> Bool {
        guard let version = SemanticVersion(name), version.build == nil else { return false }
        return version.parts == 3 || !version.isPrerelease
    }

    static func isHex(_ text: Substring, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    static func isHex(_ text: String, count: Int) -> Bool { isHex(Substring(text), count: count) }

    static func isCommitAndBase(_ name: String) -> Bool {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && isHex(parts[0], count: 12) && isHex(parts[1], count: 12)
    }
}

extension TagTemplate {
    /// The placeholders whose values come from repository content.
    public static let repositoryPlaceholders = ["branch", "tag_file", "release"]

    /// Whether a rendering takes text from repository content (a branch, a tag file, a git tag).
    public var usesRepositoryContent: Bool {
        Self.repositoryPlaceholders.contains { description.contains("{\($0)}") }
    }

    /// Whether this template, when it names a commit (`{ref}` or `{short_ref}`), could render
    /// `name` for some commit: `{ref}` as 40 hex digits, `{short_ref}` and `{short_base}` as
    /// 12, the repository placeholders as any non-empty text, the rest literally.
    func couldRenderForAnotherCommit(_ name: String) -> Bool {
        guard description.contains("{ref}") || description.contains("{short_ref}") else { return false }
        enum Piece {
            case literal(Character)
            case hex(Int)
            case any
        }
        var pieces: [Piece] = []
        var rest = Substring(description)
        while let first = rest.first {
            if first == "{", let close = rest.firstIndex(of: "}") {
                switch rest[rest.index(after: rest.startIndex)..<close] {
                case "ref": pieces.append(.hex(40))
                case "short_ref", "short_base": pieces.append(.hex(12))
                default: pieces.append(.any)
                }
                rest = rest[rest.index(after: close)...]
            } else {
                pieces.append(.literal(first))
                rest = rest.dropFirst()
            }
        }
        let characters = Array(name)
        // Small backtracking match: templates have a handful of pieces.
        func match(_ piece: Int, _ at: Int) -> Bool {
            guard piece < pieces.count else { return at == characters.count }
            switch pieces[piece] {
            case .literal(let character):
                return at < characters.count && characters[at] == character && match(piece + 1, at + 1)
            case .hex(let count):
                guard at + count <= characters.count,
                    characters[at..<at + count].allSatisfy({ $0.isASCII && ($0.isNumber || ("a"..."f").contains($0)) })
                else { return false }
                return match(piece + 1, at + count)
            case .any:
                guard at < characters.count else { return false }
                return (at + 1...characters.count).contains { match(piece + 1, $0) }
            }
        }
        return match(0, 0)
    }
}
