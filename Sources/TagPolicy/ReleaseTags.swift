import OCI

/// The tags a release gets: the version itself, its `major.minor` and
/// `major` aliases, and `stable`, where no newer release owns them.
///
/// A release `1.2.3` takes `1.2` unless a newer `1.2.x` final release exists, `1` unless a
/// newer `1.x.y` exists, and `stable` unless any newer final release exists. Prereleases
/// get only their own tag, and never count as newer. A release written `v1.2.3` is also
/// tagged `v1.2.3` as written, besides the normalised `1.2.3`.
public enum ReleaseTags {
    /// - Parameter floating: the tag for the newest release: `stable`, or `latest`
    ///   for registry-image's `bump_aliases`.
    public static func tags(for release: SemanticVersion, existing: [SemanticVersion], floating: String = "stable")
        -> [String]
    {
        var tags = immutableTags(for: release)
        guard !release.isPrerelease else { return tags }
        // Only a full version (`1.2.3`, `v1.2.3`) is a release: a one- or two-part tag is an
        // alias (`1.2`, `1`) or no release at all, such as a commit tag of twelve digits.
        let newer = existing.filter { $0.parts == 3 && !$0.isPrerelease && release < $0 }
        if !newer.contains(where: { $0.major == release.major && $0.minor == release.minor }) {
            tags.append("\(release.major).\(release.minor)")
        }
        if !newer.contains(where: { $0.major == release.major }) {
            tags.append("\(release.major)")
        }
        if newer.isEmpty { tags.append(floating) }
        return tags
    }

    /// The tags of `release` that never move once they exist: the version itself, `1.2.3`,
    /// and `v1.2.3` as written. (The aliases `1.2`, `1` and `stable` move to newer releases.)
    public static func immutableTags(for release: SemanticVersion) -> [String] {
        var tags = [release.normalized]
        if release.original != release.normalized, (try? Tag(release.original)) != nil { tags.append(release.original) }
        return tags
    }
}
