import Foundation
import OCI
import TestSupport
import Testing

@testable import Builder

/// `CACHE_REPOSITORY`, `CACHE_TTL` and `RUN --mount=type=cache` through the built build-task,
/// with real buildah and a real registry. Nested in the serialized suite of buildah builds:
/// buildah is CPU-bound here.
extension ImageBuildTests {
    @Suite("build-task's shared build cache")
    struct SharedCacheTests {
        let builds = ImageBuildTests()

        /// A context whose image needs busybox: `busybox` copied in, then `dockerfile`'s steps.
        func context(at context: URL, _ dockerfile: String, source: String) throws -> URL {
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: context.appendingPathComponent("busybox").path) {
                try FileManager.default.copyItem(
                    atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
            }
            try Data(dockerfile.utf8).write(to: context.appendingPathComponent("Dockerfile"))
            try Data(source.utf8).write(to: context.appendingPathComponent("src.txt"))
            return context
        }

        func context(_ directory: TemporaryDirectory, _ dockerfile: String, source: String) throws -> URL {
            try context(at: directory.appending("ctx"), dockerfile, source: source)
        }

        /// A file of the image in `output/oci`, unpacked by umoci.
        func file(_ path: String, in output: URL, directory: TemporaryDirectory) throws -> String {
            let bundle = directory.appending("bundle-\(UUID().uuidString.prefix(8))")
            _ = try runProcess(
                "umoci", ["unpack", "--image", "\(output.appendingPathComponent("oci").path):latest", bundle.path]
            ).checked()
            defer { try? FileManager.default.removeItem(at: bundle) }
            return try String(
                contentsOf: bundle.appendingPathComponent("rootfs").appendingPathComponent(path), encoding: .utf8)
        }

        /// The RUN step writes when it ran; a rebuild that reuses its layer has the same time.
        static let timedRun = """
            FROM scratch
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "sh", "-c", "/bin/busybox date +%s%N > /ran-at"]
            COPY src.txt /src.txt
            """

        @Test func aFreshWorkerReusesTheRunLayerFromTheCacheRepository() async throws {
            // Basic auth over TLS with a private CA: the cache is reached as pushes are. A git
            // checkout, as in a pipeline: each commit's layers are dated with its commit time.
            try await withTestRegistry(.basic(tls: true)) { registry in
                try await withTestGitRepository { repository in
                    try await withTemporaryDirectory { directory in
                        let context = try context(at: repository.path, Self.timedRun, source: "one\n")
                        try repository.commit("app")
                        let cacheRepository = "\(registry.host)/team/app-cache"
                        let password = try #require(registry.password)
                        let env = [
                            "CONTEXT": context.path, "CACHE_REPOSITORY": cacheRepository,
                            "REGISTRY_USERNAME": try #require(registry.username), "REGISTRY_PASSWORD": password,
                            "REGISTRY_CA_CERTS": try #require(registry.caCertificateFile).path,
                        ]
                        var first = env
                        first["CACHE"] = directory.appending("worker-a").path
                        first["OUTPUT"] = directory.appending("first").path
                        let cold = try builds.buildTask(directory.url, first)
                        try #require(cold.succeeded, "\(cold.stderrString)")
                        let tags = registry.storageDirectory.appendingPathComponent(
                            "docker/registry/v2/repositories/team/app-cache/_manifests/tags")
                        #expect(
                            try FileManager.default.contentsOfDirectory(atPath: tags.path).count >= 3,
                            "one cache image per step")

                        // Another worker (an empty buildah storage) builds the next commit, whose source changed after the RUN.
                        try repository.commit("change the source", files: ["src.txt": "two\n"])
                        var second = env
                        second["CACHE"] = directory.appending("worker-b").path
                        second["OUTPUT"] = directory.appending("second").path
                        second["CACHE_TTL"] = "168h"
                        let warm = try builds.buildTask(directory.url, second)
                        try #require(warm.succeeded, "\(warm.stderrString)")
                        #expect(
                            warm.stderrString.contains("--> Cache pulled from remote \(cacheRepository):"),
                            "\(warm.stderrString)")
                        let afterRun = warm.stderrString.components(separatedBy: "RUN [").last ?? ""
                        #expect(afterRun.contains("--> Using cache"), "the RUN step reused: \(warm.stderrString)")
                        #expect(!warm.stderrString.contains(password) && !cold.stderrString.contains(password))
                        let ranAt = try file("ran-at", in: directory.appending("first"), directory: directory)
                        #expect(
                            try file("ran-at", in: directory.appending("second"), directory: directory) == ranAt,
                            "the RUN did not run again")
                        #expect(try file("src.txt", in: directory.appending("second"), directory: directory) == "two\n")

                        // CACHE_TTL reaches buildah: a cached layer older than it is not reused. A
                        // commit older than it is said to date the layers it caches as too old.
                        try await Task.sleep(for: .seconds(2))
                        try repository.commit(
                            "an old commit", files: ["src.txt": "three\n"],
                            date: Date(timeIntervalSinceNow: -10 * 86_400))
                        var third = env
                        third["CACHE"] = directory.appending("worker-c").path
                        third["OUTPUT"] = directory.appending("third").path
                        third["CACHE_TTL"] = "1s"
                        let expired = try builds.buildTask(directory.url, third)
                        try #require(expired.succeeded, "\(expired.stderrString)")
                        // buildah may still pull a cached step, then finds it too old and runs the step.
                        #expect(!expired.stderrString.contains("--> Using cache"), "\(expired.stderrString)")
                        #expect(
                            expired.stderrString.contains("CACHE_TTL=1s: the commit is 240 h old"),
                            "\(expired.stderrString)")
                        #expect(
                            try file("ran-at", in: directory.appending("third"), directory: directory) != ranAt,
                            "the RUN ran again")
                    }
                }
            }
        }

        @Test func cacheMountsLiveInCACHEAndPersistBetweenBuilds() throws {
            try withTemporaryDirectory { directory in
                // The RUN comes after the source, so each build with a new source runs it.
                let dockerfile = """
                    FROM scratch
                    COPY busybox /bin/busybox
                    COPY src.txt /src.txt
                    RUN --mount=type=cache,target=/c ["/bin/busybox", "sh", "-c", "/bin/busybox echo x >> /c/count && /bin/busybox wc -l < /c/count > /count"]
                    """
                let context = try context(directory, dockerfile, source: "one\n")
                let cache = directory.appending("cache")
                var env = ["CONTEXT": context.path, "CACHE": cache.path, "OUTPUT": directory.appending("first").path]
                let first = try builds.buildTask(directory.url, env)
                try #require(first.succeeded, "\(first.stderrString)")
                #expect(
                    try file("count", in: directory.appending("first"), directory: directory).trimmingCharacters(
                        in: .whitespacesAndNewlines) == "1")

                try Data("two\n".utf8).write(to: context.appendingPathComponent("src.txt"))
                env["OUTPUT"] = directory.appending("second").path
                let second = try builds.buildTask(directory.url, env)
                try #require(second.succeeded, "\(second.stderrString)")
                #expect(
                    try file("count", in: directory.appending("second"), directory: directory).trimmingCharacters(
                        in: .whitespacesAndNewlines) == "2")
                // In CACHE (a Concourse task's caches: entry), not in /var/tmp.
                let kept = try String(contentsOf: cache.appendingPathComponent("mounts/c/count"), encoding: .utf8)
                #expect(kept == "x\nx\n")
            }
        }

        @Test func anAssembledImageSaysTheCacheRepositoryIsUnused() throws {
            try withTemporaryDirectory { directory in
                let context = try context(directory, "FROM scratch\nCOPY src.txt /src.txt\n", source: "one\n")
                // No registry answers there: an assembled image never reaches for the cache.
                let result = try builds.buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "CACHE": directory.appending("cache").path,
                        "CACHE_REPOSITORY": "127.0.0.1:9/team/app-cache",
                    ])
                #expect(result.succeeded, "\(result.stderrString)")
                let notes = result.stderrString.split(separator: "\n").filter {
                    $0.contains("CACHE_REPOSITORY: not used, the image is assembled")
                }
                #expect(notes.count == 1, "\(result.stderrString)")
            }
        }

        @Test func aCacheRepositoryThatCannotBePushedToFailsTheBuildInOneLine() throws {
            try withTemporaryDirectory { directory in
                let context = try context(directory, Self.timedRun, source: "one\n")
                // Nothing listens on port 9: buildah 1.28 fails the build when a cache push fails.
                let result = try builds.buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "CACHE": directory.appending("cache").path,
                        "REGISTRY_INSECURE": "true", "CACHE_REPOSITORY": "127.0.0.1:9/team/app-cache",
                    ])
                #expect(result.status == 1)
                let errors = result.stderrString.split(separator: "\n").filter { $0.hasPrefix("build-task: ") }
                #expect(
                    errors.count == 1 && errors[0].contains("failed to push a step to CACHE_REPOSITORY"),
                    "\(result.stderrString)")
            }
        }

        @Test func aBadSettingIsOneLineFromTheBinary() throws {
            try withTemporaryDirectory { directory in
                let context = try context(directory, Self.timedRun, source: "one\n")
                let result = try builds.buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "CACHE": directory.appending("cache").path,
                        "CACHE_REPOSITORY": "registry.example/team/cache:v1",
                    ])
                #expect(result.status == 1)
                let lines = result.stderrString.split(separator: "\n")
                #expect(
                    lines.count == 1
                        && lines[0].contains(
                            "CACHE_REPOSITORY=registry.example/team/cache:v1: a repository without a tag"),
                    "\(result.stderrString)")
            }
        }
    }
}

@Suite("build-task's shared cache settings")
struct SharedCacheSettingsTests {
    func configuration(_ environment: [String: String]) throws -> BuildConfiguration {
        try withTemporaryDirectory { directory in
            try Data("FROM scratch\n".utf8).write(to: directory.appending("Dockerfile"))
            var env = environment
            env["CONTEXT"] = directory.url.path
            return try BuildConfiguration(flags: try BuildFlags.parse([]), environment: env, directory: directory.url)
        }
    }

    @Test func theRepositoryAndTTLBecomeBuildahOptions() throws {
        let configuration = try configuration([
            "CACHE_REPOSITORY": "127.0.0.1:5000/team/app-cache", "CACHE_TTL": "168h",
        ])
        #expect(
            SharedCache.options(configuration) == [
                "--cache-from", "127.0.0.1:5000/team/app-cache", "--cache-to", "127.0.0.1:5000/team/app-cache",
                "--cache-ttl", "604800s",
            ])
        #expect(SharedCache.options(try self.configuration([:])).isEmpty)
        // A Docker Hub name, as buildah needs it written out.
        #expect(
            SharedCache.options(try self.configuration(["CACHE_REPOSITORY": "team/cache"])).prefix(2) == [
                "--cache-from", "docker.io/team/cache",
            ])
    }

    @Test(arguments: [
        (
            ["CACHE_REPOSITORY": "registry.example/team/cache:v1"],
            "CACHE_REPOSITORY=registry.example/team/cache:v1: a repository without a tag or digest"
        ),
        (
            ["CACHE_REPOSITORY": "registry.example/team/cache@sha256:" + String(repeating: "a", count: 64)],
            "a repository without a tag or digest"
        ),
        (["CACHE_REPOSITORY": "Registry Example/team"], "CACHE_REPOSITORY: "),
        (
            ["CACHE_REPOSITORY": "registry.example/team/app", "TAG": "registry.example/team/app:1"],
            "is the TAG repository"
        ),
        (
            ["CACHE_REPOSITORY": "registry.example/team/app", "SKIP_IF_PUBLISHED": "registry.example/team/app"],
            "is the SKIP_IF_PUBLISHED repository"
        ),
        (
            ["CACHE_REPOSITORY": "registry.example/team/cache", "BUILDER": "assemble"],
            "CACHE_REPOSITORY with BUILDER=assemble"
        ),
        (["CACHE_TTL": "0"], "CACHE_TTL=0: buildah reuses no cached layer"),
        (["CACHE_TTL": "7d"], "CACHE_TTL=\"7d\" is not a duration"),
        (["CACHE_TTL": "-1h"], "is not a duration"),
    ])
    func badSettingsAreRefusedInOneLine(environment: [String: String], expected: String) {
        let error = #expect(throws: BuildConfiguration.ValidationError.self) { try configuration(environment) }
        #expect(error?.description.contains(expected) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test func aCommitOlderThanTheTTLIsSaidToCacheLayersTooOldToReuse() throws {
        let configuration = try configuration(["CACHE_TTL": "1h"])
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(SharedCache.staleCommit(configuration, commitTime: 1_800_000_000 - 600, now: now) == nil)
        #expect(
            SharedCache.staleCommit(configuration, commitTime: nil, now: now) == nil,
            "no git checkout: layers are dated now")
        let stale = try #require(
            SharedCache.staleCommit(configuration, commitTime: 1_800_000_000 - 3 * 86_400, now: now))
        #expect(stale.contains("the commit is 72 h old"), "\(stale)")
        #expect(SharedCache.staleCommit(try self.configuration([:]), commitTime: 0, now: now) == nil)
    }
}
