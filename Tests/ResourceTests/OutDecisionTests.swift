import Foundation
import OCI
@testable import Resource
import Testing

/// `out`'s source-keyed decisions, without a registry.
@Suite("out decisions: the immutable tag")
struct OutDecisionTests {
    let repository = try! Repository("team/app")
    let tag = try! Tag("0123456789ab")
    let first = Digest.sha256(Data("first".utf8))
    let second = Digest.sha256(Data("second".utf8))

    @Test func anImmutableTagTakesItsFirstImageOnly() {
        #expect(Out.immutableConflict(tag, in: repository, holds: nil, ours: first) == nil, "a new tag")
        #expect(Out.immutableConflict(tag, in: repository, holds: first, ours: first) == nil, "the same image again: a retried put")
        let conflict = Out.immutableConflict(tag, in: repository, holds: first, ours: second)
        #expect(conflict?.contains("team/app:0123456789ab") == true && conflict?.contains(first.rawValue) == true
                && conflict?.contains(second.rawValue) == true && conflict?.contains("track_base") == true, "\(conflict ?? "nil")")
        #expect(conflict?.contains("\n") == false)
    }
}
