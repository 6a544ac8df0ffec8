import BuildContext
import Foundation
import GitSource
import OCI
import Registry
import TagPolicy

// Where out chooses its tags: image mode by registry-image's rules (`pushTags`), a source
// with `git` by ``SourceKeyedTagPlan``.

extension Out {
    /// registry-image's tags: `source.tag`; `version` (normalised, `-variant` appended) and,
    /// with `bump_aliases`, `1.2`, `1` and the bare tag where no newer release owns them;
    /// the words of the `additional_tags` file, each with `tag_prefix`.
    ///
    /// In variant mode every version tag carries `-variant`, the version's own included
    /// (`2.0.0-alpine`), as registry-image's do: the first tag is the version `out` returns,
    /// and `check` with the same variant sees only `-variant` tags, so it must emit that one.
    func pushTags(source: Source, params: InputObject, directory: URL, client: RegistryClient) throws -> [Tag] {
        var names: [String] = []
        if case .tag(let tag) = source.mode { names.append(tag.rawValue) }
        let variant: String? = if case .semver(let selection) = source.mode { selection.variant } else { nil }
        if let text = try params.string("version") {
            guard let version = SemanticVersion(text) else {
                throw params.invalid(
                    "version", "\"\(InputObject.printable(text))\" is not a semantic version (e.g. 1.2.3)")
            }
            let suffix = variant.map { "-" + $0 } ?? ""
            if try params.bool("bump_aliases") == true {
                let selection = SemverSelection(variant: variant, preReleases: true)
                let existing = try client.tags(source.repository).compactMap { selection.version(of: $0.rawValue) }
                let floating = variant ?? "latest"
                for name in ReleaseTags.tags(for: version, existing: existing, floating: floating) {
                    names.append(name == floating ? name : name + suffix)
                }
            } else {
                names.append(version.normalized + suffix)
            }
        } else if params.has("bump_aliases") {
            throw params.invalid("bump_aliases", "needs params.version")
        }
        let prefix = try params.string("tag_prefix") ?? ""
        if let file = try params.string("additional_tags") {
            let text = try Self.paramFile(file, param: "\(params.path).additional_tags", directory: directory)
            names += text.split(whereSeparator: \.isWhitespace).map { prefix + $0 }
        } else if params.has("tag_prefix") {
            throw params.invalid("tag_prefix", "applies to additional_tags, which is not set")
        }
        guard !names.isEmpty else {
            throw InputError("nothing to tag: set source.tag, params.version or params.additional_tags")
        }
        var seen = Set<String>()
        return try names.filter { seen.insert($0).inserted }.map { name in
            do { return try Tag(name) } catch { throw InputError("cannot push tag: \(error)") }
        }
    }
}

/// Where a source-keyed `out` chooses its tags, decided before anything is read from or
/// written to a registry: the immutable tag (the first template), the floating tags (the
/// other templates, `latest` on `latest_on`, the tag file's value with `tag_prefix`, the
/// task's `additional_tags`), and which of them are made once and never moved (versions from
/// the tag file). Names from the repository or a task's output that would take a tag of
/// another meaning are refused here, in one line (docs/reference.md, "Reserved tags").
///
/// `release` tags are not here: whether they may be made depends on what the registry holds
/// (`Out.releaseTags`). `Out.pushSourceKeyed` carries the plan out.
struct SourceKeyedTagPlan: Equatable {
    var immutable: Tag
    /// In the order above, each once, without the immutable tag.
    var floating: [Tag]
    /// Floating tags made when missing and never moved: versions from the tag file.
    var createOnce: Set<Tag>

    init(immutable: Tag, floating: [Tag], createOnce: Set<Tag>) {
        self.immutable = immutable
        self.floating = floating
        self.createOnce = createOnce
    }

    /// The plan for `commit`, whose templates render from `context`.
    /// - Parameter additionalTags: the words of the `additional_tags` file, if any.
    init(_ keyed: SourceKeyed, context: TagContext, commit: GitCommitID, additionalTags: [String]) throws {
        let reserved = Self.reservedTags(keyed)
        let immutable: Tag
        do { immutable = try keyed.templates[0].render(context) } catch { throw InputError("source.tags: \(error)") }
        if let refusal = Self.templateRefusal(keyed.templates[0], renders: immutable, reserved: reserved, first: true) {
            throw InputError(refusal)
        }
        // A tag file usually holds a version (`ci/pipelines/000-base-and-prebuilt.yml` tags
        // prebuilt images `v2.1.0`): such a tag is made once and never moved, as a release's
        // own tag, so a value naming an existing release cannot take it over.
        var createOnce: Set<Tag> = []
        var floating: [Tag] = []
        for template in keyed.templates.dropFirst() {
            let tag: Tag
            do { tag = try template.render(context) } catch { throw InputError("source.tags: \(error)") }
            if let refusal = Self.templateRefusal(template, renders: tag, reserved: reserved, first: false) {
                throw InputError(refusal)
            }
            if Self.versionTagMadeOnce(template, renders: tag, first: false) { createOnce.insert(tag) }
            floating.append(tag)
        }
        if let latestOn = keyed.latestOn, latestOn == keyed.git.branch?.rawValue { floating.append(.latest) }
        if let value = context.tagFile {
            let tag = TagSanitizer.tag((keyed.tagPrefix ?? "") + value)
            if let why = reserved.reasonBesidesRelease(for: tag) {
                throw InputError(
                    "source.tag_file: its value at \(commit.short) makes the tag \(quoted(tag.rawValue)), which is \(why); a tag from the repository cannot take it: set source.tag_prefix (e.g. \"v-\") to namespace the tag file's tags"
                )
            }
            if ReservedTags.isReleaseTag(tag.rawValue) { createOnce.insert(tag) }
            floating.append(tag)
        }
        for word in additionalTags {
            let tag = TagSanitizer.tag(word)
            if let why = reserved.reason(for: tag) {
                throw InputError(
                    "params.additional_tags: \(quoted(tag.rawValue)) is \(why); a task's output cannot take it: use source.latest_on or params.release for those tags, or prefix the file's tags"
                )
            }
            floating.append(tag)
        }
        var seen: Set<Tag> = [immutable]
        self.init(immutable: immutable, floating: floating.filter { seen.insert($0).inserted }, createOnce: createOnce)
    }

    /// The tags repository content may not take in this source (see ``ReservedTags``):
    /// Slipway's cache tags and cosign's attachment tags (`sha256-<hex>.sig`, see
    /// `CosignVocabulary.tag`) besides the source's own.
    static func reservedTags(_ keyed: SourceKeyed) -> ReservedTags {
        ReservedTags(immutableTemplate: keyed.templates[0], prefixes: [SlipwayVocabulary.cacheTagPrefix, "sha256-"])
    }

    /// Why `tag`, rendered by `template` from repository content, must not be pushed, or nil.
    /// A template without `{branch}`, `{tag_file}` or `{release}` is the pipeline's own text.
    /// A version-shaped rendering is refused only from a branch: the first template's tag
    /// never moves anyway, `{release}` is the release itself, and a `{tag_file}` one is made
    /// once and never moved (``versionTagMadeOnce(_:renders:first:)``).
    static func templateRefusal(_ template: TagTemplate, renders tag: Tag, reserved: ReservedTags, first: Bool)
        -> String?
    {
        guard template.usesRepositoryContent else { return nil }
        let why =
            first || !template.description.contains("{branch}")
            ? reserved.reasonBesidesRelease(for: tag, againstImmutableTemplate: !first)
            : reserved.reason(for: tag, againstImmutableTemplate: !first)
        guard let why else { return nil }
        return
            "source.tags: \(quoted(template.description)) renders \(quoted(tag.rawValue)) from the repository (its branch, tag file or git tag), which is \(why); "
            + "a tag from the repository cannot take it: namespace it in the template, e.g. \"branch-{branch}\""
    }

    /// Whether a floating `tag` of `template` is made once and never moved: a version
    /// (`1.2.3`, `v2.1.0`, `1.2`) taken from the tag file.
    static func versionTagMadeOnce(_ template: TagTemplate, renders tag: Tag, first: Bool) -> Bool {
        !first && template.description.contains("{tag_file}") && !template.description.contains("{release}")
            && ReservedTags.isReleaseTag(tag.rawValue)
    }
}
