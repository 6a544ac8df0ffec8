import Foundation
import OCI
import Registry
import Synchronization
import TestSupport
import Testing

@Suite("Registry authentication and TLS")
struct RegistryAuthTests {
    let app = try! Repository("team/app")

    @Test func basicAuthWithTheRightPasswordWorks() async throws {
        try await withTestRegistry(.basic()) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                try client.ping()
                let image = try TestImage.make(in: directory, layerSizes: [100])
                #expect(try image.push(with: client, to: app, tag: "v1") == image.manifestDigest)
            }
        }
    }

    @Test func wrongPasswordIsAClearErrorWithoutTheSecret() async throws {
        try await withTestRegistry(.basic()) { registry in
            let secret = "wrong-password-7f3a"
            let client = try registry.client(credentials: .basic(username: "slipway", password: secret))
            let error = try #require(throws: RegistryError.self) { try client.ping() }
            #expect(error.kind == .unauthorized)
            #expect(error.description.contains("rejected user slipway"), "\(error)")
            #expect(!error.description.contains(secret))

            let anonymous = try registry.client(useOwnCredentials: false)
            let anonymousError = try #require(throws: RegistryError.self) { try anonymous.ping() }
            #expect(anonymousError.description.contains("no credentials are configured"), "\(anonymousError)")
        }
    }

    @Test func bearerTokensAreFetchedPerScopeAndCached() async throws {
        try await withTestRegistry(.token()) { registry in
            try withTemporaryDirectory { directory in
                let client = try registry.client()
                let image = try TestImage.make(in: directory, layerSizes: [100, 200])
                try image.push(with: client, to: app, tag: "v1")
                let afterPush = try registry.tokenRequests()
                #expect(afterPush.allSatisfy { $0.status == 200 && $0.credentials == .valid })
                // One token per distinct scope, however many requests used it.
                #expect(Set(afterPush.map(\.scopes)).count == afterPush.count, "\(afterPush.map(\.scopes))")
                #expect(afterPush.contains { $0.scopes == ["repository:team/app:pull,push"] })

                _ = try client.manifest(app, .tag(try OCI.Tag("v1")))
                _ = try client.manifest(app, .tag(try OCI.Tag("v1")))
                let afterPulls = try registry.tokenRequests()
                #expect(afterPulls.count <= afterPush.count + 1, "pull token fetched once at most")
                #expect(afterPulls.filter { $0.scopes == ["repository:team/app:pull"] }.count == 1)
            }
        }
    }

    @Test func rejectedTokenIsRefreshedOnce() async throws {
        try await withTestRegistry(.token(TokenServerOptions(rejectFirst: 1))) { registry in
            let client = try registry.client()
            #expect(try client.tags(app).isEmpty)
            let requests = try registry.tokenRequests()
            #expect(requests.count == 2, "the first token was refused by the registry, the second accepted")
            #expect(requests.first?.expired == true)
        }
    }

    @Test func tokenServerRejectsAWrongPassword() async throws {
        try await withTestRegistry(.token()) { registry in
            let secret = "not-the-password-91c2"
            let client = try registry.client(credentials: .basic(username: "slipway", password: secret))
            let error = try #require(throws: RegistryError.self) { try client.tags(app) }
            #expect(error.kind == .unauthorized)
            #expect(!error.description.contains(secret))
        }
    }

    @Test func tlsWithTheCACertificateWorksAndWithoutItFails() async throws {
        try await withTestRegistry(.basic(tls: true)) { registry in
            try registry.client(trustCA: true).ping()

            let untrusting = try registry.client(trustCA: false)
            let error = try #require(throws: RegistryError.self) { try untrusting.ping() }
            #expect(error.kind == .tls, "\(error)")
            #expect(error.description.lowercased().contains("certificate"), "\(error)")

            // insecure: the certificate is not checked, by explicit choice only.
            try registry.client(trustCA: false, insecure: true).ping()
        }
    }

    @Test func credentialsFromADockerConfig() async throws {
        try await withTestRegistry(.basic()) { registry in
            try withTemporaryDirectory { directory in
                let host = try registry.registryHost
                let auth = Data("\(registry.username!):\(registry.password!)".utf8).base64EncodedString()
                try Data(#"{"auths":{"https://\#(registry.host)/":{"auth":"\#(auth)"}}}"#.utf8)
                    .write(to: directory.appending("config.json"))
                let lookup = DockerConfigCredentials(environment: ["DOCKER_CONFIG": directory.path])
                let fromAuths = try RegistryClient(host: host, credentialLookup: lookup, insecure: true)
                #expect(fromAuths.credentials == .basic(username: registry.username!, password: registry.password!))
                try fromAuths.ping()

                // A credential helper, through credHelpers and through credsStore.
                let bin = directory.appending("bin")
                try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
                let helper = bin.appendingPathComponent("docker-credential-slipwaytest")
                try Data(
                    """
                    #!/bin/sh
                    read server
                    if [ "$1" = get ] && [ "$server" = "\(registry.host)" ]; then
                      printf '{"ServerURL":"%s","Username":"\(registry.username!)","Secret":"\(registry.password!)"}' "$server"
                    else
                      echo "credentials not found in native keychain"; exit 1
                    fi
                    """.utf8
                ).write(to: helper)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helper.path)
                let environment = ["DOCKER_CONFIG": directory.path, "PATH": "\(bin.path):/usr/bin:/bin"]
                for config in [
                    #"{"credHelpers":{"\#(registry.host)":"slipwaytest"}}"#, #"{"credsStore":"slipwaytest"}"#,
                ] {
                    try Data(config.utf8).write(to: directory.appending("config.json"))
                    let client = try RegistryClient(
                        host: host, credentialLookup: DockerConfigCredentials(environment: environment), insecure: true)
                    try client.ping()
                }
                // The helper knows nothing for another registry: anonymous, not an error.
                let elsewhere = try DockerConfigCredentials(environment: environment).credentials(
                    for: RegistryHost("elsewhere.example:5000"))
                #expect(elsewhere == nil)
            }
        }
    }
}

/// A credential helper is a program like any other: what it writes to standard error first
/// must not keep its answer on standard output from being read.
@Suite("docker credential helpers") struct CredentialHelperTests {
    @Test func aHelperThatFillsStandardErrorFirstIsStillHeard() throws {
        try withTemporaryDirectory { directory in
            let bin = directory.appending("bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let helper = bin.appendingPathComponent("docker-credential-chatty")
            try Data(
                """
                #!/bin/sh
                read server
                # 256 KiB of warnings before the answer: more than a pipe holds.
                i=0; while [ $i -lt 4096 ]; do echo "warning: a line of sixty-four characters, said again and again...." >&2; i=$((i+1)); done
                printf '{"ServerURL":"%s","Username":"robot","Secret":"pw"}' "$server"
                """.utf8
            ).write(to: helper)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helper.path)
            try Data(#"{"credHelpers":{"registry.example:5000":"chatty"}}"#.utf8).write(
                to: directory.appending("config.json"))
            let lookup = DockerConfigCredentials(environment: [
                "DOCKER_CONFIG": directory.path, "PATH": "\(bin.path):/usr/bin:/bin",
            ])
            let host = try RegistryHost("registry.example:5000")
            // A hang fails the test instead of stalling the run: the lookup runs on a thread of
            // its own, bounded from when it starts. Generously: a one-minute time limit once
            // failed on a saturated 2-core run, with the helper answering right.
            let answer = Mutex<Result<Credentials?, any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            Thread {
                let result = Result { try lookup.credentials(for: host) }
                answer.withLock { $0 = result }
                done.signal()
            }.start()
            guard done.wait(timeout: .now() + 300) == .success else {
                Issue.record("the helper's answer was not read within 300 s of asking")
                return
            }
            #expect(try answer.withLock { $0! }.get() == .basic(username: "robot", password: "pw"))
        }
    }
}

@Suite("Registry faults: retries and redirects")
struct RegistryFaultTests {
    let app = try! Repository("team/app")

    @Test func throttlingIsRetriedHonouringRetryAfter() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(method: "GET", path: "/manifests/", times: 2, action: .status(429, retryAfter: "2"))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let image = try TestImage.make(in: directory, layerSizes: [100])
                    try image.push(with: try registry.client(), to: app, tag: "v1")
                    let sleeps = SleepRecorder()
                    let client = try RegistryClient(
                        host: RegistryHost(proxy.host), credentialLookup: nil, insecure: true, retry: sleeps.policy())
                    #expect(try client.manifest(app, .tag(try OCI.Tag("v1"))).digest == image.manifestDigest)
                    #expect(sleeps.delays == [.seconds(2), .seconds(2)])
                    #expect(
                        try proxy.requests().filter { $0.path.contains("/manifests/") }.map(\.status) == [
                            429, 429, 200,
                        ])
                }
            }
        }
    }

    @Test func serverErrorsAndResetsAreRetriedForPushAndPull() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(method: "PUT", path: "/blobs/uploads/", times: 1, action: .status(503)),
                    FaultRule(method: "GET", path: "/blobs/sha256:", times: 1, action: .reset),
                    FaultRule(method: "GET", path: "/blobs/sha256:", times: 1, action: .truncate(afterBytes: 1000)),
                    FaultRule(method: "HEAD", path: "/manifests/", times: 1, action: .status(502)),
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let sleeps = SleepRecorder()
                    let client = try RegistryClient(
                        host: RegistryHost(proxy.host), credentialLookup: nil, insecure: true, retry: sleeps.policy())
                    let image = try TestImage.make(in: directory, layerSizes: [40_000])
                    #expect(try image.push(with: client, to: app, tag: "v1") == image.manifestDigest)
                    #expect(try client.manifestDescriptor(app, .tag(try OCI.Tag("v1")))?.digest == image.manifestDigest)
                    let copy = directory.appending("pulled")
                    try client.downloadBlob(app, image.layers[0].descriptor, to: copy)
                    #expect(try Data(contentsOf: copy) == Data(contentsOf: image.layers[0].file))
                    // Every fault fired and was overcome. A reset on a kept-alive connection
                    // may be retried by libcurl itself (it reconnects once when a reused
                    // connection dies before any answer), so 3 or 4 of our own waits.
                    let fired = try proxy.requests().compactMap { $0.rule }
                    #expect(fired.count == 4, "\(fired)")
                    #expect((3...4).contains(sleeps.delays.count), "\(sleeps.delays)")
                }
            }
        }
    }

    @Test func persistentFailureGivesUpAfterThePolicysAttempts() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(path: "/v2/", action: .status(503))
                ]
            ) { proxy in
                let sleeps = SleepRecorder()
                let client = try RegistryClient(
                    host: RegistryHost(proxy.host), credentialLookup: nil, insecure: true,
                    retry: sleeps.policy(attempts: 4))
                let error = try #require(throws: RegistryError.self) { try client.tags(app) }
                #expect(error.status == 503)
                #expect(error.has(code: "UNAVAILABLE"))
                #expect(sleeps.delays.count == 3)
                #expect(try proxy.requests().count == 4)
            }
        }
    }

    @Test func authorizationNeverFollowsARedirectToAnotherHost() async throws {
        try await withTestRegistry(.basic()) { registry in
            try await withFaultProxy(upstream: nil, rules: []) { elsewhere in
                try await withFaultProxy(
                    upstream: registry.baseURL,
                    rules: [
                        FaultRule(method: "GET", path: "/blobs/sha256:", action: .redirect(to: elsewhere.localhostURL))
                    ]
                ) { proxy in
                    try withTemporaryDirectory { directory in
                        let image = try TestImage.make(in: directory, layerSizes: [100])
                        try image.push(with: try registry.client(), to: app, tag: "v1")
                        let client = try RegistryClient(
                            host: RegistryHost(proxy.host),
                            credentials: .basic(username: registry.username!, password: registry.password!),
                            credentialLookup: nil, insecure: true, retry: .never)
                        try client.ping()  // learns the Basic challenge, so the blob GET carries credentials
                        _ = try? client.downloadBlob(app, image.layers[0].descriptor, to: directory.appending("pulled"))
                        let original = try proxy.requests().filter { $0.method == "GET" && $0.path.contains("/blobs/") }
                        #expect(original.last?.authorization == true, "the registry's own host got credentials")
                        let redirected = try elsewhere.requests()
                        #expect(!redirected.isEmpty, "the redirect was followed")
                        #expect(redirected.allSatisfy { !$0.authorization }, "no credentials reached the other host")
                    }
                }
            }
        }
    }
}
