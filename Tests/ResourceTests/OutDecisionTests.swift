import BuildContext
import Foundation
import OCI
@testable import Resource
import Testing

/// `out`'s source-keyed decisions, without a registry.
@Suite("out decisions: the immutable tag and the inputs tag")
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

    @Test func theInputsTagNeedsEveryManifestToAgree() throws {
        let inputs = Digest.sha256(Data("inputs".utf8))
        let cacheTag = try #require(SlipwayVocabulary.cacheTag(inputs))
        #expect(cacheTag.rawValue == "inputs-" + inputs.encoded)
        #expect(SlipwayVocabulary.inputs(ofCacheTag: cacheTag) == inputs)
        #expect(SlipwayVocabulary.inputs(ofCacheTag: try Tag("inputs-latest")) == nil)
        #expect(Out.inputsTag([]) == .none)
        #expect(Out.inputsTag([nil, nil]) == .none, "not built by build-task")
        #expect(Out.inputsTag([inputs.rawValue]) == .tag(cacheTag))
        #expect(Out.inputsTag([inputs.rawValue, inputs.rawValue]) == .tag(cacheTag), "every platform of one build")
        guard case .unusable = Out.inputsTag([inputs.rawValue, first.rawValue]) else { Issue.record("two builds' manifests in one index"); return }
        guard case .unusable = Out.inputsTag([inputs.rawValue, nil]) else { Issue.record("one manifest unlabelled"); return }
        guard case .unusable = Out.inputsTag(["not a digest"]) else { Issue.record("a label that is no digest"); return }
        let sha512 = try Digest("sha512:" + String(repeating: "a", count: 128))
        guard case .unusable = Out.inputsTag([sha512.rawValue]) else { Issue.record("a digest whose tag would be too long"); return }
    }
}
