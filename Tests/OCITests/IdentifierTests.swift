import Foundation
import Testing

@testable import OCI

@Suite("Tag")
struct TagTests {
    @Test(
        "accepts valid tags",
        arguments: [
            "latest", "1.36.1", "v2.0.0-rc.1", "_private", "A", "9", "sha256-abc.sig", "UPPER_and_lower",
            String(repeating: "t", count: 128),
        ])
    func valid(_ text: String) throws {
        #expect(try OCI.Tag(text).rawValue == text)
    }

    @Test(
        "rejects invalid tags",
        arguments: [
            "", ".hidden", "-dash", "has space", "a:b", "a/b", "a@b", "täg", "tag\n",
            String(repeating: "t", count: 129),
        ])
    func invalid(_ text: String) {
        #expect(throws: OCI.Tag.ValidationError(value: text)) { try OCI.Tag(text) }
    }

    @Test func errorNamesTheValueAndLength() {
        let long = String(repeating: "t", count: 129)
        #expect(OCI.Tag.ValidationError(value: long).description.contains("(129 characters)"))
        #expect(OCI.Tag.ValidationError(value: "-x").description.hasPrefix(#"invalid tag "-x": expected"#))
    }

    @Test func codable() throws {
        let tag = try OCI.Tag("1.0")
        let data = try CanonicalJSON.encode([tag])
        #expect(String(decoding: data, as: UTF8.self) == #"["1.0"]"#)
        #expect(try JSONDecoder().decode([OCI.Tag].self, from: data) == [tag])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([OCI.Tag].self, from: Data(#"[".x"]"#.utf8)) }
    }
}

@Suite("Repository")
struct RepositoryTests {
    @Test(
        "accepts valid repository paths",
        arguments: [
            "busybox", "library/busybox", "team/app", "a/b/c/d", "my.app", "my_app", "my__app", "my-app", "my---app",
            "0", "org/app-v2.1_x",
            String(repeating: "a", count: 255),
        ])
    func valid(_ text: String) throws {
        #expect(try Repository(text).rawValue == text)
    }

    @Test(
        "rejects invalid repository paths",
        arguments: [
            "", "Busybox", "team/App", "a//b", "/a", "a/", "a..b", "a___b", "a_.b", ".a", "a.", "-a", "a-", "_a",
            "a b", "a:b", "a@b", "ä",
            String(repeating: "a", count: 256),
        ])
    func invalid(_ text: String) {
        #expect(throws: Repository.ValidationError(value: text)) { try Repository(text) }
    }

    @Test func errorExplainsUppercase() {
        #expect(
            Repository.ValidationError(value: "Busybox").description.hasPrefix(
                #"invalid repository "Busybox" (repository names must be lowercase): expected"#))
    }

    @Test func codable() throws {
        let repository = try Repository("team/app")
        let data = try CanonicalJSON.encode([repository])
        #expect(String(decoding: data, as: UTF8.self) == #"["team/app"]"#)
        #expect(try JSONDecoder().decode([Repository].self, from: data) == [repository])
    }
}

@Suite("Reference")
struct ReferenceTests {
    @Test func tag() throws {
        #expect(try Reference("latest") == .tag(OCI.Tag("latest")))
        #expect(try Reference("1.0").description == "1.0")
    }

    @Test func digest() throws {
        #expect(try Reference(Fixtures.digestA) == .digest(Digest(Fixtures.digestA)))
        #expect(try Reference(Fixtures.digestA).description == Fixtures.digestA)
    }

    @Test(
        "rejects what is neither",
        arguments: ["", "sha256:short", "a:b", ".tag", "sha256:" + Fixtures.hexA.uppercased()])
    func invalid(_ text: String) {
        #expect(throws: Reference.ValidationError(value: text)) { try Reference(text) }
    }
}
