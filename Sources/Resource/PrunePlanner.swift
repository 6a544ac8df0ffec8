import BuildContext
import Foundation
import OCI
import Signing
import TagPolicy

/// The reaper's decisions, as a pure function of what the registry and
/// git hold, so every rule is testable without either.
///
/// A tag is a candidate only when the source's tag templates would have made it for the
/// branch its image was built from (the `dev.slipway.branch` label) and a rule selects it:
/// that branch no longer exists (`deleted_branches`), or it is an immutable tag beyond the
/// `keep` newest of its branch. `older_than` spares anything younger. Everything else
/// (`prod`, `stable`, releases, `latest`, images of other tools) is kept.
///
/// Slipway's own cache tags (`inputs-<hex>`, build-task's `SKIP_IF_PUBLISHED` and `out`
/// make them; one counts only when its image's `dev.slipway.inputs` label names those
/// inputs) follow their image: while a kept tag reaches the image (the same digest, or a
/// kept index listing it) the cache tag stays, a valid cache of a live image. Otherwise it
/// goes when its image's branch no longer exists (`deleted_branches`), or when its image's
/// other tags all go (so `keep` frees an old image whole). `older_than` spares it too. A
/// cache tag that is its image's only tag on a live branch stays.
///
/// Safety is by reachability: every digest a kept tag reaches (its manifest or index and
/// the index's children) is kept. A candidate whose digest is kept is removed as a tag only
/// (the registry's delete-by-digest would take every tag on that digest with it); a digest
/// no kept tag reaches is deleted, with the children of an index that nothing kept reaches.
///
/// cosign's tags (`sha256-<hex>.sig`, `.att`: signatures and attestations) are not versions:
/// no rule selects them. They go with their image: when its digest is deleted (or a child of
/// a deleted index), they are deleted too; an image that stays keeps them.
struct PrunePlanner {
    struct Options: Sendable, Equatable {
        var deletedBranches = true
        var keep: Int?
        var olderThan: TimeInterval?
        var dryRun = true
        var maxDeletions = 50
    }

    /// What one tag holds, as read from the registry.
    struct TagState: Sendable, Equatable {
        var tag: Tag
        var digest: Digest
        /// The children of an index (empty for a manifest).
        var children: [Digest] = []
        var branch: String?
        var revision: String?
        var created: Date?
        /// The `dev.slipway.inputs` label.
        var inputs: String?

        /// A cache tag Slipway made for this image: `inputs-<hex>` naming its inputs label.
        var isCacheTag: Bool {
            guard let named = SlipwayVocabulary.inputs(ofCacheTag: tag) else { return false }
            return inputs == named.rawValue
        }
    }

    struct Removal: Sendable, Equatable {
        var tag: Tag
        var digest: Digest
        var reason: String
    }

    /// A digest deleted whole, with the tags (all candidates) that point at it.
    struct Deletion: Sendable, Equatable {
        var digest: Digest
        var tags: [Removal]
    }

    struct Plan: Sendable, Equatable {
        /// Tags removed on their own (their digest is kept by another tag).
        var untag: [Removal] = []
        var delete: [Deletion] = []
        /// Children of deleted indexes that nothing kept reaches.
        var children: [Digest] = []
        /// Candidates left for the next run by `max_deletions`.
        var deferred: [Removal] = []
        var kept: [Tag] = []
        /// cosign's signature and attestation tags of deleted images (their own manifests' digests).
        var attachments: [Removal] = []

        var removedTags: [Removal] { untag + delete.flatMap(\.tags) + attachments }
    }

    let templates: [TagTemplate]
    let options: Options
    let now: Date

    /// The reason `state` should go, or nil to keep it. `live` is the remote's branches.
    func reason(_ state: TagState, live: Set<String>, rank: [Tag: Int]) -> String? {
        guard let branch = state.branch, let revision = state.revision else { return nil }
        let context = TagContext(commit: revision, branch: branch)
        let made = templates.enumerated().compactMap { index, template in
            (try? template.render(context)).map { (index, $0) }
        }
        guard let (index, _) = made.first(where: { $0.1 == state.tag }) else { return nil }
        if let olderThan = options.olderThan {
            guard let created = state.created, now.timeIntervalSince(created) > olderThan else { return nil }
        }
        if options.deletedBranches, !live.contains(branch) {
            return "branch \(branch) no longer exists"
        }
        if index == 0, let keep = options.keep, let position = rank[state.tag], position >= keep {
            return "older than the \(keep) newest images of \(branch)"
        }
        return nil
    }

    /// The reason the cache tag `state` should go, or nil to keep it. `reached`: every digest
    /// the kept tags other than cache tags reach; `others`: the reasons of the other tags on
    /// its digest (all candidates when nothing kept reaches it).
    func cacheReason(_ state: TagState, live: Set<String>, reached: Set<Digest>, others: [String]) -> String? {
        guard !reached.contains(state.digest) else { return nil }
        if let olderThan = options.olderThan {
            guard let created = state.created, now.timeIntervalSince(created) > olderThan else { return nil }
        }
        if options.deletedBranches, let branch = state.branch, !live.contains(branch) {
            return "branch \(branch) no longer exists"
        }
        if let other = others.first { return "its image's other tags go (\(other))" }
        return nil
    }

    func plan(_ all: [TagState], live: Set<String>) -> Plan {
        let attachments = all.filter { CosignVocabulary.attachment(of: $0.tag) != nil }
        let states = all.filter { CosignVocabulary.attachment(of: $0.tag) == nil }
        var plan = plan(images: states, live: live)
        let deleted = Set(plan.delete.map(\.digest) + plan.children)
        for state in attachments {
            guard let (image, kind) = CosignVocabulary.attachment(of: state.tag), deleted.contains(image) else {
                continue
            }
            let what = kind == .signature ? "signatures" : "attestations"
            plan.attachments.append(
                Removal(
                    tag: state.tag, digest: state.digest,
                    reason: "the \(what) of \(image.rawValue.prefix(19))…, which is deleted"))
        }
        return plan
    }

    private func plan(images states: [TagState], live: Set<String>) -> Plan {
        let reasons = reasons(states, live: live)
        var plan = Plan()
        var candidates: [Removal] = []
        // Oldest first, so a run capped by max_deletions removes the oldest images.
        let byAge = states.sorted {
            ($0.created ?? .distantPast, $0.tag.rawValue) < ($1.created ?? .distantPast, $1.tag.rawValue)
        }
        for state in byAge {
            if let why = reasons[state.tag] {
                candidates.append(Removal(tag: state.tag, digest: state.digest, reason: why))
            } else {
                plan.kept.append(state.tag)
            }
        }
        plan.kept.sort { $0.rawValue < $1.rawValue }
        schedule(candidates, states: states, into: &plan)
        return plan
    }

    /// Why each tag should go (absent: kept): every tag but the cache tags by the rules; then
    /// each cache tag by what happens to its image.
    private func reasons(_ states: [TagState], live: Set<String>) -> [Tag: String] {
        // Immutable tags per branch, newest first, for `keep`.
        var rank: [Tag: Int] = [:]
        let immutable = states.filter { state in
            guard let branch = state.branch, let revision = state.revision else { return false }
            return (try? templates.first?.render(TagContext(commit: revision, branch: branch))) == state.tag
        }
        for (_, group) in Dictionary(grouping: immutable, by: { $0.branch ?? "" }) {
            let ordered = group.sorted {
                ($0.created ?? .distantPast, $0.tag.rawValue) > ($1.created ?? .distantPast, $1.tag.rawValue)
            }
            for (position, state) in ordered.enumerated() { rank[state.tag] = position }
        }

        var reasons: [Tag: String] = [:]
        for state in states where !state.isCacheTag {
            reasons[state.tag] = reason(state, live: live, rank: rank)
        }
        let reached = Set(
            states.filter { !$0.isCacheTag && reasons[$0.tag] == nil }.flatMap { [$0.digest] + $0.children })
        let othersByDigest = Dictionary(grouping: states.filter { !$0.isCacheTag }, by: \.digest)
        for state in states where state.isCacheTag {
            let others = (othersByDigest[state.digest] ?? []).compactMap { reasons[$0.tag] }
            reasons[state.tag] = cacheReason(state, live: live, reached: reached, others: others)
        }
        return reasons
    }

    /// Spends `max_deletions` on `candidates` (oldest first, by digest): a digest a kept tag
    /// reaches is only untagged, any other deleted whole with its unreached children; what the
    /// budget leaves is deferred.
    private func schedule(_ candidates: [Removal], states: [TagState], into plan: inout Plan) {
        let keptStates = states.filter { plan.kept.contains($0.tag) }
        let reachable = Set(keptStates.flatMap { [$0.digest] + $0.children })
        let childrenOf = Dictionary(states.map { ($0.digest, $0.children) }, uniquingKeysWith: { first, _ in first })

        var budget = options.maxDeletions
        var deletedChildren = Set<Digest>()
        var order: [Digest] = []
        for candidate in candidates where !order.contains(candidate.digest) { order.append(candidate.digest) }
        let groups = Dictionary(grouping: candidates, by: \.digest)
        for digest in order {
            let sorted = (groups[digest] ?? []).sorted { $0.tag.rawValue < $1.tag.rawValue }
            guard budget > 0 else {
                plan.deferred += sorted
                continue
            }
            if reachable.contains(digest) {
                let taken = Array(sorted.prefix(budget))
                plan.untag += taken
                plan.deferred += sorted.dropFirst(taken.count)
                budget -= taken.count
            } else {
                plan.delete.append(Deletion(digest: digest, tags: sorted))
                budget -= sorted.count
                for child in childrenOf[digest] ?? []
                where !reachable.contains(child) && deletedChildren.insert(child).inserted {
                    plan.children.append(child)
                }
            }
        }
    }

    /// `14d`, `12h`, `30m`, `90s` or plain seconds.
    static func age(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        if let seconds = TimeInterval(text), seconds >= 0 { return seconds }
        guard let unit = text.last, let scale = units[unit], let value = TimeInterval(text.dropLast()), value >= 0
        else { return nil }
        return value * scale
    }
}
