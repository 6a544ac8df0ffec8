/// registry-image's semver mode: which tags of a repository are versions, and in what order
/// (https://github.com/concourse/registry-image-resource, `check` without `tag`).
///
/// A tag is a version when it parses as semver (after removing `-<variant>` when a variant
/// is set), satisfies the constraint, and is a final release or, with `preReleases`, a
/// prerelease whose prerelease text (`rc.1` of `1.2.0-rc.1`) starts with `alpha`, `beta`,
/// `rc` or one of `preReleasePrefixes`; without extra prefixes, a prerelease text holding a
/// `-` is a variant (`1.2.0-rc.1-alpine`), not a prerelease. Tags of one
/// digest count once: a final release beats a prerelease, and more parts beat fewer
/// (`3.2.1` over `3.2` over `3`). The bare tag (`latest`, or the variant itself) comes last,
/// and only when its image is not already a listed version and no constraint is set.
public struct SemverSelection: Sendable {
    public var variant: String?
    public var constraint: VersionConstraint?
    public var preReleases: Bool
    /// Prefixes that mark a prerelease besides the built-in `alpha`, `beta` and `rc`.
    public var preReleasePrefixes: [String]

    /// The prefixes registry-image always treats as prereleases.
    public static let builtInPreReleasePrefixes = ["alpha", "beta", "rc"]

    public init(
        variant: String? = nil, constraint: VersionConstraint? = nil, preReleases: Bool = false,
        preReleasePrefixes: [String] = []
    ) {
        self.variant = variant
        self.constraint = constraint
        self.preReleases = preReleases
        self.preReleasePrefixes = preReleasePrefixes
    }

    /// The tag that plays the role of `latest`.
    public var bareTag: String { variant ?? "latest" }

    /// The version a tag stands for, nil if it is not one under these rules.
    public func version(of tag: String) -> SemanticVersion? {
        var text = tag
        if let variant {
            guard tag.hasSuffix("-" + variant) else { return nil }
            text = String(tag.dropLast(variant.count + 1))
        }
        guard let version = SemanticVersion(text) else { return nil }
        if let constraint, !constraint.allows(version) { return nil }
        if version.isPrerelease {
            // registry-image: extra prefixes are added to the built-in ones, and only without
            // them does a `-` inside the prerelease text mark a variant.
            let pre = version.prerelease.joined(separator: ".")
            guard preReleases, preReleasePrefixes.isEmpty ? !pre.contains("-") : true,
                (Self.builtInPreReleasePrefixes + preReleasePrefixes).contains(where: { pre.hasPrefix($0) })
            else { return nil }
        }
        return version
    }

    /// The tags worth resolving to digests: versions and the bare tag.
    public func candidates(_ tags: [String]) -> [String] {
        tags.filter { $0 == bareTag || version(of: $0) != nil }
    }

    /// The ordered versions, oldest first, from tags resolved to digests.
    public func versions(_ resolved: [(tag: String, digest: String)]) -> [(tag: String, digest: String)] {
        var best: [String: (tag: String, version: SemanticVersion)] = [:]
        var bare: String?
        for (tag, digest) in resolved {
            if tag == bareTag {
                bare = digest
                continue
            }
            guard let version = version(of: tag) else { continue }
            if let current = best[digest], !Self.prefer(version, over: current.version) { continue }
            best[digest] = (tag, version)
        }
        var ordered = best.map { (tag: $0.value.tag, digest: $0.key, version: $0.value.version) }
            .sorted { $0.version < $1.version || ($0.version.samePrecedence(as: $1.version) && $0.tag < $1.tag) }
            .map { (tag: $0.tag, digest: $0.digest) }
        if let bare, constraint == nil, best[bare] == nil {
            ordered.append((bareTag, bare))
        }
        return ordered
    }

    private static func prefer(_ candidate: SemanticVersion, over current: SemanticVersion) -> Bool {
        if candidate.isPrerelease != current.isPrerelease { return !candidate.isPrerelease }
        if candidate.parts != current.parts { return candidate.parts > current.parts }
        return current < candidate
    }
}
