import OCI

/// The labels, annotations and tags Slipway itself writes, named in one place: build-task sets
/// them; `out`, `check` and the reaper read them. A name changed here changes both sides.
public enum SlipwayVocabulary {
    /// The commit an image was built from. build-task sets it as a config label, and as an
    /// annotation on the `index.json` entry of a reused image (the commit of this run, where the
    /// label keeps the commit that first built it); `out` keys a source-keyed version on it,
    /// preferring the annotation, and the reaper reports it.
    public static let revisionLabel = "org.opencontainers.image.revision"
    /// When the commit an image was built from was made (ISO 8601). build-task sets it; the
    /// reaper ages an image by it, else by the config's `created`.
    public static let createdLabel = "org.opencontainers.image.created"
    /// The origin URL of the repository an image was built from (credentials removed).
    public static let sourceLabel = "org.opencontainers.image.source"
    /// The inputs digest (``BuildInputs``) of the build that made an image.
    public static let inputsLabel = "dev.slipway.inputs"
    /// The branch an image was built from.
    public static let branchLabel = "dev.slipway.branch"
    /// The ``BaseSummary`` of the bases an image was built from (`track_base`).
    public static let baseLabel = "dev.slipway.base"
    /// The prefix of a cache tag: `inputs-<hex of the inputs digest>`.
    public static let cacheTagPrefix = "inputs-"

    /// The content-addressed cache tag of an image built from `inputs`, as `SKIP_IF_PUBLISHED`
    /// looks it up: `inputs-<hex>`. Nil when it would not be a valid tag (only a SHA-256
    /// digest fits: 7 + 64 of the 128 characters a tag may have).
    public static func cacheTag(_ inputs: Digest) -> Tag? {
        try? Tag(cacheTagPrefix + inputs.encoded)
    }

    /// The inputs digest a cache tag names, or nil when `tag` is not one.
    public static func inputs(ofCacheTag tag: Tag) -> Digest? {
        guard tag.rawValue.hasPrefix(cacheTagPrefix),
            let digest = try? Digest("sha256:" + tag.rawValue.dropFirst(cacheTagPrefix.count)),
            cacheTag(digest) == tag
        else { return nil }
        return digest
    }
}
