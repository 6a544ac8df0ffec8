import BuildContext
import Foundation
import OCI
import TagPolicy
import Testing

@testable import Resource

/// The reaper's plan for Slipway's own cache tags (`inputs-<hex>`), without a registry.
@Suite("PrunePlanner: cache tags")
struct PrunePlannerTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    var old: Date { now.addingTimeInterval(-30 * 86400) }

    func planner(deletedBranches: Bool = true, keep: Int? = nil, olderThan: TimeInterval? = nil) throws -> PrunePlanner
    {
        var options = PrunePlanner.Options()
        options.deletedBranches = deletedBranches
        options.keep = keep
        options.olderThan = olderThan
        options.dryRun = false
        return PrunePlanner(
            templates: try [TagTemplate("{short_ref}"), TagTemplate("{branch}")], options: options, now: now)
    }

    func digest(_ seed: String) -> Digest { Digest.sha256(Data(seed.utf8)) }

    /// A tag on the image `seed`, built on `branch` from `revision`, with inputs `seed`.
    func state(
        _ tag: String, image seed: String, branch: String, revision: String, created: Date? = nil,
        children: [Digest] = [],
        inputs: String? = nil
    ) throws -> PrunePlanner.TagState {
        PrunePlanner.TagState(
            tag: try Tag(tag), digest: digest(seed), children: children, branch: branch, revision: revision,
            created: created ?? old, inputs: inputs ?? digest("inputs of \(seed)").rawValue)
    }

    func cacheTag(_ seed: String) -> String { SlipwayVocabulary.cacheTag(digest("inputs of \(seed)"))!.rawValue }

    let mainCommit = String(repeating: "a", count: 40)
    let featCommit = String(repeating: "f", count: 40)

    @Test func aDeletedBranchsCacheTagGoesWithItsImage() throws {
        let states = [
            try state(String(featCommit.prefix(12)), image: "feat", branch: "feat-x", revision: featCommit),
            try state("feat-x", image: "feat", branch: "feat-x", revision: featCommit),
            try state(cacheTag("feat"), image: "feat", branch: "feat-x", revision: featCommit),
            try state(String(mainCommit.prefix(12)), image: "main", branch: "main", revision: mainCommit),
            try state(cacheTag("main"), image: "main", branch: "main", revision: mainCommit),
        ]
        let plan = try planner().plan(states, live: ["main"])
        #expect(plan.delete.map(\.digest) == [digest("feat")], "the image goes whole: nothing kept reaches it")
        #expect(
            Set(plan.removedTags.map(\.tag.rawValue)) == [String(featCommit.prefix(12)), "feat-x", cacheTag("feat")])
        #expect(
            plan.removedTags.first { $0.tag.rawValue == cacheTag("feat") }?.reason == "branch feat-x no longer exists")
        #expect(Set(plan.kept.map(\.rawValue)) == [String(mainCommit.prefix(12)), cacheTag("main")])
    }

    @Test func aCacheTagStaysWhileAKeptTagReachesItsImage() throws {
        // main reused feat-x's image: main's tags reach it (its labels still name feat-x).
        let reused = [
            try state(String(featCommit.prefix(12)), image: "feat", branch: "feat-x", revision: featCommit),
            try state(cacheTag("feat"), image: "feat", branch: "feat-x", revision: featCommit),
            try state("main", image: "feat", branch: "feat-x", revision: featCommit),
        ]
        let plan = try planner().plan(reused, live: ["main"])
        #expect(plan.delete.isEmpty)
        #expect(plan.untag.map(\.tag.rawValue) == [String(featCommit.prefix(12))])
        #expect(Set(plan.kept.map(\.rawValue)) == ["main", cacheTag("feat")])

        // A kept index lists the cached image as one of its children.
        let child = [
            try state(cacheTag("child"), image: "child", branch: "feat-x", revision: featCommit),
            try state(
                "prod", image: "index", branch: "main", revision: mainCommit,
                children: [digest("child"), digest("other")]),
        ]
        let indexPlan = try planner().plan(child, live: ["main"])
        #expect(indexPlan.removedTags.isEmpty && indexPlan.kept.count == 2)
    }

    @Test func retentionTakesACacheTagOnlyWithItsImagesLastTags() throws {
        let commits = (0..<3).map { String(repeating: "\($0)", count: 40) }
        var states: [PrunePlanner.TagState] = []
        for (index, commit) in commits.enumerated() {
            let created = old.addingTimeInterval(TimeInterval(index * 3600))
            states.append(
                try state(
                    String(commit.prefix(12)), image: "c\(index)", branch: "main", revision: commit, created: created))
            states.append(
                try state(cacheTag("c\(index)"), image: "c\(index)", branch: "main", revision: commit, created: created)
            )
        }
        // Published by build-task alone (no put tagged it): on a live branch, retention leaves it.
        states.append(
            try state(
                cacheTag("alone"), image: "alone", branch: "main", revision: commits[0],
                created: old.addingTimeInterval(-86400)))
        let plan = try planner(deletedBranches: false, keep: 2).plan(states, live: ["main"])
        #expect(plan.delete.map(\.digest) == [digest("c0")])
        #expect(Set(plan.removedTags.map(\.tag.rawValue)) == [String(commits[0].prefix(12)), cacheTag("c0")])
        #expect(plan.kept.contains(try Tag(cacheTag("alone"))))
    }

    @Test func olderThanSparesAYoungCacheTag() throws {
        let young = [
            try state(
                cacheTag("feat"), image: "feat", branch: "feat-x", revision: featCommit,
                created: now.addingTimeInterval(-3600))
        ]
        #expect(try planner(olderThan: 86400).plan(young, live: ["main"]).removedTags.isEmpty)
        #expect(
            try planner(olderThan: 86400).plan(
                young.map {
                    var s = $0
                    s.created = old
                    return s
                }, live: ["main"]
            ).removedTags.count == 1)
    }

    @Test func aTagThatOnlyLooksLikeACacheTagIsNeverACandidate() throws {
        // Its image's inputs label names other inputs: not a tag Slipway made for that image.
        let other = [
            try state(
                cacheTag("feat"), image: "feat", branch: "feat-x", revision: featCommit,
                inputs: digest("something else").rawValue),
            try state("inputs-latest", image: "feat", branch: "feat-x", revision: featCommit),
        ]
        #expect(try planner().plan(other, live: ["main"]).removedTags.isEmpty)
    }
}
