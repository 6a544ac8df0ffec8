import BuildContext
import Console
import Foundation
import GitSource
import OCI
import Registry
import Signing

/// `out` with `params.prune`: the reaper, planned by ``PrunePlanner``.
///
/// A dry run (the default) only logs the plan and returns it as metadata. Otherwise the
/// registry is read a second time just before deleting: a candidate whose tag moved since
/// the plan is left alone, and a digest that a tag created meanwhile reaches is only
/// untagged. A tag is removed on its own by pointing it at a unique, empty manifest and
/// deleting that manifest (distribution has no tag delete, and deleting a digest deletes
/// every tag on it). Blobs are freed by the registry's garbage collection, run without
/// `--delete-untagged`, which breaks multi-arch images (measured against distribution 2.8.2).
extension Out {
    /// What `params.prune` asks for: the planner's options and the cache repository's object.
    static func pruneOptions(_ params: InputObject) throws -> (options: PrunePlanner.Options, cache: InputObject?) {
        var options = PrunePlanner.Options()
        options.deletedBranches = try params.bool("deleted_branches") ?? true
        options.keep = try params.integer("keep", in: 0...1_000_000)
        if let text = try params.string("older_than") {
            guard let age = PrunePlanner.age(text) else {
                throw params.invalid("older_than", "\(quoted(text)) is not an age such as 14d, 12h or 30m")
            }
            options.olderThan = age
        }
        options.dryRun = try params.bool("dry_run") ?? true
        options.maxDeletions = try params.integer("max_deletions", in: 1...100_000) ?? 50
        let cache = try params.object("cache", keys: Self.pruneCacheKeys, secrets: ["password"])
        guard options.deletedBranches || options.keep != nil || cache != nil else {
            throw InputError("params.prune: nothing to do; set deleted_branches: true, keep: N or cache")
        }
        return (options, cache)
    }

    func prune(
        _ params: InputObject, keyed: SourceKeyed, source: Source, client: RegistryClient, detector: ChangeDetector,
        scratch: URL, log: Log
    )
        throws -> [[String: String]]
    {
        let (options, cache) = try Self.pruneOptions(params)
        // build-task's cache repository first, on its own: its images are aged out by its TTL alone.
        let cacheMetadata =
            try cache.map {
                try pruneCache(
                    $0, source: source, client: client, dryRun: options.dryRun, maxDeletions: options.maxDeletions,
                    scratch: scratch, log: log)
            } ?? []
        guard options.deletedBranches || options.keep != nil else { return cacheMetadata }

        let live = options.deletedBranches ? try detector.remoteBranches() : []
        let planner = PrunePlanner(templates: keyed.templates, options: options, now: Date())
        let states = try tagStates(client: client, repository: source.repository, scratch: scratch)
        let plan = planner.plan(states, live: live)
        for removal in plan.removedTags {
            log.info(
                "\(options.dryRun ? "would remove" : "removing") \(removal.tag) (\(removal.digest.rawValue.prefix(19))…): \(removal.reason)"
            )
        }
        for removal in plan.deferred {
            log.info("leaving \(removal.tag) for the next run (max_deletions \(options.maxDeletions))")
        }
        log.info(
            "prune: \(plan.removedTags.count) tags to remove, \(plan.kept.count) kept\(options.dryRun ? " (dry run: nothing deleted; set dry_run: false)" : "")"
        )

        var removed: [String] = []
        if !options.dryRun {
            let outcome = try carryOut(
                plan, states: states, client: client, repository: source.repository, scratch: scratch, log: log)
            removed = outcome.removed
            log.info(
                "prune: removed \(removed.count) tags\(outcome.skipped.isEmpty ? "" : ", left \(outcome.skipped.count) that moved")"
            )
        }
        var metadata = [
            [
                "name": options.dryRun ? "would_remove" : "removed",
                "value": (options.dryRun ? plan.removedTags.map(\.tag.rawValue) : removed).joined(separator: " "),
            ],
            ["name": "kept", "value": String(plan.kept.count)],
        ]
        if !plan.deferred.isEmpty {
            metadata.append(["name": "deferred", "value": plan.deferred.map(\.tag.rawValue).joined(separator: " ")])
        }
        return metadata + cacheMetadata
    }

    /// Carries out `plan` (read from `states`) against the registry as it is now: the tags
    /// removed, and those left because they moved since the plan. Kept whole: each deletion
    /// depends on the tags re-read just before it and on what earlier deletions removed.
    func carryOut(
        _ plan: PrunePlanner.Plan, states: [PrunePlanner.TagState], client: RegistryClient, repository: Repository,
        scratch: URL, log: Log
    ) throws -> (removed: [String], skipped: [String]) {
        var removed: [String] = []
        var skipped: [String] = []
        // The registry again, just before deleting: tags move and appear during a run.
        // Only each tag's digest is asked again; manifests and labels already read are reused.
        let known = Dictionary(states.map { ($0.digest, $0) }, uniquingKeysWith: { first, _ in first })
        let now = Dictionary(
            try tagStates(client: client, repository: repository, scratch: scratch, known: known).map { ($0.tag, $0) },
            uniquingKeysWith: { first, _ in first })
        let planned = Set(plan.removedTags.map(\.tag))
        let reachable = Set(now.values.filter { !planned.contains($0.tag) }.flatMap { [$0.digest] + $0.children })
        func unchanged(_ removal: PrunePlanner.Removal) -> Bool {
            guard now[removal.tag]?.digest == removal.digest else {
                log.info("leaving \(removal.tag): it moved during the run")
                skipped.append(removal.tag.rawValue)
                return false
            }
            return true
        }
        var untag = plan.untag.filter(unchanged)
        var gone = Set<Digest>()
        for deletion in plan.delete {
            let (digest, tags) = (deletion.digest, deletion.tags)
            let still = tags.filter(unchanged)
            // All of this digest's tags must still be candidates, and nothing kept may reach it now.
            if reachable.contains(digest) || still.count != tags.count {
                untag += still
                continue
            }
            // Its OCI 1.1 referrers (signatures, attestations) go with it; listed first.
            let referrers = try AttachmentStore(client: client, repository: repository).allReferrers(of: digest)
            try client.deleteManifest(repository, digest)
            gone.insert(digest)
            try deleteReferrers(referrers, of: digest, client: client, repository: repository, log: log)
            removed += still.map(\.tag.rawValue)
        }
        for removal in untag {
            try untagOnly(removal.tag, client: client, repository: repository)
            removed.append(removal.tag.rawValue)
        }
        for child in plan.children where !reachable.contains(child) {
            do { try client.deleteManifest(repository, child) } catch let error as RegistryError
                where error.kind == .notFound
            {}
            gone.insert(child)
        }
        // Signatures and attestations of images that are gone now, whatever they hold now
        // (a signature appended since the plan is still of the deleted image).
        for attachment in plan.attachments {
            guard let (image, _) = CosignVocabulary.attachment(of: attachment.tag), gone.contains(image),
                let current = now[attachment.tag]?.digest
            else { continue }
            do { try client.deleteManifest(repository, current) } catch let error as RegistryError
                where error.kind == .notFound
            {}
            removed.append(attachment.tag.rawValue)
        }
        return (removed, skipped)
    }

    /// Every tag of `repository` with its digest, an index's children, and the labels of its
    /// image (for an index, of its first image). One HEAD per tag; one GET per digest.
    /// `known`: states already read, by digest (a manifest's content never changes).
    func tagStates(
        client: RegistryClient, repository: Repository, scratch: URL,
        known: [Digest: PrunePlanner.TagState] = [:]
    ) throws -> [PrunePlanner.TagState] {
        var byDigest = known
        var states: [PrunePlanner.TagState] = []
        for tag in try client.tags(repository) {
            guard let head = try client.manifestDescriptor(repository, .tag(tag)) else { continue }
            // cosign's tags: only their digest matters (they go with their image).
            if CosignVocabulary.attachment(of: tag) != nil {
                states.append(PrunePlanner.TagState(tag: tag, digest: head.digest))
                continue
            }
            if var known = byDigest[head.digest] {
                known.tag = tag
                states.append(known)
                continue
            }
            var state = PrunePlanner.TagState(tag: tag, digest: head.digest)
            let top = try client.manifest(repository, .digest(head.digest))
            var config: Descriptor?
            switch try top.decode() {
            case .image(let manifest):
                config = manifest.config
            case .index(let index):
                state.children = index.manifests.map(\.digest)
                if let first = index.manifests.first(where: { $0.mediaType.isImageManifest }),
                    case .image(let manifest) = try client.manifest(repository, .digest(first.digest)).decode()
                {
                    config = manifest.config
                }
            }
            let file = scratch.appendingPathComponent("config-\(UUID().uuidString.prefix(8))")
            defer { unlink(file.path) }
            if let config, config.size <= 4 << 20, (try? client.downloadBlob(repository, config, to: file)) != nil,
                let configuration = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(contentsOf: file))
            {
                let labels = configuration.config?.labels ?? [:]
                state.branch = labels[SlipwayVocabulary.branchLabel]
                state.inputs = labels[SlipwayVocabulary.inputsLabel]
                state.revision = labels[SlipwayVocabulary.revisionLabel]
                let created = labels[SlipwayVocabulary.createdLabel] ?? configuration.created
                state.created = created.flatMap { ISO8601DateFormatter().date(from: $0) }
            }
            byDigest[head.digest] = state
            states.append(state)
        }
        return states
    }

    /// Removes `tag` alone: points it at a unique empty manifest, then deletes that manifest.
    func untagOnly(_ tag: Tag, client: RegistryClient, repository: Repository) throws {
        let marker = Data(
            #"{"slipway":"removed tag \#(tag.rawValue) at \#(Date().timeIntervalSince1970) \#(UUID().uuidString)"}"#
                .utf8)
        let config = try client.uploadBlob(repository, data: marker, mediaType: .ociConfig)
        let manifest = ImageManifest(config: config, layers: [])
        let digest = try client.putManifest(
            repository, .tag(tag), bytes: try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
        try client.deleteManifest(repository, digest)
    }
}
