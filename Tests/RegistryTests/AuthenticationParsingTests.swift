import Foundation
import HTTP
import OCI
import Testing

@testable import Registry

@Suite("WWW-Authenticate challenges")
struct ChallengeTests {
    @Test func bearerWithQuotedParameters() throws {
        let challenge = try #require(
            Challenge.parse([
                #"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#
            ]))
        #expect(challenge.scheme == "bearer")
        #expect(challenge.parameters["realm"] == "https://auth.example.com/token")
        #expect(challenge.parameters["service"] == "registry.example.com")
        #expect(challenge.parameters["scope"] == "repository:team/app:pull,push")
    }

    @Test func basicAndEscapes() throws {
        let challenge = try #require(Challenge.parse([#"Basic realm="say \"hi\"", charset=UTF-8"#]))
        #expect(challenge.scheme == "basic")
        #expect(challenge.parameters["realm"] == #"say "hi""#)
        #expect(challenge.parameters["charset"] == "UTF-8")
    }

    @Test func bearerPreferredOverBasic() throws {
        let challenge = try #require(Challenge.parse([#"Basic realm="r""#, #"Bearer realm="https://a/t""#]))
        #expect(challenge.scheme == "bearer")
    }

    @Test func garbageIsNoChallenge() {
        #expect(Challenge.parse([]) == nil)
        #expect(Challenge.parse([""]) == nil)
    }

    @Test func scopesAreSortedAndMerged() throws {
        let app = try Repository("team/app")
        let base = try Repository("team/base")
        let scope = Scope.repository(app, "pull", "push").union(.repository(base, "pull"))
        #expect(scope.entries == ["repository:team/app:pull,push", "repository:team/base:pull"])
        #expect(scope == Scope.repository(base, "pull").union(.repository(app, "pull", "push")))
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test func exponentialWithinJitterAndCapped() {
        let policy = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: 0.2)
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            let delay = policy.delay(afterAttempt: attempt, retryAfter: nil)
            #expect(
                delay >= .milliseconds(base * 8 / 10) && delay <= .milliseconds(base * 12 / 10),
                "attempt \(attempt): \(delay)")
        }
    }

    @Test func retryAfterSecondsAndDateAreHonouredUpToTheCap() {
        let policy = RetryPolicy(maxRetryAfter: .seconds(10))
        #expect(policy.delay(afterAttempt: 1, retryAfter: "3") == .seconds(3))
        #expect(policy.delay(afterAttempt: 1, retryAfter: "3600") == .seconds(10))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let date = formatter.string(from: now.addingTimeInterval(4))
        #expect(policy.delay(afterAttempt: 1, retryAfter: date, now: now) == .seconds(4))
    }

    @Test func neverMeansOneAttempt() {
        #expect(RetryPolicy.never.maxAttempts == 1)
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
    }
}

@Suite("Link pagination header")
struct LinkHeaderTests {
    @Test(arguments: [
        (#"</v2/a/tags/list?last=b&n=2>; rel="next""#, "/v2/a/tags/list?last=b&n=2"),
        (#"<https://r.example/v2/a/tags/list?n=1&last=x>;rel=next"#, "https://r.example/v2/a/tags/list?n=1&last=x"),
        (#"</prev>; rel="prev", </next>; rel="next""#, "/next"),
    ])
    func next(header: String, expected: String) {
        #expect(RegistryClient.nextLink(header) == expected)
    }

    @Test func noNext() {
        #expect(RegistryClient.nextLink(nil) == nil)
        #expect(RegistryClient.nextLink(#"</prev>; rel="prev""#) == nil)
    }
}

@Suite("Docker config.json keys")
struct DockerConfigKeyTests {
    @Test func dockerHubAliases() throws {
        let hub = RegistryHost.dockerHub
        for key in ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"] {
            #expect(DockerConfigCredentials.names(hub, key), "\(key)")
        }
        #expect(!DockerConfigCredentials.names(hub, "ghcr.io"))
    }

    @Test func hostWithPortAndScheme() throws {
        let host = try RegistryHost("127.0.0.1:5000")
        #expect(DockerConfigCredentials.names(host, "127.0.0.1:5000"))
        #expect(DockerConfigCredentials.names(host, "https://127.0.0.1:5000/"))
        #expect(DockerConfigCredentials.names(host, "http://127.0.0.1:5000/v2/"))
        #expect(!DockerConfigCredentials.names(host, "127.0.0.1:5001"))
    }
}
