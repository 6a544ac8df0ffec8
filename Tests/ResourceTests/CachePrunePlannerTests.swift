import Foundation
import OCI
import Testing

@testable import Resource

/// Ageing out build-task's cache repository, decided without a registry and with a fixed clock.
@Suite("CachePrunePlanner: build-task's cache repository by TTL")
struct CachePrunePlannerTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let week: TimeInterval = 168 * 3600

    func key(_ seed: String) -> OCI.Tag { try! OCI.Tag(String(Digest.sha256(Data(seed.utf8)).rawValue.dropFirst(7))) }
    func digest(_ seed: String) -> Digest { Digest.sha256(Data("image \(seed)".utf8)) }
    func entry(_ seed: String, image: String? = nil, age: TimeInterval?) -> CachePrunePlanner.Entry {
        CachePrunePlanner.Entry(
            tag: key(seed), digest: digest(image ?? seed), created: age.map { now.addingTimeInterval(-$0) })
    }

    @Test func onlyImagesOlderThanTheTTLGoOldestFirst() {
        let planner = CachePrunePlanner(ttl: week, now: now)
        let plan = planner.plan([
            entry("young", age: 3600), entry("old", age: 30 * 86400), entry("older", age: 60 * 86400),
            entry("just-inside", age: week), entry("just-past", age: week + 1),
        ])
        #expect(plan.delete.map(\.tags) == [[key("older")], [key("old")], [key("just-past")]])
        #expect(plan.delete.map(\.digest) == [digest("older"), digest("old"), digest("just-past")])
        // buildah reuses an image whose age is exactly the TTL: it stays.
        #expect(Set(plan.kept) == [key("young"), key("just-inside")])
        #expect(plan.deferred.isEmpty && plan.undated.isEmpty)
    }

    @Test func anImageOfUnknownAgeIsKeptWithEveryTagOnItsDigest() {
        let planner = CachePrunePlanner(ttl: week, now: now)
        let plan = planner.plan([
            entry("a", image: "shared", age: 30 * 86400), entry("b", image: "shared", age: nil), entry("c", age: nil),
        ])
        #expect(plan.delete.isEmpty)
        #expect(Set(plan.undated) == [key("a"), key("b"), key("c")])
    }

    @Test func aDigestGoesWholeWithAllItsTags() {
        let planner = CachePrunePlanner(ttl: week, now: now)
        let plan = planner.plan([
            entry("a", image: "shared", age: 30 * 86400), entry("b", image: "shared", age: 30 * 86400),
        ])
        #expect(plan.delete.count == 1)
        #expect(Set(plan.delete[0].tags) == [key("a"), key("b")])
    }

    @Test func maxDeletionsLeavesTheYoungestCandidatesForTheNextRun() {
        let planner = CachePrunePlanner(ttl: week, now: now, maxDeletions: 2)
        let plan = planner.plan((1...4).map { entry("e\($0)", age: Double(10 + $0) * 86400) })
        #expect(plan.delete.map(\.tags) == [[key("e4")], [key("e3")]])
        #expect(plan.deferred.map(\.tags) == [[key("e2")], [key("e1")]])
    }

    @Test func aRepositoryWithOtherTagsIsNotACacheRepository() throws {
        #expect(CachePrunePlanner.refusal(repository: "r/c", tags: [key("a"), key("b")]) == nil)
        let refusal = try #require(
            CachePrunePlanner.refusal(
                repository: "registry.example/team/app", tags: [key("a"), try OCI.Tag("latest"), try OCI.Tag("1.2.0")]))
        #expect(
            refusal.contains(
                "registry.example/team/app holds the tag \"1.2.0\" and 1 other tag, which buildah's --cache-to never makes"
            ), "\(refusal)")
        #expect(!refusal.contains("\n"))
        // Uppercase hex, a short key, cosign's tags: not buildah's.
        for text in [
            key("a").rawValue.uppercased(), String(key("a").rawValue.prefix(63)), "sha256-\(key("a").rawValue).sig",
        ] {
            #expect(!CachePrunePlanner.isCacheKey(try OCI.Tag(text)), "\(text)")
        }
    }

    @Test(arguments: [
        ("2001-09-09T01:46:40Z", 1_000_000_000.0),
        ("2001-09-09T01:46:40.000000000Z", 1_000_000_000.0),
        // A fraction rounds up: never older than it is.
        ("2001-09-09T01:46:40.123456789Z", 1_000_000_001.0),
        ("2001-09-09T03:46:40.5+02:00", 1_000_000_001.0),
    ])
    func createdTimesAreReadAsBuildahWritesThem(text: String, seconds: Double) {
        #expect(Out.createdTime(text)?.timeIntervalSince1970 == seconds)
    }

    @Test func unreadableCreatedTimesAreUnknown() {
        #expect(Out.createdTime("yesterday") == nil)
        #expect(Out.createdTime("2001-09-09T01:46:40.Z") == nil)
    }

    @Test func pipelineLintChecksTheCacheKeys() throws {
        let source = try Source(
            JSONValue.parse(
                Data(
                    #"{"repository":"registry.example/team/app","git":{"uri":"https://git.example/app.git","branch":"main"}}"#
                        .utf8)))
        _ = try Out.params(
            JSONValue.parse(
                Data(#"{"prune":{"cache":{"repository":"registry.example/team/app-cache","ttl":"168h"}}}"#.utf8)),
            source: source)
        #expect(throws: (any Error).self) {
            _ = try Out.params(
                JSONValue.parse(
                    Data(#"{"prune":{"cache":{"repository":"registry.example/team/app-cache","max_age":"168h"}}}"#.utf8)
                ), source: source)
        }
    }
}
