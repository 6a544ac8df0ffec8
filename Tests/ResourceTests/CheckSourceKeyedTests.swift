import Foundation
import OCI
import Registry
import TestSupport
import Testing

@Suite("check in source-keyed mode, as Concourse runs it")
struct CheckSourceKeyedTests {
    func source(
        _ remote: TestGitRepository, _ registry: String = "registry.invalid", extra: String = "", git: String = "",
        branch: String = "main"
    ) -> String {
        #"{"repository":"\#(registry)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"\#(branch)","paths":["images/app/"]\#(git)}\#(extra)}"#
    }

    @Test func versionsArePathFilteredCommitsWithTheTagFileValue() async throws {
        try await withTestGitRepository { repository in
            let remote = try repository.bareClone()
            let first = try repository.commit(
                "app v1", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0\n"])
            _ = try repository.commit("docs", files: ["README.md": "hello\n"])
            let second = try repository.commit("app v2", files: ["images/app/VERSION": "1.1\n"])
            _ = try repository.commit("other image", files: ["images/other/Dockerfile": "FROM scratch\n"])
            try repository.push()

            let withTagFile = source(remote, extra: #","tag_file":"images/app/VERSION""#)
            #expect(
                try decodeVersions(runCheck(#"{"source":\#(withTagFile)}"#)) == [["ref": second, "tag_file": "1.1"]])
            let later = try decodeVersions(
                runCheck(#"{"source":\#(withTagFile),"version":{"ref":"\#(first)","tag_file":"1.0"}}"#))
            #expect(later == [["ref": first, "tag_file": "1.0"], ["ref": second, "tag_file": "1.1"]])
            #expect(try decodeVersions(runCheck(#"{"source":\#(source(remote))}"#)) == [["ref": second]])
        }
    }

    @Test func requireImageEmitsOnlyCommitsWhoseImageIsPublished() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                let remote = try repository.bareClone()
                let first = try repository.commit("app v1", files: ["images/app/Dockerfile": "FROM scratch\n"])
                let second = try repository.commit(
                    "app v2", files: ["images/app/Dockerfile": "FROM scratch\nLABEL v=2\n"])
                try repository.push()
                try pushTinyImage(
                    try registry.client(), try Repository("team/app"), tags: [String(first.prefix(12))], seed: "first")
                let consuming = source(remote, registry.host, extra: #","require_image":true"#)
                #expect(
                    try decodeVersions(runCheck(#"{"source":\#(consuming),"version":{"ref":"\#(first)"}}"#)) == [
                        ["ref": first]
                    ])
                try pushTinyImage(
                    try registry.client(), try Repository("team/app"), tags: [String(second.prefix(12))], seed: "second"
                )
                #expect(
                    try decodeVersions(runCheck(#"{"source":\#(consuming),"version":{"ref":"\#(first)"}}"#)) == [
                        ["ref": first], ["ref": second],
                    ])
            }
        }
    }

    @Test func badSourceKeyedInputIsOneClearLine() async throws {
        try await withTestGitRepository { repository in
            let remote = try repository.bareClone()
            let secret = "git-secret-\(UUID().uuidString.prefix(6))"
            let cases: [(String, String)] = [
                (source(remote, git: #","pathz":["x"]"#), #"source.git: unknown key "pathz"; did you mean "paths"?"#),
                (source(remote, extra: #","tag":"latest""#), "source.tag belongs to image mode"),
                (source(remote, extra: #","tags":["{sha}"]"#), "unknown placeholder {sha}"),
                (source(remote, branch: "a..b"), "source.git.branch"),
                (source(remote, git: #","password":["\#(secret)"]"#), "source.git.password: expected a string"),
                (source(remote, extra: #","tag_file":7"#), "source.tag_file: expected a path or {path, key}"),
            ]
            for (source, expected) in cases {
                let result = try runCheck(#"{"source":\#(source)}"#)
                #expect(result.status == 1 && result.stdout.isEmpty)
                #expect(result.stderrString.contains(expected), "\(result.stderrString)")
                #expect(!result.stderrString.contains(secret))
            }
            let badVersion = try runCheck(#"{"source":\#(source(remote)),"version":{"ref":"abc"}}"#)
            #expect(badVersion.stderrString.contains("version.ref"), "\(badVersion.stderrString)")
        }
    }
}
