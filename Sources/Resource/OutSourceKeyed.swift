import BuildContext
import Console
import Foundation
import GitSource
import ImageLayout
import OCI
import Registry
import TagPolicy
import Transfer

/// `out` with `source.git`: the image of a commit, tagged by the source's templates.
///
/// The commit comes from the image's `org.opencontainers.image.revision` label (build-task
/// sets it) or from `version_from`, a get of this resource. The first template makes the
/// immutable tag; the others, `latest` on `latest_on`, the tag file's value (with
/// `tag_prefix`), `additional_tags` and `release` make floating tags, which never move
/// backwards: a floating tag whose image was built from a newer commit (one that descends
/// from ours) is left alone, with one log line. The immutable tag never moves at all: a put
/// of another image for it fails before any tag is touched. An image labelled with its
/// inputs (`dev.slipway.inputs`) is also tagged `inputs-<hex>`, as `SKIP_IF_PUBLISHED`
/// looks it up, unless that cache tag exists. The version returned is the one `check` emits
/// for the commit.
extension Out {
    static let sourceKeyedParamKeys = [
        "image", "version_from", "additional_tags", "release", "promote", "bump_tag_file", "prune",
    ]
    /// The reaper (docs/reference.md, "Pruning").
    static let pruneKeys = ["deleted_branches", "keep", "older_than", "dry_run", "max_deletions", "cache"]

    func pushSourceKeyed(_ keyed: SourceKeyed, source: Source, request: InputObject, directory: URL, log: Log) throws
        -> Data
    {
        let params = try Self.params(request.raw("params"), source: source)
        let client = try source.client(log: log, retry: retry)
        let detector = ChangeDetector(
            configuration: keyed.git, cacheRoot: FileManager.default.temporaryDirectory, log: log)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "slipway-out-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        if let prune = try params.object("prune", keys: Self.pruneKeys) {
            let metadata = try self.prune(
                prune, keyed: keyed, source: source, client: client, detector: detector, scratch: scratch, log: log)
            guard let newest = try detector.changes(since: nil).last else {
                throw InputError("prune: no commit of the source matches its paths, so there is no version to return")
            }
            return try CanonicalJSON.encode(
                ResourceResponse(
                    version: try currentVersion(newest, keyed: keyed, source: source, detector: detector, log: log),
                    metadata: metadata))
        }

        if let bump = try params.string("bump_tag_file") {
            let request = try Self.bumpRequest(bump, directory: directory)
            let result = try detector.bumpTagFile(
                message: "Bump \(keyed.git.tagFile?.normalizedPath ?? "tag file") from {old} to {new}"
            ) { old in
                try Self.bumped(old, request)
            }
            let change = try detector.change(at: result.commit)
            return try CanonicalJSON.encode(
                ResourceResponse(
                    version: try currentVersion(change, keyed: keyed, source: source, detector: detector, log: log),
                    metadata: [
                        ["name": "commit", "value": result.commit.rawValue], ["name": "old", "value": result.oldValue],
                        ["name": "new", "value": result.newValue],
                    ]))
        }

        if let promote = try params.object("promote", keys: Self.promoteKeys, secrets: ["password"]) {
            return try promoteSourceKeyed(
                promote, keyed: keyed, source: source, client: client, detector: detector, directory: directory,
                scratch: scratch, log: log)
        }

        return try pushImage(
            params, keyed: keyed, source: source, client: client, detector: detector, directory: directory,
            scratch: scratch, log: log)
    }

    /// The put of an image: its commit's tags (``SourceKeyedTagPlan``), the immutable and
    /// release tags first, then signatures, the cache tag, and the floating tags, each only
    /// if no newer commit's image holds it.
    func pushImage(
        _ params: InputObject, keyed: SourceKeyed, source: Source, client: RegistryClient, detector: ChangeDetector,
        directory: URL, scratch: URL, log: Log
    ) throws -> Data {
        guard let pattern = try params.string("image") else {
            throw InputError("params.image is required (or params.promote): the image to push, e.g. image/oci")
        }
        let imagePath = try Self.match(pattern, in: directory)
        let image = try ImageInput.open(imagePath, scratch: scratch.appendingPathComponent("image"))
        let statements = try Self.statements(besides: imagePath, in: directory)
        try Self.checkStatements(statements, for: image.descriptor.digest, source: source, log: log)
        let commit = try self.commit(of: image, params: params, directory: directory)
        let change = try detector.change(at: commit)
        let base = try keyed.trackBase == nil ? nil : labelledBase(of: image)
        let context = TagContext(
            commit: commit.rawValue, branch: keyed.git.branch?.rawValue, base: base, tagFile: change.tagFileValue,
            release: change.release)
        let additional =
            try params.string("additional_tags").map {
                try Self.paramFile($0, param: "params.additional_tags", directory: directory).split(
                    whereSeparator: \.isWhitespace
                ).map(String.init)
            } ?? []
        let plan = try SourceKeyedTagPlan(keyed, context: context, commit: commit, additionalTags: additional)
        let immutable = plan.immutable
        let releaseTags = try Self.releaseTags(
            params, directory: directory, client: client, repository: source.repository, digest: image.descriptor.digest
        )

        // The immutable tag never moves: checked before any tag is pushed.
        let held = try client.manifestDescriptor(source.repository, .tag(immutable))?.digest
        if let conflict = Self.immutableConflict(
            immutable, in: source.repository, holds: held, ours: image.descriptor.digest)
        {
            throw InputError(conflict)
        }
        let transfer = ImageTransfer(log: log, progress: ProgressReporter(log: log))
        let report = try transfer.push(image, with: client, to: source.repository, tags: [immutable] + releaseTags)
        // Signed before any floating tag moves, so a verifying get never sees it unsigned.
        let signed = try sign(
            report.digest, registry: source.registry, repository: source.repository, client: client, source: source,
            statements: statements, log: log)
        let cacheTag = try tagInputs(of: image, client: client, source: source, log: log)
        let floating = plan.floating.filter { !releaseTags.contains($0) }
        let createOnce = plan.createOnce
        let (moved, heldBack) = try moveFloating(
            floating, createOnce: createOnce, commit: commit, image: image, digest: report.digest,
            client: client, source: source, detector: detector, scratch: scratch, log: log)
        try settle(
            moved.filter { !createOnce.contains($0) }, commit: commit, image: image, client: client, source: source,
            detector: detector, scratch: scratch, log: log)

        let pushed = ([immutable] + releaseTags + moved).map(\.rawValue)
        log.info(
            "pushed \(source.repository)@\(report.digest) for \(commit.short) as \(pushed.joined(separator: ", "))")
        var metadata = [
            ["name": "commit", "value": commit.rawValue], ["name": "digest", "value": report.digest.rawValue],
            ["name": "tags", "value": pushed.joined(separator: " ")],
        ]
        if !heldBack.isEmpty { metadata.append(["name": "held_back", "value": heldBack.joined(separator: " ")]) }
        if let cacheTag { metadata.append(["name": "cache_tag", "value": cacheTag.rawValue]) }
        metadata += signed
        return try CanonicalJSON.encode(
            ResourceResponse(version: SourceVersion(change, base: base), metadata: metadata))
    }

    /// track_base: the bases the image was built from, as build-task labelled them.
    func labelledBase(of image: LayoutImage) throws -> Digest {
        guard let label = try anyConfiguration(of: image).config?.labels?[SlipwayVocabulary.baseLabel] else {
            throw InputError(
                "source.track_base: the image has no \(SlipwayVocabulary.baseLabel) label; build it with build-task (BASE_DIGESTS_FILE from the get's base_digests.json)"
            )
        }
        do { return try Digest(label) } catch {
            throw InputError("the image's \(SlipwayVocabulary.baseLabel) label: \(error)")
        }
    }

    /// Points each `floating` tag at the pushed image, in order, unless it is made once
    /// (`createOnce`) and holds another image, or a newer commit's image holds it: the tags
    /// moved, and those held back.
    func moveFloating(
        _ floating: [Tag], createOnce: Set<Tag>, commit: GitCommitID, image: LayoutImage, digest: Digest,
        client: RegistryClient,
        source: Source, detector: ChangeDetector, scratch: URL, log: Log
    ) throws -> (moved: [Tag], heldBack: [String]) {
        var moved: [Tag] = []
        var heldBack: [String] = []
        for tag in floating {
            if createOnce.contains(tag), let held = try client.manifestDescriptor(source.repository, .tag(tag))?.digest,
                held != digest
            {
                log.info(
                    "leaving \(tag) where it is: it holds \(held), and a version-shaped tag from the tag file is made once, never moved"
                )
                heldBack.append(tag.rawValue)
                continue
            }
            if let reason = try newerHolder(
                of: tag, than: commit, digest: digest, client: client, source: source, detector: detector,
                scratch: scratch)
            {
                log.info("leaving \(tag) where it is: \(reason)")
                heldBack.append(tag.rawValue)
                continue
            }
            try client.putManifest(
                source.repository, .tag(tag), bytes: image.bytes, mediaType: image.descriptor.mediaType)
            moved.append(tag)
        }
        return (moved, heldBack)
    }

    /// Why the put must not go ahead, or nil: the immutable `tag` already `holds` another image
    /// than `ours`. The same image again (Concourse retries puts) is fine.
    static func immutableConflict(_ tag: Tag, in repository: Repository, holds: Digest?, ours: Digest) -> String? {
        guard let holds, holds != ours else { return nil }
        return
            "the immutable tag \(repository):\(tag) already holds \(holds), not this image \(ours); it never moves, so nothing was pushed. "
            + "Two images claim one version: set source.track_base so the version carries the base, "
            + "or make the first of source.tags tell the images apart"
    }

    /// What the `dev.slipway.inputs` labels of an image's manifests (nil: unlabelled) make:
    /// nothing when none has one, its cache tag when all agree, else why not.
    enum InputsTag: Equatable {
        case none
        case tag(Tag)
        case unusable(String)
    }

    static func inputsTag(_ labels: [String?]) -> InputsTag {
        let values = Set(labels.compactMap { $0 })
        guard let value = values.first else { return .none }
        guard values.count == 1, !labels.contains(nil) else {
            return .unusable(
                "its manifests do not all carry one \(SlipwayVocabulary.inputsLabel) label (\(values.sorted().joined(separator: ", ")))"
            )
        }
        guard let digest = try? Digest(value), let tag = SlipwayVocabulary.cacheTag(digest) else {
            return .unusable("its \(SlipwayVocabulary.inputsLabel) label \(quoted(value)) is not a sha256 digest")
        }
        return .tag(tag)
    }

    /// Tags the pushed `image` with its inputs (`inputs-<hex>`, as build-task's
    /// `SKIP_IF_PUBLISHED` looks it up) when it is labelled with them and that cache tag does
    /// not exist yet: the first image published for some inputs keeps the tag. Returns the
    /// tag when this put made it.
    func tagInputs(of image: LayoutImage, client: RegistryClient, source: Source, log: Log) throws -> Tag? {
        var labels: [String?] = []
        switch image.manifest {
        case .image:
            labels.append(try image.configuration().config?.labels?[SlipwayVocabulary.inputsLabel])
        case .index(let index):
            // Every platform's image (not attestations, whose platform is unknown/unknown).
            for child in index.manifests where child.mediaType.isImageManifest && child.platform?.os != "unknown" {
                guard
                    case .image(let manifest) = try Manifest.decode(
                        image.layout.blob(child), mediaType: child.mediaType)
                else { continue }
                let configuration = try JSONDecoder().decode(
                    ImageConfiguration.self, from: image.layout.blob(manifest.config))
                labels.append(configuration.config?.labels?[SlipwayVocabulary.inputsLabel])
            }
        }
        switch Self.inputsTag(labels) {
        case .none:
            return nil
        case .unusable(let why):
            log.info("no inputs tag for \(image.descriptor.digest): \(why)")
            return nil
        case .tag(let tag):
            if let existing = try client.manifestDescriptor(source.repository, .tag(tag)) {
                let whose =
                    existing.digest == image.descriptor.digest
                    ? "this image" : "\(existing.digest), published first for these inputs"
                log.info("leaving \(tag) where it is: it holds \(whose)")
                return nil
            }
            try client.putManifest(
                source.repository, .tag(tag), bytes: image.bytes, mediaType: image.descriptor.mediaType)
            log.info("tagged \(source.repository):\(tag) so that SKIP_IF_PUBLISHED finds this image")
            return tag
        }
    }

    /// `major`, `minor` or `patch` of the current semantic version (a `v` prefix kept), or a
    /// literal new value.
    static func bumped(_ old: String, _ how: String) throws -> String {
        guard ["major", "minor", "patch"].contains(how) else { return how }
        guard let version = SemanticVersion(old) else {
            throw InputError(
                "params.bump_tag_file: \(how) needs a semantic version in the tag file, which holds \(quoted(old))")
        }
        let prefix = old.hasPrefix("v") ? "v" : old.hasPrefix("V") ? "V" : ""
        switch how {
        case "major": return "\(prefix)\(version.major + 1).0.0"
        case "minor": return "\(prefix)\(version.major).\(version.minor + 1).0"
        default: return "\(prefix)\(version.major).\(version.minor).\(version.patch + 1)"
        }
    }

    /// The version check emits now for `change`: with `track_base`, its bases as they are now.
    func currentVersion(_ change: SourceChange, keyed: SourceKeyed, source: Source, detector: ChangeDetector, log: Log)
        throws -> SourceVersion
    {
        guard let trackBase = keyed.trackBase else { return SourceVersion(change) }
        let bases = try BaseTracker(trackBase: trackBase, source: source, retry: retry, log: log).bases(
            at: change.commit, detector: detector)
        return SourceVersion(change, base: BaseSummary.digest(bases))
    }

    /// The commit the image was built from: `version_from`'s `ref` (our get) or `.git/ref`
    /// (a git-resource get), else the `org.opencontainers.image.revision` annotation of the
    /// layout's `index.json` entry (build-task writes it when `SKIP_IF_PUBLISHED` reused an
    /// image first built from another commit), else the image's revision label.
    func commit(of image: LayoutImage, params: InputObject, directory: URL) throws -> GitCommitID {
        if let from = try params.string("version_from") {
            let base = try Self.paramDirectory(from, param: "params.version_from", directory: directory)
            for file in ["ref", ".git/ref"] {
                if let text = try Self.paramFileIfPresent(
                    from + "/" + file, param: "params.version_from", directory: directory)
                {
                    do { return try GitCommitID(text.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
                        throw params.invalid("version_from", "\(base.appendingPathComponent(file).path): \(error)")
                    }
                }
            }
            throw params.invalid(
                "version_from", "\(base.path) has no ref file (give the directory of a get of this resource)")
        }
        if let entries = try? image.layout.index().manifests, entries.count == 1,
            let annotated = entries[0].annotations?[SlipwayVocabulary.revisionLabel]
        {
            do { return try GitCommitID(annotated) } catch {
                throw InputError("the layout's \(SlipwayVocabulary.revisionLabel) annotation: \(error)")
            }
        }
        let labels = try anyConfiguration(of: image).config?.labels ?? [:]
        guard let text = labels[SlipwayVocabulary.revisionLabel] else {
            throw InputError(
                "cannot tell which commit the image was built from: it has no \(SlipwayVocabulary.revisionLabel) label; build it with build-task or set params.version_from"
            )
        }
        do { return try GitCommitID(text) } catch {
            throw InputError("the image's \(SlipwayVocabulary.revisionLabel) label: \(error)")
        }
    }

    /// The configuration of the host's manifest, else of the first one (all platforms of one
    /// build share the revision).
    func anyConfiguration(of image: LayoutImage) throws -> ImageConfiguration {
        if let configuration = try? image.configuration() { return configuration }
        guard case .index(let index) = image.manifest,
            let first = index.manifests.first(where: { $0.mediaType.isImageManifest })
        else {
            return try image.configuration()
        }
        return try image.configuration(for: first.platform)
    }

    /// The digest a reference points at and the commit its image was built from, if labelled.
    func revision(of reference: Reference, client: RegistryClient, repository: Repository, scratch: URL) throws -> (
        digest: Digest, revision: GitCommitID?
    )? {
        let top: ManifestResponse
        do { top = try client.manifest(repository, reference) } catch let error as RegistryError
            where error.kind == .notFound
        {
            return nil
        }
        var manifest = try top.decode()
        if case .index(let index) = manifest,
            let child = index.manifest(for: Platform.host)
                ?? index.manifests.first(where: { $0.mediaType.isImageManifest })
        {
            manifest = try client.manifest(repository, .digest(child.digest)).decode()
        }
        guard case .image(let image) = manifest, image.config.size <= 4 << 20 else { return (top.digest, nil) }
        let file = scratch.appendingPathComponent("config-\(image.config.digest.encoded)")
        try client.downloadBlob(repository, image.config, to: file)
        let configuration = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(contentsOf: file))
        let label = configuration?.config?.labels?[SlipwayVocabulary.revisionLabel]
        return (top.digest, label.flatMap { try? GitCommitID($0) })
    }

    /// The image `tag` holds when it is not `ours`: a HEAD answers the common case (absent, or
    /// already ours) without fetching a manifest and a config.
    func otherImage(at tag: Tag, than ours: Digest, client: RegistryClient, source: Source, scratch: URL) throws
        -> (digest: Digest, revision: GitCommitID?)?
    {
        guard let head = try client.manifestDescriptor(source.repository, .tag(tag)), head.digest != ours else {
            return nil
        }
        return try revision(of: .digest(head.digest), client: client, repository: source.repository, scratch: scratch)
    }

    /// Why `tag` must stay where it is, or nil to move it: it stays when its image was built
    /// from a commit that descends from ours.
    func newerHolder(
        of tag: Tag, than ours: GitCommitID, digest: Digest, client: RegistryClient, source: Source,
        detector: ChangeDetector, scratch: URL
    ) throws -> String? {
        guard let current = try otherImage(at: tag, than: digest, client: client, source: source, scratch: scratch),
            current.digest != digest, let theirs = current.revision, theirs != ours
        else { return nil }
        guard (try? detector.isAncestor(ours, of: theirs)) == true else { return nil }
        return "it holds \(theirs.short), which is newer than \(ours.short)"
    }

    /// Reads back the floating tags just moved and puts ours again on any that an older
    /// commit's concurrent `out` overwrote meanwhile (registries have no compare-and-swap, so
    /// a check-then-put can race; the newest writer repairs).
    func settle(
        _ tags: [Tag], commit: GitCommitID, image: LayoutImage, client: RegistryClient, source: Source,
        detector: ChangeDetector, scratch: URL, log: Log
    ) throws {
        guard !tags.isEmpty else { return }
        for _ in 0..<settleRounds {
            Thread.sleep(forTimeInterval: settleInterval)
            for tag in tags {
                guard
                    let current = try otherImage(
                        at: tag, than: image.descriptor.digest, client: client, source: source, scratch: scratch),
                    current.digest != image.descriptor.digest, let theirs = current.revision, theirs != commit,
                    (try? detector.isAncestor(theirs, of: commit)) == true
                else { continue }
                log.info("\(tag) was moved back to \(theirs.short) by a concurrent put; putting \(commit.short) again")
                try client.putManifest(
                    source.repository, .tag(tag), bytes: image.bytes, mediaType: image.descriptor.mediaType)
            }
        }
    }
}
