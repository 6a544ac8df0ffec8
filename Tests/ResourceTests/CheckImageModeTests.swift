import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// Runs the built `check` with `input` on stdin, as Concourse does.
func runCheck(_ input: String) throws -> ProcessResult {
    try runProcess(
        try builtProduct("check").path, [], stdin: Data(input.utf8),
        environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
}

/// Pushes a tiny distinct image (a config and no layers) under `tags`; returns its digest.
@discardableResult
func pushTinyImage(_ client: RegistryClient, _ repository: Repository, tags: [String], seed: String) throws -> Digest {
    let config = try client.uploadBlob(
        repository, data: Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8),
        mediaType: .ociConfig)
    let bytes = try CanonicalJSON.encode(ImageManifest(config: config, layers: [], annotations: ["seed": seed]))
    for tag in tags {
        try client.putManifest(repository, .tag(try OCI.Tag(tag)), bytes: bytes, mediaType: .ociManifest)
    }
    return Digest.sha256(bytes)
}

func decodeVersions(_ result: ProcessResult) throws -> [[String: String]] {
    try #require(result.succeeded, "check failed: \(result.stderrString)")
    return try JSONDecoder().decode([[String: String]].self, from: result.stdout)
}

@Suite("check in image mode, as Concourse runs it")
struct CheckImageModeTests {
    let app = try! Repository("team/app")

    @Test func tagModeFollowsTheTagWithCursorSemantics() async throws {
        try await withTestRegistry(.basic()) { registry in
            let client = try registry.client()
            let old = try pushTinyImage(client, app, tags: ["latest"], seed: "old")
            let new = try pushTinyImage(client, app, tags: ["latest"], seed: "new")
            let source =
                #""source":{"repository":"\#(registry.host)/team/app","tag":"latest","insecure":true,"username":"\#(registry.username!)","password":"\#(registry.password!)"}"#

            #expect(
                try decodeVersions(runCheck("{\(source),\"version\":null}")) == [
                    ["tag": "latest", "digest": new.rawValue]
                ])
            #expect(
                try decodeVersions(runCheck(#"{\#(source),"version":{"tag":"latest","digest":"\#(old)"}}"#)) == [
                    ["tag": "latest", "digest": old.rawValue], ["tag": "latest", "digest": new.rawValue],
                ])
            let gone = "sha256:" + String(repeating: "0", count: 64)
            #expect(
                try decodeVersions(runCheck(#"{\#(source),"version":{"tag":"latest","digest":"\#(gone)"}}"#)) == [
                    ["tag": "latest", "digest": new.rawValue]
                ])
            #expect(
                try decodeVersions(runCheck(#"{\#(source),"version":{"digest":"\#(new)"}}"#)) == [
                    ["tag": "latest", "digest": new.rawValue]
                ])
            let absent = source.replacingOccurrences(of: #""tag":"latest""#, with: #""tag":"absent""#)
            #expect(try decodeVersions(runCheck("{\(absent)}")) == [])
        }
    }

    @Test func semverModeOrdersDedupesAndResumesFromTheCursor() async throws {
        try await withTestRegistry(.open) { registry in
            let client = try registry.client()
            try pushTinyImage(client, app, tags: ["1"], seed: "A")
            try pushTinyImage(client, app, tags: ["2", "2.1"], seed: "B")
            let c = try pushTinyImage(client, app, tags: ["latest", "3", "3.2", "3.2.1"], seed: "C")
            try pushTinyImage(client, app, tags: ["3.1", "3.1.0"], seed: "D")
            try pushTinyImage(client, app, tags: ["3.0", "3.0.0", "not-a-version"], seed: "E")
            let source = #""source":{"repository":"\#(registry.host)/team/app","insecure":true}"#
            #expect(
                try decodeVersions(runCheck("{\(source)}")).map { $0["tag"]! } == [
                    "1", "2.1", "3.0.0", "3.1.0", "3.2.1",
                ])
            let cursor = try decodeVersions(runCheck(#"{\#(source),"version":{"tag":"3.2.1","digest":"\#(c)"}}"#))
            #expect(cursor == [["tag": "3.2.1", "digest": c.rawValue]])
            let constrained = source.replacingOccurrences(
                of: #""insecure":true"#, with: #""insecure":true,"semver_constraint":"< 3""#)
            #expect(try decodeVersions(runCheck("{\(constrained)}")).map { $0["tag"]! } == ["1", "2.1"])
        }
    }

    @Test(arguments: [
        (#"{"source":{"repository":"r/app","tagg":"x"}}"#, #"source: unknown key "tagg"; did you mean "tag"?"#),
        (
            #"{"source":{"repository":"r/app","insecure":"yes"}}"#,
            #"source.insecure: expected true or false, got a string "yes""#
        ),
        (#"{"source":{"repository":"Bad/Repo"}}"#, "source.repository: invalid"),
        (#"{"source":{"repository":"r/app:tag"}}"#, "names a tag or digest"),
        (#"{"source":{"repository":"r/app","tag":"bad tag"}}"#, #"source.tag: invalid tag "bad tag""#),
        (
            #"{"source":{"repository":"r/app","tag":"x"},"version":{"digest":"sha256:nope"}}"#,
            "version.digest: invalid digest"
        ),
        (#"{"source":{"repository":"r/app","semver_constraint":"1.2.q"}}"#, "semver_constraint"),
        (#"{"source":{"repository":"r/app","tag":"x","variant":"y"}}"#, "source.variant applies to semver mode"),
        (#"{"source":null}"#, "source is required"),
        (#"{}"#, "source is required"),
        (#""#, "no input"),
        (#"[1,2"#, "not valid JSON"),
        (
            #"{"source":{"repository":"r/app","platform":{"os":7}}}"#,
            "source.platform.os: expected a string, got a number 7"
        ),
    ])
    func badInputIsOneClearLine(input: String, expected: String) throws {
        let result = try runCheck(input)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty, "nothing on stdout for Concourse to misread")
        let lines = result.stderrString.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderrString)")
        #expect(
            result.stderrString.hasPrefix("check: ") && result.stderrString.contains(expected), "\(result.stderrString)"
        )
    }

    @Test func aWrongPasswordIsNamedButNeverShown() async throws {
        try await withTestRegistry(.basic()) { registry in
            let secret = "hunter2-secret-\(UUID().uuidString.prefix(6))"
            let input =
                #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest","insecure":true,"username":"slipway","password":"\#(secret)"}}"#
            let result = try runCheck(input)
            #expect(result.status == 1)
            #expect(result.stderrString.contains("rejected user slipway"), "\(result.stderrString)")
            #expect(!result.stderrString.contains(secret) && !result.stdoutString.contains(secret))
            // A wrong type for the password never echoes it either.
            let typed = try runCheck(#"{"source":{"repository":"r/app","username":"u","password":["\#(secret)"]}}"#)
            #expect(typed.stderrString.contains("source.password: expected a string"))
            #expect(!typed.stderrString.contains(secret))
        }
    }
}
