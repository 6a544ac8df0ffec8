import Foundation
import OCI
import Registry
import TestSupport
import Testing

@testable import Resource

/// The built binaries against registries that never end or send credentials where they do
/// not belong: every case ends in one error line, soon, with nothing secret sent or shown.
///
/// The caps and deadlines are lowered through their documented environment variables, so
/// each case takes seconds, not the minutes the defaults allow.
@Suite("Hostile registry: bounds, deadlines, and where credentials go")
struct HostileRegistryBoundsTests {
    /// Runs the built `command` with `input` on stdin and `environment` added, ended after
    /// `limit` seconds by `timeout` so that a hang fails the test instead of stalling it.
    func run(
        _ command: String, _ input: String, environment: [String: String] = [:], arguments: [String] = [],
        limit: Int = 120
    ) throws -> (result: ProcessResult, seconds: Double) {
        let started = Date()
        var env = ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        env.merge(environment) { _, new in new }
        let result = try runProcess(
            "timeout", ["-s", "KILL", String(limit), try builtProduct(command).path] + arguments,
            stdin: Data(input.utf8), environment: env)
        return (result, Date().timeIntervalSince(started))
    }

    func lines(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    func jsonString(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
    }

    // MARK: - Finding 7: credentials over plain http

    @Test func basicCredentialsNeverGoToAPlainHTTPRealmOfAnHTTPSRegistry() async throws {
        try await withBoundsRegistry(.init(plainHTTPRealm: true)) { registry in
            let realm = try #require(registry.realmHost)
            let ca = try #require(registry.caCertificatePEM)
            let input =
                #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest","username":"robot","password":"s3cret-pw","ca_certs":[\#(jsonString(ca))]}}"#
            let (result, _) = try run("check", input)
            #expect(!result.succeeded)
            let stderr = result.stderrString
            #expect(lines(stderr).count == 1, "\(stderr)")
            #expect(stderr.contains(realm), "the error names the realm's host: \(stderr)")
            #expect(!stderr.contains("s3cret-pw"))
            let sent = try registry.entries().filter { $0.listener == "realm" && $0.authorization }
            #expect(sent.isEmpty, "no request to the plain-http realm carried credentials: \(sent)")
        }
    }

    @Test func insecureAllowsThePlainHTTPRealmAndAnonymousTokensNeedNoPermission() async throws {
        try await withBoundsRegistry(.init(plainHTTPRealm: true)) { registry in
            let ca = try #require(registry.caCertificatePEM)
            // insecure: the user said plain http is acceptable; credentials go to the realm.
            let insecure =
                #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest","username":"robot","password":"s3cret-pw","insecure":true}}"#
            let (first, _) = try run("check", insecure)
            #expect(first.succeeded, "\(first.stderrString)")
            #expect(try registry.entries().contains { $0.listener == "realm" && $0.authorization })
            // Anonymous: nothing secret to send, so a plain-http realm is used as it is.
            let anonymous =
                #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest","ca_certs":[\#(jsonString(ca))]}}"#
            let (second, _) = try run("check", anonymous)
            #expect(second.succeeded, "\(second.stderrString)")
        }
    }

    @Test func aNextPageOnAnotherOriginIsAskedWithoutCredentials() async throws {
        try await withBoundsRegistry(.init(tags: "elsewhere", plainHTTPRealm: true)) { registry in
            let input =
                #"{"source":{"repository":"\#(registry.host)/team/app","username":"robot","password":"s3cret-pw","insecure":true}}"#
            let (result, _) = try run("check", input)
            #expect(result.succeeded, "\(result.stderrString)")
            #expect(result.stdoutString.contains("2.0.0"), "the page elsewhere was read: \(result.stdoutString)")
            let entries = try registry.entries()
            #expect(
                entries.contains { $0.listener == "registry" && $0.path.hasSuffix("/tags/list") && $0.authorization })
            let elsewhere = entries.filter { $0.listener == "realm" && $0.path.hasSuffix("/tags/list") }
            #expect(elsewhere.count == 1 && elsewhere.allSatisfy { !$0.authorization }, "\(elsewhere)")
        }
    }

    /// `track_base` resolves every base a commit's Dockerfile names, and the Dockerfile is the
    /// repository's: the source's credentials go to the source's registry only.
    @Test func checkWithTrackBaseSendsNoCredentialsToABaseRegistryTheDockerfileNames() async throws {
        var options = BoundsRegistry.Options()
        options.basicChallenge = true  // asks for credentials: only a client that has some for it may answer
        try await withBoundsRegistry(options) { elsewhere in
            try await withTestRegistry(.basic()) { registry in
                try await withTestGitRepository { repository in
                    _ = try repository.commit(
                        "app", files: ["app/Dockerfile": "FROM \(elsewhere.host)/attacker/base:1\nCOPY . /app\n"])
                    let remote = try repository.bareClone()
                    try repository.push()
                    let password = try #require(registry.password)
                    let input =
                        #"{"source":{"repository":"\#(registry.host)/team/app","insecure":true,"username":"\#(registry.username ?? "")","password":"\#(password)","track_base":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["app/"]}}}"#
                    let (result, _) = try run("check", input)
                    // Anonymous, the base is refused: one line naming it, no password.
                    #expect(!result.succeeded && lines(result.stderrString).count == 1, "\(result.stderrString)")
                    #expect(
                        result.stderrString.contains("attacker/base:1 on \(elsewhere.host)"), "\(result.stderrString)")
                    #expect(!result.stderrString.contains(password))
                    let entries = try elsewhere.entries()
                    #expect(entries.contains { $0.path.contains("/manifests/") }, "the base was asked for: \(entries)")
                    #expect(entries.allSatisfy { !$0.authorization }, "\(entries)")
                }
            }
        }
    }

    // MARK: - Finding 8: endless answers

    @Test(arguments: ["endless", "loop"])
    func tagPaginationThatNeverEndsStopsInOneLine(mode: String) async throws {
        try await withBoundsRegistry(.init(tags: mode, pageSize: 100)) { registry in
            // No tag: semver mode lists every tag.
            let input = #"{"source":{"repository":"\#(registry.host)/team/app"}}"#
            let (result, seconds) = try run("check", input, environment: ["SLIPWAY_REGISTRY_MAX_TAG_PAGES": "30"])
            #expect(!result.succeeded)
            let stderr = result.stderrString
            #expect(lines(stderr).count == 1, "\(stderr)")
            #expect(stderr.contains(mode == "loop" ? "links back" : "SLIPWAY_REGISTRY_MAX_TAG_PAGES"), "\(stderr)")
            #expect(seconds < 60)
            let pages = try registry.entries().filter { $0.path.hasSuffix("/tags/list") }.count
            #expect(pages <= 31, "\(pages) pages read")
        }
    }

    /// Each page comes well within the request deadline, and the caps are far away: the
    /// listing as a whole (a phase of check) has its own deadline.
    @Test func aSlowEndlessListingEndsAtTheListingDeadline() async throws {
        try await withBoundsRegistry(.init(tags: "endless", pageSize: 10, pageDelay: 0.5)) { registry in
            let input = #"{"source":{"repository":"\#(registry.host)/team/app"}}"#
            let (result, seconds) = try run(
                "check", input, environment: ["SLIPWAY_REGISTRY_LISTING_TIMEOUT": "3"], limit: 60)
            #expect(!result.succeeded)
            #expect(lines(result.stderrString).count == 1, "\(result.stderrString)")
            #expect(result.stderrString.contains("SLIPWAY_REGISTRY_LISTING_TIMEOUT"), "\(result.stderrString)")
            #expect(seconds < 15, "\(seconds) s")
        }
    }

    @Test func tagCountCapStopsAnEndlessListing() async throws {
        try await withBoundsRegistry(.init(tags: "endless", pageSize: 1000)) { registry in
            let input = #"{"source":{"repository":"\#(registry.host)/team/app"}}"#
            let (result, _) = try run("check", input, environment: ["SLIPWAY_REGISTRY_MAX_TAGS": "5000"])
            #expect(!result.succeeded)
            #expect(lines(result.stderrString).count == 1, "\(result.stderrString)")
            #expect(result.stderrString.contains("SLIPWAY_REGISTRY_MAX_TAGS"), "\(result.stderrString)")
            #expect(try registry.entries().filter { $0.path.hasSuffix("/tags/list") }.count <= 6)
        }
    }

    @Test func aTrickledManifestEndsWithinTheRequestDeadline() async throws {
        try await withBoundsRegistry(.init(trickle: "manifest", bytesPerSecond: 2)) { registry in
            let input = #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest"}}"#
            let (result, seconds) = try run("check", input, environment: ["SLIPWAY_REGISTRY_REQUEST_TIMEOUT": "3"])
            #expect(!result.succeeded)
            let stderr = result.stderrString
            #expect(lines(stderr).count == 1, "\(stderr)")
            #expect(stderr.contains("SLIPWAY_REGISTRY_REQUEST_TIMEOUT"), "\(stderr)")
            // One attempt of 3 s, not retried: a deadline is not a transient fault.
            #expect(seconds < 20, "took \(seconds) s")
        }
    }

    @Test func aTrickledBlobEndsUnderTheLowSpeedBound() async throws {
        try await withBoundsRegistry(.init(trickle: "blob", bytesPerSecond: 2)) { registry in
            let digest = try #require(try registry.manifestDigest())
            try withTemporaryDirectory { directory in
                let input =
                    #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest"},"version":{"tag":"latest","digest":"\#(digest)"},"params":{}}"#
                let (result, seconds) = try run(
                    "in", input,
                    environment: ["SLIPWAY_HTTP_LOW_SPEED_LIMIT": "100", "SLIPWAY_HTTP_LOW_SPEED_TIME": "2"],
                    arguments: [directory.appending("get").path])
                #expect(!result.succeeded)
                let stderr = result.stderrString
                #expect(
                    lines(stderr).filter { !$0.contains("trying again") && !$0.contains("INFO") }.count >= 1,
                    "\(stderr)")
                #expect(stderr.contains("SLIPWAY_HTTP_LOW_SPEED_LIMIT"), "\(stderr)")
                #expect(seconds < 60, "took \(seconds) s")
            }
        }
    }

    // MARK: - in's tags file

    @Test func inWritesTheTagsFileWithoutAskingForEveryTag() async throws {
        try await withTestRegistry(.open) { registry in
            let client = try registry.client()
            let app = try Repository("team/app")
            let digest = try pushTinyImage(client, app, tags: ["multi", "latest"], seed: "fetched")
            try pushTinyImage(client, app, tags: (1...300).map { "other-\($0)" }, seed: "other")
            try withTemporaryDirectory { directory in
                let before = try String(contentsOf: registry.logFile, encoding: .utf8).components(
                    separatedBy: "\"HEAD /v2/team/app/manifests/"
                ).count
                let input =
                    #"{"source":{"repository":"\#(registry.host)/team/app","tag":"multi"},"version":{"tag":"multi","digest":"\#(digest)"},"params":{}}"#
                let destination = directory.appending("get")
                let (result, _) = try run("in", input, arguments: [destination.path])
                #expect(result.succeeded, "\(result.stderrString)")
                #expect(
                    try String(contentsOf: destination.appendingPathComponent("tags"), encoding: .utf8)
                        == "latest multi")
                let heads =
                    try String(contentsOf: registry.logFile, encoding: .utf8).components(
                        separatedBy: "\"HEAD /v2/team/app/manifests/"
                    ).count - before
                #expect(heads <= 8, "\(heads) HEAD requests for manifests")
            }
        }
    }

    // MARK: - Credentials written into the repository

    @Test(arguments: [
        "https://robot:s3cret-pw@127.0.0.1:1/team/app", "robot:s3cret-pw@127.0.0.1:1/team/app",
        "robot:s3cret-pw@registry.example/team/app", "http://robot:s3cret-pw@registry.example:5000/team/app",
        "robot:s3/cret-pw@registry.example/team/app", "robot:s3cret-pw@registry.example",
    ])
    func credentialsInTheRepositoryAreRefusedWithoutBeingShown(repository: String) throws {
        let input = #"{"source":{"repository":"\#(repository)","tag":"latest"}}"#
        for command in ["check", "in", "out"] {
            let arguments = command == "check" ? [] : [NSTemporaryDirectory()]
            let (result, _) = try run(command, input, arguments: arguments, limit: 60)
            #expect(!result.succeeded)
            let all = result.stderrString + result.stdoutString
            #expect(lines(result.stderrString).count == 1, "\(command): \(result.stderrString)")
            #expect(!all.contains("s3cret") && !all.contains("cret-pw"), "\(command): \(all)")
            #expect(result.stderrString.contains("source.username"), "\(command): \(result.stderrString)")
        }
    }
}

extension BoundsRegistry {
    /// The digest of the one manifest the registry serves for every tag.
    func manifestDigest() throws -> Digest? {
        let client = try RegistryClient(host: try RegistryHost(host), credentialLookup: nil)
        return try client.manifestDescriptor(try Repository("team/app"), .tag(try OCI.Tag("latest")))?.digest
    }
}

@Suite("in: which tags the tags file considers")
struct InTagCandidatesTests {
    @Test(arguments: [
        ("multi", ["multi", "latest", "stable"]),
        ("1.2.3", ["1.2.3", "latest", "stable", "1", "1.2"]),
        ("v1.2.3-alpine", ["v1.2.3-alpine", "latest", "stable", "v1-alpine", "v1.2-alpine", "alpine"]),
        ("", ["latest", "stable"]),
        ("1.x", ["1.x", "latest", "stable"]),
    ])
    func candidates(tag: String, expected: [String]) {
        #expect(Set(In.tagCandidates(tag)) == Set(expected))
    }
}
