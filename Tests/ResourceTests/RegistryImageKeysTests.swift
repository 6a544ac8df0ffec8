import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// registry-image's keys that Slipway's image mode takes with the same meaning, run through
/// the built binaries against real registries on loopback. No source here sets `insecure`:
/// a registry on 127.0.0.1 is reached in plain HTTP by the rule registry-image follows.
@Suite("registry-image's keys in image mode, as Concourse runs them")
struct RegistryImageKeysTests {
    let app = try! Repository("team/app")

    /// Pushes an image whose config is `config` (rootfs added) and manifest carries
    /// `annotations`, under `tags`; returns its digest.
    @discardableResult
    func push(
        _ client: RegistryClient, _ repository: Repository, tags: [String], config: [String: Any] = [:],
        annotations: [String: String] = [:], platform: Platform = Platform(os: "linux", architecture: "amd64")
    ) throws -> Descriptor {
        var body: [String: Any] = [
            "architecture": platform.architecture, "os": platform.os,
            "rootfs": ["type": "layers", "diff_ids": [String]()],
        ]
        body.merge(config) { _, new in new }
        let configBytes = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let descriptor = try client.uploadBlob(repository, data: configBytes, mediaType: .ociConfig)
        let bytes = try CanonicalJSON.encode(
            ImageManifest(config: descriptor, layers: [], annotations: annotations.isEmpty ? nil : annotations))
        try client.putManifest(repository, .digest(Digest.sha256(bytes)), bytes: bytes, mediaType: .ociManifest)
        for tag in tags {
            try client.putManifest(repository, .tag(try OCI.Tag(tag)), bytes: bytes, mediaType: .ociManifest)
        }
        var result = Descriptor(mediaType: .ociManifest, digest: Digest.sha256(bytes), size: Int64(bytes.count))
        result.platform = platform
        return result
    }

    func tags(_ result: ProcessResult) throws -> [String] { try decodeVersions(result).map { $0["tag"]! } }

    // MARK: tag_regex, created_at_sort

    @Test func tagRegexListsMatchingTagsInTheRegistrysOrder() async throws {
        try await withTestRegistry(.open) { registry in
            let client = try registry.client()
            let b = try push(client, app, tags: ["release-b"], config: ["created": "2024-03-01T00:00:00Z"])
            try push(client, app, tags: ["release-a", "other"], config: ["created": "2024-05-01T00:00:00.123456789Z"])
            try push(client, app, tags: ["release-c"], config: ["created": "2024-01-01T00:00:00Z"])
            let source = #""repository":"\#(registry.host)/team/app","tag_regex":"^release-""#
            // check keeps the order in which the registry lists the tags.
            let order = try client.tags(app).map(\.rawValue).filter { $0.hasPrefix("release-") }
            #expect(Set(order) == ["release-a", "release-b", "release-c"])
            let listed = try decodeVersions(runCheck(#"{"source":{\#(source)}}"#))
            #expect(listed.map { $0["tag"]! } == order)
            #expect(listed.first { $0["tag"] == "release-b" }?["digest"] == b.digest.rawValue)
            // A given version does not cut the list, as in registry-image.
            #expect(
                try tags(runCheck(#"{"source":{\#(source)},"version":{"tag":"release-b","digest":"\#(b.digest)"}}"#))
                    == order)
            // created_at_sort: oldest image first, newest last (Concourse's latest).
            #expect(
                try tags(runCheck(#"{"source":{\#(source),"created_at_sort":true}}"#)) == [
                    "release-c", "release-b", "release-a",
                ])
            // Unanchored, as Go's MatchString: "lease" matches inside every release tag.
            #expect(
                try tags(runCheck(#"{"source":{"repository":"\#(registry.host)/team/app","tag_regex":"lease-[ab]"}}"#))
                    == order.filter { $0 != "release-c" })
        }
    }

    @Test(arguments: [
        (#""tag_regex":"(","tag":"x""#, "source.tag and source.tag_regex are both set"),
        (#""tag_regex":"(""#, #"source.tag_regex: "(" is not a valid regular expression"#),
        (#""tag_regex":"a","semver_constraint":"1.x""#, "source.semver_constraint applies to semver mode"),
        (#""created_at_sort":true"#, "source.created_at_sort applies to source.tag_regex"),
        (#""label_regex":"[""#, "source.label_regex"),
        (#""pre_release_prefixes":["build"]"#, "source.pre_release_prefixes needs source.pre_releases: true"),
        (
            #""content_trust":{"repository_key_id":"k","repository_key":"SECRET-KEY","repository_passphrase":"SECRET-PASS"}"#,
            "source.content_trust: Docker Content Trust (Notary v1) is retired"
        ),
        (
            #""registry_mirror":{"host":"mirror.example","username":"u"}"#,
            "source.registry_mirror.username is set but source.registry_mirror.password is not"
        ),
        (#""registry_mirror":{"hots":"mirror.example"}"#, #"unknown key "hots""#),
    ])
    func refusalsAreOneLine(source: String, message: String) throws {
        let result = try runCheck(#"{"source":{"repository":"127.0.0.1:9/team/app",\#(source)}}"#)
        #expect(!result.succeeded)
        let lines = result.stderrString.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(message), "\(result.stderrString)")
        #expect(!result.stderrString.contains("SECRET"))
        if message.contains("content_trust") { #expect(result.stderrString.contains("cosign")) }
    }

    // MARK: label_regex, annotation_regex, platform

    @Test func labelsAndAnnotationsBecomeGetMetadata() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let labels = [
                    "org.opencontainers.image.source": "https://example.com/app",
                    "org.opencontainers.image.revision": "abc", "maintainer": "me",
                ]
                let amd64 = try push(
                    client, app, tags: [], config: ["config": ["Labels": labels]],
                    annotations: ["org.opencontainers.image.created": "2024", "other": "x"])
                let arm64 = try push(
                    client, app, tags: [], config: ["config": ["Labels": ["org.opencontainers.image.revision": "arm"]]],
                    platform: Platform(os: "linux", architecture: "arm64"))
                let index = try CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64]))
                let digest = try client.putManifest(app, .tag(try OCI.Tag("multi")), bytes: index, mediaType: .ociIndex)
                let source =
                    #""repository":"\#(registry.host)/team/app","tag":"multi","label_regex":"^org\\.opencontainers\\.","annotation_regex":"created$""#
                let result = try runIn(
                    #"{"source":{\#(source)},"version":{"tag":"multi","digest":"\#(digest)"},"params":{"skip_download":true}}"#,
                    directory: directory.appending("get"))
                try #require(result.succeeded, "\(result.stderrString)")
                struct Output: Decodable { var metadata: [[String: String]] }
                let metadata = try JSONDecoder().decode(Output.self, from: result.stdout).metadata
                #expect(
                    metadata.suffix(3) == [
                        ["name": "org.opencontainers.image.revision", "value": "abc"],
                        ["name": "org.opencontainers.image.source", "value": "https://example.com/app"],
                        ["name": "org.opencontainers.image.created", "value": "2024"],
                    ])
                // platform without os: registry-image's default OS (linux) with the given architecture.
                let arm = try runIn(
                    #"{"source":{\#(source),"platform":{"architecture":"arm64"}},"version":{"tag":"multi","digest":"\#(digest)"},"params":{"skip_download":true}}"#,
                    directory: directory.appending("get-arm"))
                try #require(arm.succeeded, "\(arm.stderrString)")
                #expect(
                    try JSONDecoder().decode(Output.self, from: arm.stdout).metadata.last == [
                        "name": "org.opencontainers.image.revision", "value": "arm",
                    ])
            }
        }
    }

    // MARK: numeric tag, plain HTTP

    @Test func aNumericTagIsTheTagOfItsDigits() async throws {
        try await withTestRegistry(.open) { registry in
            let digest = try push(try registry.client(), app, tags: ["1"]).digest
            // No insecure: 127.0.0.1 is spoken to in plain HTTP as registry-image does.
            let result = try decodeVersions(
                runCheck(#"{"source":{"repository":"\#(registry.host)/team/app","tag":1}}"#))
            #expect(result == [["tag": "1", "digest": digest.rawValue]])
        }
    }

    @Test func aLocalRegistryThatSpeaksTLSIsVerified() async throws {
        try await withTestRegistry(.basic(tls: true)) { registry in
            let digest = try push(try registry.client(), app, tags: ["latest"]).digest
            let credentials = #""username":"\#(registry.username!)","password":"\#(registry.password!)""#
            let pem = String(data: try JSONEncoder().encode(registry.caCertificatePEM!), encoding: .utf8)!
            // With its CA: verified TLS, not a downgrade.
            #expect(
                try decodeVersions(
                    runCheck(
                        #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest",\#(credentials),"ca_certs":[\#(pem)]}}"#
                    )) == [["tag": "latest", "digest": digest.rawValue]])
            // Without it: the certificate is refused, and nothing is sent in plain HTTP instead.
            let refused = try runCheck(
                #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest",\#(credentials)}}"#)
            #expect(!refused.succeeded)
            #expect(refused.stderrString.lowercased().contains("certificate"), "\(refused.stderrString)")
        }
    }

    @Test func aPublicHostStillNeedsTLS() throws {
        // Nothing listens on this documentation address; the error must name https, not fall back to http.
        let result = try runCheck(#"{"source":{"repository":"192.0.2.1:1/team/app","tag":"x"}}"#)
        #expect(!result.succeeded)
        #expect(result.stderrString.contains("https://192.0.2.1:1/v2/"), "\(result.stderrString)")
        #expect(!result.stderrString.contains("http://192.0.2.1"), "\(result.stderrString)")
    }

    // MARK: semver_constraint with prereleases

    @Test func aPrereleaseConstraintReturnsPrereleases() async throws {
        try await withTestRegistry(.open) { registry in
            let client = try registry.client()
            for tag in ["1.1.0", "1.2.0-rc.1", "1.2.0", "1.3.0-beta.1", "1.3.0-alpine"] {
                try push(client, app, tags: [tag], config: ["author": tag])
            }
            let source = #""repository":"\#(registry.host)/team/app","semver_constraint":">= 1.2.0-0""#
            #expect(
                try tags(runCheck(#"{"source":{\#(source),"pre_releases":true}}"#)) == [
                    "1.2.0-rc.1", "1.2.0", "1.3.0-beta.1",
                ])
            #expect(try tags(runCheck(#"{"source":{\#(source)}}"#)) == ["1.2.0"])
            #expect(
                try tags(
                    runCheck(
                        #"{"source":{"repository":"\#(registry.host)/team/app","semver_constraint":">= 1.2.0","pre_releases":true}}"#
                    )) == ["1.2.0"])
        }
    }

    // MARK: registry_mirror

    /// Docker Hub is the origin (only it is mirrored); no network reaches it here, so a proxy
    /// that refuses everything stands in its way: a read that went to Docker Hub fails.
    func dockerHubBlocked() -> [String: String] {
        [
            "PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "HTTPS_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
        ]
    }

    @Test func readsOfADockerHubRepositoryAreServedByTheMirror() async throws {
        try await withTestRegistry(.basic(username: "mirror-user", password: "mirror-secret")) { mirror in
            try withTemporaryDirectory { directory in
                let client = try mirror.client()
                let digest = try push(
                    client, app, tags: ["latest"], config: ["config": ["Labels": ["org.example.from": "mirror"]]]
                ).digest
                // Origin credentials differ: the mirror's htpasswd refuses them, so a success means the mirror's own were sent there.
                let source =
                    #""repository":"team/app","tag":"latest","username":"origin-user","password":"origin-secret","label_regex":"from","registry_mirror":{"host":"\#(mirror.host)","username":"mirror-user","password":"mirror-secret"}"#
                let check = try runProcess(
                    try builtProduct("check").path, [], stdin: Data(#"{"source":{\#(source)}}"#.utf8),
                    environment: dockerHubBlocked())
                #expect(try decodeVersions(check) == [["tag": "latest", "digest": digest.rawValue]])
                let get = try runProcess(
                    try builtProduct("in").path, [directory.appending("get").path],
                    stdin: Data(
                        #"{"source":{\#(source)},"version":{"tag":"latest","digest":"\#(digest)"},"params":{"format":"oci"}}"#
                            .utf8),
                    environment: dockerHubBlocked())
                try #require(get.succeeded, "\(get.stderrString)")
                #expect(FileManager.default.fileExists(atPath: directory.appending("get/image.tar").path))
                #expect(get.stdoutString.contains(#""org.example.from""#))
                #expect(
                    try String(contentsOf: directory.appending("get/repository"), encoding: .utf8)
                        == "docker.io/team/app")
            }
        }
    }

    @Test func aMirrorWithoutTheImageFallsBackToDockerHub() async throws {
        try await withTestRegistry(.open) { mirror in
            let source =
                #""repository":"team/app","tag":"latest","registry_mirror":{"host":"\#(mirror.host)","username":"mirror-user","password":"MIRROR-SECRET"}"#
            let check = try runProcess(
                try builtProduct("check").path, [], stdin: Data(#"{"source":{\#(source)}}"#.utf8),
                environment: dockerHubBlocked())
            // The mirror had nothing: check went on to Docker Hub (blocked here) and says so.
            #expect(!check.succeeded)
            #expect(
                check.stderrString.contains(
                    "the mirror \(mirror.host) does not have team/app; reading docker.io instead"),
                "\(check.stderrString)")
            #expect(check.stderrString.contains("registry-1.docker.io") || check.stderrString.contains("docker.io"))
            #expect(!check.stderrString.contains("MIRROR-SECRET"))
        }
    }

    @Test func aMirrorWithoutTheImageFallsBackToDockerHubWithTheOriginsCredentials() async throws {
        try await withTestRegistry(.basic(username: "origin-user", password: "origin-secret")) { origin in
            try await withTestRegistry(.basic(username: "mirror-user", password: "mirror-secret")) { mirror in
                try await withDockerHubStandIn(upstream: origin.baseURL) { hub in
                    try await withTemporaryDirectory { directory in
                        let digest = try push(
                            try origin.client(), app, tags: ["latest"],
                            config: ["config": ["Labels": ["org.example.from": "origin"]]]
                        ).digest
                        let ca = String(data: try JSONEncoder().encode(hub.caCertificatePEM), encoding: .utf8)!
                        let source =
                            #""repository":"team/app","tag":"latest","username":"origin-user","password":"origin-secret","ca_certs":[\#(ca)],"label_regex":"from","registry_mirror":{"host":"\#(mirror.host)","username":"mirror-user","password":"mirror-secret"}"#
                        let environment = [
                            "PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "HTTPS_PROXY": hub.proxyURL,
                            "https_proxy": hub.proxyURL,
                        ]
                        let check = try runProcess(
                            try builtProduct("check").path, [], stdin: Data(#"{"source":{\#(source)}}"#.utf8),
                            environment: environment)
                        #expect(try decodeVersions(check) == [["tag": "latest", "digest": digest.rawValue]])
                        #expect(
                            check.stderrString.contains("the mirror \(mirror.host) does not have library/team/app")
                                || check.stderrString.contains("the mirror \(mirror.host) does not have team/app"),
                            "\(check.stderrString)")

                        let get = try runProcess(
                            try builtProduct("in").path, [directory.appending("get").path],
                            stdin: Data(
                                #"{"source":{\#(source)},"version":{"tag":"latest","digest":"\#(digest)"},"params":{"format":"oci"}}"#
                                    .utf8),
                            environment: environment)
                        try #require(get.succeeded, "\(get.stderrString)")
                        #expect(get.stdoutString.contains(#""value":"origin""#))

                        let entries = try hub.entries()
                        #expect(entries.contains { $0.connect == "registry-1.docker.io:443" })
                        let users = Set(entries.compactMap(\.user))
                        // Docker Hub saw the origin's user and never the mirror's.
                        #expect(users == ["origin-user"], "\(entries)")
                        #expect(
                            entries.contains {
                                $0.method == "GET" && $0.path?.contains("/v2/team/app/manifests/") == true
                            })
                    }
                }
            }
        }
    }

    @Test func aPutGoesToTheOriginNotTheMirror() async throws {
        try await withTestRegistry(.basic(username: "origin-user", password: "origin-secret")) { origin in
            try await withTestRegistry(.open) { mirror in
                try await withDockerHubStandIn(upstream: origin.baseURL) { hub in
                    try await withTemporaryDirectory { directory in
                        // Something to push: an image from the origin, fetched as a docker-archive.
                        let digest = try push(try origin.client(), app, tags: ["seed"], config: ["author": "put"])
                            .digest
                        let ca = String(data: try JSONEncoder().encode(hub.caCertificatePEM), encoding: .utf8)!
                        let source =
                            #""repository":"team/app","tag_regex":"^build-","username":"origin-user","password":"origin-secret","ca_certs":[\#(ca)],"registry_mirror":{"host":"\#(mirror.host)","username":"mirror-user","password":"mirror-secret"}"#
                        let environment = [
                            "PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "HTTPS_PROXY": hub.proxyURL,
                            "https_proxy": hub.proxyURL,
                        ]
                        let get = try runProcess(
                            try builtProduct("in").path, [directory.appending("get").path],
                            stdin: Data(
                                #"{"source":{\#(source)},"version":{"tag":"seed","digest":"\#(digest)"},"params":{"format":"oci"}}"#
                                    .utf8),
                            environment: environment)
                        try #require(get.succeeded, "\(get.stderrString)")
                        try Data("build-7".utf8).write(to: directory.appending("tags"))
                        let put = try runProcess(
                            try builtProduct("out").path, [directory.url.path],
                            stdin: Data(
                                #"{"source":{\#(source)},"params":{"image":"get/image.tar","additional_tags":"tags"}}"#
                                    .utf8),
                            environment: environment)
                        try #require(put.succeeded, "\(put.stderrString)")
                        #expect(put.stdoutString.contains(#""tag":"build-7""#))
                        #expect(try mirror.client().tags(app).isEmpty)
                        #expect(try origin.client().tags(app).map(\.rawValue).contains("build-7"))
                        let entries = try hub.entries()
                        #expect(
                            entries.contains {
                                $0.method == "PUT" && $0.path == "/v2/team/app/manifests/build-7"
                                    && $0.user == "origin-user"
                            })
                        #expect(!entries.contains { $0.user == "mirror-user" })
                        // tag_regex mode then finds what was put.
                        let check = try runProcess(
                            try builtProduct("check").path, [], stdin: Data(#"{"source":{\#(source)}}"#.utf8),
                            environment: environment)
                        #expect(try decodeVersions(check).map { $0["tag"]! } == ["build-7"])
                    }
                }
            }
        }
    }

    @Test func aRepositoryOffDockerHubIsReadDirectlyAndSaysSo() async throws {
        try await withTestRegistry(.open) { origin in
            try await withTestRegistry(.open) { mirror in
                let digest = try push(try origin.client(), app, tags: ["latest"]).digest
                try push(try mirror.client(), app, tags: ["latest"], config: ["author": "mirror"])
                let source =
                    #""repository":"\#(origin.host)/team/app","tag":"latest","registry_mirror":{"host":"\#(mirror.host)"}"#
                let check = try runCheck(#"{"source":{\#(source)}}"#)
                #expect(try decodeVersions(check) == [["tag": "latest", "digest": digest.rawValue]])
                #expect(
                    check.stderrString.contains(
                        "registry_mirror \(mirror.host) mirrors Docker Hub only; reading \(origin.host) directly"))
            }
        }
    }
}
