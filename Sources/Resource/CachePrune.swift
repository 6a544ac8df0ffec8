import Console
import Foundation
import OCI
import Registry

/// Ageing out build-task's shared layer cache (`CACHE_REPOSITORY`), decided by a pure
/// function of the repository's tags and their images' created times.
///
/// Exactly safe by buildah's own rule: `--cache-ttl` reuses a cached step's image only while
/// `now - created` is at most the TTL, where `created` is the image config's `created` (the
/// commit time, through build-task's `--timestamp`). An image older than the TTL now is older
/// than it at every later moment, so no build with that `CACHE_TTL` (or a shorter one) reuses
/// it again. A digest is deleted only when every tag on it is such an image; a tag that
/// cannot be dated (no `created`, a config too large to read, an index) is kept.
///
/// A repository with any tag buildah's `--cache-to` does not make is refused whole: it is
/// not a cache repository, and an image's age says nothing about whether a tag such as
/// `latest` is still wanted.
struct CachePrunePlanner {
    /// One tag of the cache repository, as read from the registry.
    struct Entry: Sendable, Equatable {
        var tag: Tag
        var digest: Digest
        /// The image config's `created`; nil when it could not be read.
        var created: Date?
    }

    /// A digest to delete, with every tag on it.
    struct Deletion: Sendable, Equatable {
        var digest: Digest
        var tags: [Tag]
        var created: Date
    }

    struct Plan: Sendable, Equatable {
        /// Oldest first.
        var delete: [Deletion] = []
        /// Left for the next run by `max_deletions`.
        var deferred: [Deletion] = []
        var kept: [Tag] = []
        /// Kept because their age is unknown.
        var undated: [Tag] = []
    }

    let ttl: TimeInterval
    let now: Date
    var maxDeletions = 50

    /// Whether `tag` is one buildah 1.28's `--cache-to` makes: the step's cache key, 64
    /// lowercase hex digits (measured: `buildah build --layers --cache-to <repo>` pushes
    /// `<repo>:<sha256 hex>`, one per step).
    static func isCacheKey(_ tag: Tag) -> Bool {
        let text = tag.rawValue
        return text.utf8.count == 64
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Why `repository` is not a cache repository, or nil when every tag is a cache key.
    static func refusal(repository: String, tags: [Tag]) -> String? {
        let foreign = tags.filter { !isCacheKey($0) }.map(\.rawValue).sorted()
        guard let first = foreign.first else { return nil }
        let others = foreign.count > 1 ? " and \(foreign.count - 1) other tag\(foreign.count > 2 ? "s" : "")" : ""
        return
            "params.prune.cache.repository: \(repository) holds the tag \(quoted(first))\(others), which buildah's --cache-to never makes (its tags are 64-hex cache keys), so it is not a cache repository and nothing was deleted; name the repository build-task's CACHE_REPOSITORY names"
    }

    /// Whether an image created at `created` is past the TTL, as buildah judges it (strictly older).
    func expired(_ created: Date) -> Bool { now.timeIntervalSince(created) > ttl }

    func plan(_ entries: [Entry]) -> Plan {
        var plan = Plan()
        var order: [Digest] = []
        var byDigest: [Digest: [Entry]] = [:]
        for entry in entries {
            if byDigest[entry.digest] == nil { order.append(entry.digest) }
            byDigest[entry.digest, default: []].append(entry)
        }
        var candidates: [Deletion] = []
        for digest in order {
            let group = byDigest[digest] ?? []
            let tags = group.map(\.tag).sorted { $0.rawValue < $1.rawValue }
            // One digest, one config: its tags share a created time. Any tag not dated keeps them all.
            let dates = group.map(\.created)
            if dates.contains(where: { $0 == nil }) {
                plan.undated += tags
                plan.kept += tags
                continue
            }
            let newest = dates.compactMap { $0 }.max() ?? .distantFuture
            if expired(newest) {
                candidates.append(Deletion(digest: digest, tags: tags, created: newest))
            } else {
                plan.kept += tags
            }
        }
        candidates.sort { ($0.created, $0.digest.rawValue) < ($1.created, $1.digest.rawValue) }
        plan.delete = Array(candidates.prefix(maxDeletions))
        plan.deferred = Array(candidates.dropFirst(maxDeletions))
        plan.kept.sort { $0.rawValue < $1.rawValue }
        plan.undated.sort { $0.rawValue < $1.rawValue }
        return plan
    }
}

extension Out {
    static let pruneCacheKeys = ["repository", "ttl", "username", "password"]

    /// The largest image config read to date a cache image; a larger one leaves it undated (kept).
    static let cacheConfigLimit = 4 << 20

    /// `params.prune.cache`: deletes the images of build-task's `CACHE_REPOSITORY` older than
    /// `ttl`. The repository is reached as `promote.repository` is: with the source's client
    /// on the source's registry, else with `username`/`password` given here, else a Docker
    /// config's credentials; TLS settings are the source's.
    func pruneCache(
        _ cache: InputObject, source: Source, client: RegistryClient, dryRun: Bool, maxDeletions: Int,
        scratch: URL, log: Log, now: Date = Date()
    ) throws -> [[String: String]] {
        let (reference, ttl, ttlText) = try Self.pruneCacheTarget(cache, source: source)
        var registryClient = client
        if reference.registry != source.registry {
            registryClient = try otherRegistryClient(cache, host: reference.registry, source: source, log: log)
        } else {
            for key in ["username", "password"] where cache.has(key) {
                throw cache.invalid(
                    key,
                    "the cache repository is on the source's registry, which is reached with the source's credentials")
            }
        }
        let repository = reference.repository
        let name = "\(reference.registry)/\(repository)"

        let tags = try registryClient.tags(repository)
        if let refusal = CachePrunePlanner.refusal(repository: name, tags: tags) { throw InputError(refusal) }
        let entries = try cacheEntries(tags, client: registryClient, repository: repository, scratch: scratch, log: log)
        let planner = CachePrunePlanner(ttl: ttl, now: now, maxDeletions: maxDeletions)
        let plan = planner.plan(entries)
        Self.logCachePlan(plan, name: name, ttlText: ttlText, dryRun: dryRun, maxDeletions: maxDeletions, log: log)
        let removals = plan.delete.flatMap(\.tags).count
        if !dryRun {
            // By digest, with no second read: whatever tags point at a digest now, its image
            // is past the TTL (its config is fixed by its digest), so no build reuses it.
            for deletion in plan.delete {
                do { try registryClient.deleteManifest(repository, deletion.digest) } catch let error as RegistryError
                    where error.kind == .notFound
                {}
            }
            log.info("prune cache \(name): removed \(removals) tags")
        }
        var metadata = [
            ["name": dryRun ? "cache_would_remove" : "cache_removed", "value": String(removals)],
            ["name": "cache_kept", "value": String(plan.kept.count)],
        ]
        if !plan.deferred.isEmpty {
            metadata.append(["name": "cache_deferred", "value": String(plan.deferred.flatMap(\.tags).count)])
        }
        return metadata
    }

    /// `prune.cache`'s `repository` (a repository of its own, with no tag or digest) and
    /// `ttl` (at least a second), checked before any request.
    static func pruneCacheTarget(_ cache: InputObject, source: Source) throws -> (
        reference: ImageReference, ttl: TimeInterval, ttlText: String
    ) {
        let text = try cache.requiredString("repository")
        let reference: ImageReference
        do { reference = try ImageReference(text) } catch { throw cache.invalid("repository", "\(error)") }
        guard reference.tag == nil, reference.digest == nil else {
            throw cache.invalid(
                "repository",
                "\(quoted(text)) names a tag or digest; give the repository alone, as CACHE_REPOSITORY does: \(reference.registry)/\(reference.repository)"
            )
        }
        if reference.registry == source.registry, reference.repository == source.repository {
            throw cache.invalid(
                "repository",
                "\(quoted(text)) is this resource's own repository; give build-task's CACHE_REPOSITORY, a repository of its own"
            )
        }
        let ttlText = try cache.requiredString("ttl")
        guard let ttl = PrunePlanner.age(ttlText) else {
            throw cache.invalid(
                "ttl", "\(quoted(ttlText)) is not an age such as 168h, 7d or 3600; give build-task's CACHE_TTL")
        }
        guard ttl >= 1 else {
            throw cache.invalid(
                "ttl",
                "\(quoted(ttlText)) would delete every cache image, which builds with a CACHE_TTL of at least 1s still reuse; give build-task's CACHE_TTL"
            )
        }
        return (reference, ttl, ttlText)
    }

    /// One line per tag the plan removes (or would), one per image left for the next run, and the totals.
    static func logCachePlan(
        _ plan: CachePrunePlanner.Plan, name: String, ttlText: String, dryRun: Bool, maxDeletions: Int, log: Log
    ) {
        let formatter = ISO8601DateFormatter()
        for deletion in plan.delete {
            for tag in deletion.tags {
                log.info(
                    "\(dryRun ? "would remove" : "removing") \(name):\(tag.rawValue.prefix(12))… (\(deletion.digest.rawValue.prefix(19))…): cache image created \(formatter.string(from: deletion.created)), older than ttl \(ttlText)"
                )
            }
        }
        for deletion in plan.deferred {
            log.info(
                "leaving \(name):\(deletion.tags[0].rawValue.prefix(12))… for the next run (max_deletions \(maxDeletions))"
            )
        }
        let removals = plan.delete.flatMap(\.tags).count
        log.info(
            "prune cache \(name): \(removals) tags to remove, \(plan.kept.count) kept\(plan.undated.isEmpty ? "" : " (\(plan.undated.count) of unknown age)")\(dryRun ? " (dry run: nothing deleted; set dry_run: false)" : "")"
        )
    }

    /// Each tag's digest and its image config's `created`: one HEAD per tag, one manifest and
    /// one config (at most ``cacheConfigLimit`` bytes, streamed to a file) per digest.
    func cacheEntries(_ tags: [Tag], client: RegistryClient, repository: Repository, scratch: URL, log: Log) throws
        -> [CachePrunePlanner.Entry]
    {
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var created: [Digest: Date?] = [:]
        var entries: [CachePrunePlanner.Entry] = []
        for tag in tags {
            // A tag gone since the listing (another prune, or a registry's retention) is skipped.
            guard let head = try client.manifestDescriptor(repository, .tag(tag)) else { continue }
            if created[head.digest] == nil {
                created[head.digest] = try configCreated(
                    head.digest, tag: tag, client: client, repository: repository, scratch: scratch, log: log)
            }
            entries.append(CachePrunePlanner.Entry(tag: tag, digest: head.digest, created: created[head.digest] ?? nil))
        }
        return entries
    }

    /// An RFC 3339 time as images carry it (buildah writes nanoseconds when not given
    /// `--timestamp`). A fraction rounds up to the next second: an image is never taken for older than it is.
    static func createdTime(_ text: String) -> Date? {
        guard let dot = text.firstIndex(of: "."), dot > text.startIndex else {
            return ISO8601DateFormatter().date(from: text)
        }
        let rest = text[text.index(after: dot)...]
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty,
            let date = ISO8601DateFormatter().date(from: String(text[..<dot]) + rest.dropFirst(digits.count))
        else { return nil }
        return digits.allSatisfy { $0 == "0" } ? date : date.addingTimeInterval(1)
    }

    private func configCreated(
        _ digest: Digest, tag: Tag, client: RegistryClient, repository: Repository, scratch: URL, log: Log
    ) throws -> Date? {
        guard case .image(let manifest) = try client.manifest(repository, .digest(digest)).decode() else {
            log.info("keeping \(repository):\(tag.rawValue.prefix(12))…: an index, which buildah's cache does not make")
            return nil
        }
        guard manifest.config.size <= Self.cacheConfigLimit else {
            log.info(
                "keeping \(repository):\(tag.rawValue.prefix(12))…: its config is \(manifest.config.size) bytes, more than \(Self.cacheConfigLimit >> 20) MiB, not read"
            )
            return nil
        }
        let file = scratch.appendingPathComponent("cache-config-\(UUID().uuidString.prefix(8))")
        defer { unlink(file.path) }
        try client.downloadBlob(repository, manifest.config, to: file)
        guard let configuration = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(contentsOf: file)),
            let text = configuration.created, let date = Self.createdTime(text)
        else {
            log.info("keeping \(repository):\(tag.rawValue.prefix(12))…: its config has no created time")
            return nil
        }
        return date
    }
}
