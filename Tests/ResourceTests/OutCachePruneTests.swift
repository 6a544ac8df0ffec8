import Foundation
import OCI
import TestSupport
import Testing

/// `out` with `params.prune.cache` against a cache repository that real buildah builds (through
/// the built build-task) pushed to: what goes is exactly what `CACHE_TTL` no longer reuses.
@Suite("out prune: ageing out build-task's cache repository", .serialized)
struct OutCachePruneTests {
    static let dockerfile = """
        FROM scratch
        COPY busybox /bin/busybox
        COPY src.txt /src.txt
        RUN ["/bin/busybox", "sh", "-c", "/bin/busybox date +%s%N > /ran-at"]
        """

    func buildTask(_ directory: URL, _ environment: [String: String]) throws -> ProcessResult {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        env.merge(environment) { $1 }
        return try runProcess(try builtProduct("build-task").path, [], environment: env, currentDirectory: directory)
    }

    /// The created time of each tag's image in `repository`, as skopeo reads it.
    func created(_ registry: TestRegistry, _ repository: String) throws -> [String: Date] {
        let listed = try runProcess(
            "skopeo", ["list-tags", "--tls-verify=false", "docker://\(registry.host)/\(repository)"]
        ).checked()
        let tags = try #require(
            (try JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any])?["Tags"] as? [String])
        var result: [String: Date] = [:]
        for tag in tags {
            let inspected = try runProcess(
                "skopeo",
                ["inspect", "--config", "--tls-verify=false", "docker://\(registry.host)/\(repository):\(tag)"]
            ).checked()
            let text = try #require(
                (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["created"] as? String)
            result[tag] = try #require(ISO8601DateFormatter().date(from: text))
        }
        return result
    }

    func pruneRequest(_ registry: TestRegistry, _ remote: TestGitRepository, cache: String, dryRun: Bool = false)
        -> String
    {
        pruneRequest(registry, remote, #"{"repository":"\#(registry.host)/\#(cache)","ttl":"168h"}"#, dryRun: dryRun)
    }

    func pruneRequest(_ registry: TestRegistry, _ remote: TestGitRepository, _ cache: String, dryRun: Bool = false)
        -> String
    {
        #"{"source":{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"},"tags":["{short_ref}"]},"params":{"prune":{"deleted_branches":false,"dry_run":\#(dryRun),"cache":\#(cache)}}}"#
    }

    @Test func imagesPastTheTTLGoAndWhatBuildahStillReusesStays() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    try FileManager.default.copyItem(
                        atPath: "/bin/busybox", toPath: repository.path.appendingPathComponent("busybox").path)
                    try Data(Self.dockerfile.utf8).write(to: repository.path.appendingPathComponent("Dockerfile"))
                    let cacheRepository = "\(registry.host)/team/app-cache"
                    func build(_ name: String, ttl: String?) throws -> ProcessResult {
                        var env = [
                            "CONTEXT": repository.path.path, "CACHE_REPOSITORY": cacheRepository,
                            "REGISTRY_INSECURE": "true",
                            "CACHE": directory.appending("cache-\(name)").path,
                            "OUTPUT": directory.appending("out-\(name)").path,
                        ]
                        env["CACHE_TTL"] = ttl
                        let result = try buildTask(directory.url, env)
                        try #require(result.succeeded, "\(result.stderrString)")
                        return result
                    }
                    // A commit of 30 days ago, then one of now: each build's cache images are dated with its commit.
                    try repository.commit(
                        "old", files: ["src.txt": "one\n"], date: Date(timeIntervalSinceNow: -30 * 86_400))
                    try build("old", ttl: nil)
                    try repository.commit("new", files: ["src.txt": "two\n"])
                    try build("new", ttl: "168h")
                    let before = try created(registry, "team/app-cache")
                    let week = Date(timeIntervalSinceNow: -168 * 3600)
                    let old = Set(before.filter { $0.value < week }.keys)
                    let young = Set(before.filter { $0.value >= week }.keys)
                    #expect(old.count >= 2 && young.count >= 3, "\(before)")

                    // A repository holding other tags is refused in one line, and nothing in it is deleted.
                    let someOld = try #require(old.first)
                    for tag in [someOld, "latest"] {
                        _ = try runProcess(
                            "skopeo",
                            [
                                "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                                "docker://\(cacheRepository):\(someOld)", "docker://\(registry.host)/team/mixed:\(tag)",
                            ]
                        ).checked()
                    }
                    let remote = try repository.bareClone()
                    try repository.push()
                    let refused = try runOut(
                        pruneRequest(registry, remote, cache: "team/mixed"), directory: directory.url)
                    #expect(!refused.succeeded)
                    let lines = refused.stderrString.split(separator: "\n").filter {
                        $0.contains("not a cache repository")
                    }
                    #expect(
                        lines.count == 1 && lines[0].contains("holds the tag \"latest\""), "\(refused.stderrString)")
                    #expect(Set(try created(registry, "team/mixed").keys) == [someOld, "latest"])

                    // The dry run says what it would remove and removes nothing.
                    let dry = try runOut(
                        pruneRequest(registry, remote, cache: "team/app-cache", dryRun: true), directory: directory.url)
                    #expect(dry.succeeded, "\(dry.stderrString)")
                    for tag in old {
                        #expect(
                            dry.stderrString.contains("would remove \(cacheRepository):\(tag.prefix(12))…"),
                            "\(dry.stderrString)")
                    }
                    #expect(Set(try created(registry, "team/app-cache").keys) == old.union(young))

                    let result = try runOut(
                        pruneRequest(registry, remote, cache: "team/app-cache"), directory: directory.url)
                    #expect(result.succeeded, "\(result.stderrString)")
                    for tag in old {
                        #expect(
                            result.stderrString.contains("removing \(cacheRepository):\(tag.prefix(12))…"),
                            "\(result.stderrString)")
                    }
                    #expect(
                        Set(try created(registry, "team/app-cache").keys) == young,
                        "exactly the images past the TTL went")

                    // A fresh worker with CACHE_TTL=168h still reuses the young images: the RUN does not run again.
                    let warm = try build("warm", ttl: "168h")
                    let afterRun = warm.stderrString.components(separatedBy: "RUN [").last ?? ""
                    #expect(afterRun.contains("--> Using cache"), "\(warm.stderrString)")
                }
            }
        }
    }

    @Test(arguments: [
        (#"{"ttl":"168h"}"#, "params.prune.cache.repository"),
        (#"{"repository":"HOST/team/app-cache"}"#, "params.prune.cache.ttl"),
        (#"{"repository":"HOST/team/app-cache","ttl":"a week"}"#, "is not an age such as 168h"),
        (#"{"repository":"HOST/team/app-cache","ttl":"0"}"#, "would delete every cache image"),
        (#"{"repository":"HOST/team/app-cache:v1","ttl":"168h"}"#, "names a tag or digest"),
        (#"{"repository":"HOST/team/app","ttl":"168h"}"#, "is this resource's own repository"),
        (
            #"{"repository":"HOST/team/app-cache","ttl":"168h","username":"u","password":"hunter2"}"#,
            "reached with the source's credentials"
        ),
        (#"{"repository":"HOST/team/app-cache","ttl":"168h","keep":3}"#, "keep"),
    ])
    func badSettingsAreRefusedInOneLine(cache: String, expected: String) async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    try repository.commit("app", files: ["a": "1"])
                    let result = try runOut(
                        pruneRequest(registry, repository, cache.replacingOccurrences(of: "HOST", with: registry.host)),
                        directory: directory.url)
                    #expect(!result.succeeded)
                    let lines = result.stderrString.split(separator: "\n")
                    #expect(lines.count == 1 && lines[0].contains(expected), "\(result.stderrString)")
                    #expect(!result.stderrString.contains("hunter2"))
                }
            }
        }
    }
}
