import BuildContext
import Foundation
import GitSource
import OCI
import TagPolicy
import Testing

@testable import Resource

/// `out`'s source-keyed decisions, without a registry.
@Suite("out decisions: the immutable tag and the inputs tag")
struct OutDecisionTests {
    let repository = try! Repository("team/app")
    let tag = try! Tag("0123456789ab")
    let first = Digest.sha256(Data("first".utf8))
    let second = Digest.sha256(Data("second".utf8))

    @Test func anImmutableTagTakesItsFirstImageOnly() {
        #expect(Out.immutableConflict(tag, in: repository, holds: nil, ours: first) == nil, "a new tag")
        #expect(
            Out.immutableConflict(tag, in: repository, holds: first, ours: first) == nil,
            "the same image again: a retried put")
        let conflict = Out.immutableConflict(tag, in: repository, holds: first, ours: second)
        #expect(
            conflict?.contains("team/app:0123456789ab") == true && conflict?.contains(first.rawValue) == true
                && conflict?.contains(second.rawValue) == true && conflict?.contains("track_base") == true,
            "\(conflict ?? "nil")")
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
        guard case .unusable = Out.inputsTag([inputs.rawValue, first.rawValue]) else {
            Issue.record("two builds' manifests in one index")
            return
        }
        guard case .unusable = Out.inputsTag([inputs.rawValue, nil]) else {
            Issue.record("one manifest unlabelled")
            return
        }
        guard case .unusable = Out.inputsTag(["not a digest"]) else {
            Issue.record("a label that is no digest")
            return
        }
        let sha512 = try Digest("sha512:" + String(repeating: "a", count: 128))
        guard case .unusable = Out.inputsTag([sha512.rawValue]) else {
            Issue.record("a digest whose tag would be too long")
            return
        }
    }

    func keyed(_ json: String) throws -> SourceKeyed {
        let source = try Source(JSONValue.parse(Data(json.utf8)))
        guard case .sourceKeyed(let keyed) = source.mode else { throw InputError("not source-keyed") }
        return keyed
    }

    /// Where out chooses its tags, without a registry: the immutable tag, then the floating
    /// ones in order, each once; a version from the tag file is made once.
    @Test func theTagPlanOfACommit() throws {
        let commit = try GitCommitID("0123456789abcdef0123456789abcdef01234567")
        let source = try keyed(
            #"{"repository":"r.example/team/app","tags":["{short_ref}","{branch}","{tag_file}-{short_ref}"],"latest_on":"main","tag_prefix":"v","tag_file":"VERSION","git":{"uri":"https://g.example/app.git","branch":"main"}}"#
        )
        let context = TagContext(commit: commit.rawValue, branch: "main", tagFile: "2.1.0")
        let plan = try SourceKeyedTagPlan(
            source, context: context, commit: commit, additionalTags: ["extra", "main", "0123456789ab"].dropLast())
        #expect(plan.immutable == (try Tag("0123456789ab")))
        #expect(plan.floating.map(\.rawValue) == ["main", "2.1.0-0123456789ab", "latest", "v2.1.0", "extra"])
        #expect(
            plan.createOnce == [try Tag("v2.1.0"), try Tag("2.1.0-0123456789ab")],
            "versions from the tag file, in a template too")

        // A branch named like another commit's immutable tag, or an additional tag `stable`: refused.
        let robbing = TagContext(commit: commit.rawValue, branch: "fedcba987654")
        #expect(throws: InputError.self) {
            try SourceKeyedTagPlan(source, context: robbing, commit: commit, additionalTags: [])
        }
        #expect(throws: InputError.self) {
            try SourceKeyedTagPlan(source, context: context, commit: commit, additionalTags: ["stable"])
        }
    }
}
