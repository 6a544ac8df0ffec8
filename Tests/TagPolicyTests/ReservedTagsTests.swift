import OCI
import Testing

@testable import TagPolicy

@Suite("reserved tags: what a name from repository content may not take")
struct ReservedTagsTests {
    let reserved = ReservedTags(immutableTemplate: try! TagTemplate("{short_ref}"), prefixes: ["inputs-", "sha256-"])

    @Test(arguments: [
        "latest", "stable", "0123456789ab", String(repeating: "a", count: 40), "0123456789ab-abcdef012345",
        "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2", "1", "v2", "inputs-abc", "sha256-abc.sig",
    ])
    func refused(_ name: String) throws {
        #expect(reserved.reason(for: try Tag(name)) != nil, "\(name)")
    }

    @Test(arguments: [
        "main", "feature-login", "v-1.0", "0123456789AB", "0123456789a", "1.0-0123456789ab", "release-1.2", "stable-2",
    ])
    func allowed(_ name: String) throws {
        #expect(reserved.reason(for: try Tag(name)) == nil, "\(name)")
    }

    @Test func aReleaseTemplateMayRenderAVersion() throws {
        #expect(reserved.reason(for: try Tag("v1.2.3"), releaseAllowed: true) == nil)
        #expect(reserved.reason(for: try Tag("stable"), releaseAllowed: true) != nil)
    }

    @Test func theFirstTemplatesRenderingsAreReserved() throws {
        let custom = ReservedTags(immutableTemplate: try TagTemplate("app-{short_ref}"))
        #expect(custom.reason(for: try Tag("app-0123456789ab")) != nil)
        #expect(custom.reason(for: try Tag("app-0123456789ab"), againstImmutableTemplate: false) == nil)
        #expect(custom.reason(for: try Tag("app-main")) == nil)
        let branched = ReservedTags(immutableTemplate: try TagTemplate("{branch}-{short_ref}"))
        #expect(branched.reason(for: try Tag("evil-0123456789ab")) != nil)
        #expect(branched.reason(for: try Tag("x0123456789ab")) == nil)
    }
}
