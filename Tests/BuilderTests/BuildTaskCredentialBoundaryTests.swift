import BuildContext
import Foundation
import OCI
import TestSupport
import Testing

@testable import Builder

/// The repository is untrusted, the pipeline is not: build-task's registry credentials go
/// only to the registries the pipeline names, never to one a `FROM` line names, and
/// nothing of them reaches an image, whatever the context holds. Through the built
/// build-task with real buildah, a real registry for the pipeline's images and a
/// token-auth registry (whose token server logs who asked) for the repository's choice.
extension ImageBuildTests {
    @Suite("build-task's credentials stay with their registries and out of the image")
    struct BuildTaskCredentialBoundaryTests {
        let builds = ImageBuildTests()
        static let pusher = "pusher"
        static let pusherPassword = "pusher-password-\(UUID().uuidString)"
        static let stranger = "stranger"
        static let strangerPassword = "stranger-password"

        /// Pushes busybox and a marker as `reference`, with `environment`'s credentials.
        func pushBase(_ reference: String, _ environment: [String: String], directory: TemporaryDirectory) throws {
            let context = directory.appending("base-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
            try Data("FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n".utf8).write(
                to: context.appendingPathComponent("Dockerfile"))
            try Data("base\n".utf8).write(to: context.appendingPathComponent("marker"))
            let pushed = try builds.buildTask(
                directory.url,
                environment.merging([
                    "CONTEXT": context.path, "OUTPUT": context.path + "-image", "CACHE": context.path + "-cache",
                    "REGISTRY_INSECURE": "true",
                ]) { $1 }, arguments: ["--tag", reference, "--push"])
            try #require(pushed.succeeded, "\(pushed.stderrString)")
        }

        /// A context whose image is built by buildah (a RUN) on `base`.
        func context(_ directory: URL, base: String, copyAll: Bool = false) throws -> URL {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let copy = copyAll ? "COPY . /app/\n" : ""
            try Data("FROM \(base)\n\(copy)RUN [\"/bin/busybox\", \"cp\", \"/marker\", \"/seen\"]\n".utf8)
                .write(to: directory.appendingPathComponent("Dockerfile"))
            try Data("the app\n".utf8).write(to: directory.appendingPathComponent("src.txt"))
            return directory
        }

        /// The stranger's token server: its requests after the first `skipping`.
        func strangerRequests(_ registry: TestRegistry, after skipping: Int) throws -> [TokenRequest] {
            Array(try registry.tokenRequests().dropFirst(skipping))
        }

        @Test func registryCredentialsNeverReachARegistryOnlyTheDockerfileNames() async throws {
            try await withTestRegistry(.basic(username: Self.pusher, password: Self.pusherPassword)) { ours in
                let theirs = TokenServerOptions(
                    username: Self.stranger, password: Self.strangerPassword, anonymousActions: ["pull"])
                try await withTestRegistry(.token(theirs)) { theirs in
                    try await withTemporaryDirectory { directory in
                        try pushBase(
                            "\(theirs.host)/team/base:1",
                            ["REGISTRY_USERNAME": Self.stranger, "REGISTRY_PASSWORD": Self.strangerPassword],
                            directory: directory)
                        let before = try theirs.tokenRequests().count
                        // The repository's Dockerfile names their registry; the pipeline pushes to ours.
                        let context = try context(directory.appending("app"), base: "\(theirs.host)/team/base:1")
                        let built = try builds.buildTask(
                            directory.url,
                            [
                                "CONTEXT": context.path, "OUTPUT": directory.appending("image").path,
                                "CACHE": directory.appending("cache").path,
                                "REGISTRY_USERNAME": Self.pusher, "REGISTRY_PASSWORD": Self.pusherPassword,
                                "REGISTRY_INSECURE": "true",
                            ], arguments: ["--tag", "\(ours.host)/team/app:1", "--push"])
                        #expect(built.succeeded, "\(built.stderrString)")
                        #expect(
                            built.stderrString.contains(": RUN [\"/bin/busybox\", \"cp\""),
                            "buildah pulled the base: \(built.stderrString)")
                        // Their registry was asked (our lookup and buildah's pull), anonymously every time.
                        let asked = try strangerRequests(theirs, after: before)
                        #expect(!asked.isEmpty)
                        for request in asked {
                            #expect(
                                request.credentials == .none && request.username == nil,
                                "sent to a registry the Dockerfile names: \(request)")
                        }
                        // Ours got the image, with our credentials.
                        let pushed = try runProcess(
                            "skopeo",
                            [
                                "inspect", "--tls-verify=false", "--creds", "\(Self.pusher):\(Self.pusherPassword)",
                                "docker://\(ours.host)/team/app:1",
                            ])
                        #expect(pushed.succeeded, "\(pushed.stderrString)")
                        #expect(!(built.stdoutString + built.stderrString).contains(Self.pusherPassword))
                    }
                }
            }
        }

        @Test func aDockerConfigEntryGoesOnlyToItsOwnRegistry() async throws {
            try await withTestRegistry(.basic(username: Self.pusher, password: Self.pusherPassword)) { ours in
                // Their registry lets nobody pull anonymously: the build works only if our
                // lookup and buildah's pull both use their own entry.
                try await withTestRegistry(
                    .token(TokenServerOptions(username: Self.stranger, password: Self.strangerPassword))
                ) { theirs in
                    try await withTemporaryDirectory { directory in
                        try pushBase(
                            "\(theirs.host)/team/base:1",
                            ["REGISTRY_USERNAME": Self.stranger, "REGISTRY_PASSWORD": Self.strangerPassword],
                            directory: directory)
                        let before = try theirs.tokenRequests().count
                        let dockerConfig = directory.appending("docker")
                        try FileManager.default.createDirectory(at: dockerConfig, withIntermediateDirectories: true)
                        let entry = Data("\(Self.stranger):\(Self.strangerPassword)".utf8).base64EncodedString()
                        try Data(#"{"auths":{"\#(theirs.host)":{"auth":"\#(entry)"}}}"#.utf8).write(
                            to: dockerConfig.appendingPathComponent("config.json"))
                        let context = try context(directory.appending("app"), base: "\(theirs.host)/team/base:1")
                        let built = try builds.buildTask(
                            directory.url,
                            [
                                "CONTEXT": context.path, "OUTPUT": directory.appending("image").path,
                                "CACHE": directory.appending("cache").path,
                                "REGISTRY_USERNAME": Self.pusher, "REGISTRY_PASSWORD": Self.pusherPassword,
                                "REGISTRY_INSECURE": "true",
                                "DOCKER_CONFIG": dockerConfig.path,
                            ], arguments: ["--tag", "\(ours.host)/team/app:1", "--push"])
                        #expect(built.succeeded, "\(built.stderrString)")
                        #expect(
                            built.stderrString.contains(": RUN [\"/bin/busybox\", \"cp\""),
                            "buildah pulled the base: \(built.stderrString)")
                        let asked = try strangerRequests(theirs, after: before)
                        #expect(asked.contains { $0.credentials == .valid }, "their own entry was used: \(asked)")
                        for request in asked {
                            #expect(request.username != Self.pusher && request.credentials != .invalid, "\(request)")
                        }

                        // Without that entry their registry refuses us, and the one line says where REGISTRY_* go.
                        let refused = try builds.buildTask(
                            directory.url,
                            [
                                "CONTEXT": context.path, "OUTPUT": directory.appending("refused").path,
                                "CACHE": directory.appending("cache").path,
                                "REGISTRY_USERNAME": Self.pusher, "REGISTRY_PASSWORD": Self.pusherPassword,
                                "REGISTRY_INSECURE": "true",
                            ], arguments: ["--tag", "\(ours.host)/team/app:1"])
                        #expect(refused.status == 1)
                        #expect(
                            refused.stderrString.contains(
                                "go only to the registries of TAG, SKIP_IF_PUBLISHED and CACHE_REPOSITORY: give \(theirs.host) an entry in DOCKER_CONFIG"
                            ),
                            "\(refused.stderrString)")
                        #expect(!refused.stderrString.contains(Self.pusherPassword))
                    }
                }
            }
        }

        /// The finding: with the defaults (`CONTEXT=.`, `CACHE=cache`, `OUTPUT=image`)
        /// buildah's auth file and storage sat inside the context, and `COPY .` pushed them.
        @Test func theRegistryPasswordNeverEntersTheImageWithTheDefaultContextAndCache() async throws {
            try await withTestRegistry(.basic(username: Self.pusher, password: Self.pusherPassword)) { ours in
                try await withTemporaryDirectory { directory in
                    let credentials = ["REGISTRY_USERNAME": Self.pusher, "REGISTRY_PASSWORD": Self.pusherPassword]
                    try pushBase("\(ours.host)/team/base:1", credentials, directory: directory)
                    // The base is on the pipeline's registry: buildah pulls it with REGISTRY_*.
                    let context = try context(
                        directory.appending("repo"), base: "\(ours.host)/team/base:1", copyAll: true)
                    // The repository's own .dockerignore still applies beside the exclusions.
                    try Data("*.md\n".utf8).write(to: context.appendingPathComponent(".dockerignore"))
                    try Data("notes\n".utf8).write(to: context.appendingPathComponent("notes.md"))
                    let temporary = directory.appending("tmp")
                    try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
                    // What a run killed before this fix left behind, and a killed run's private directory.
                    let legacy = context.appendingPathComponent("cache/run-0badc0de/auth.json")
                    try FileManager.default.createDirectory(
                        at: legacy.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try Data("{}".utf8).write(to: legacy)
                    let orphan = temporary.appendingPathComponent("\(PrivateRunDirectory.prefix)999999999.0badc0")
                    try FileManager.default.createDirectory(at: orphan, withIntermediateDirectories: true)
                    try Data("{}".utf8).write(to: orphan.appendingPathComponent("auth.json"))

                    var env = credentials.merging([
                        "REGISTRY_INSECURE": "true", "TMPDIR": temporary.path,
                        "SKIP_IF_PUBLISHED": "\(ours.host)/team/app",
                    ]) { $1 }
                    env["CONTEXT"] = nil
                    let built = try builds.buildTask(
                        context, env, arguments: ["--tag", "\(ours.host)/team/app:1", "--push"])
                    try #require(built.succeeded, "\(built.stderrString)")
                    #expect(!FileManager.default.fileExists(atPath: legacy.path), "an old auth file in CACHE is swept")
                    #expect(
                        !FileManager.default.fileExists(atPath: orphan.path),
                        "a killed run's private directory is swept")
                    #expect(
                        try FileManager.default.contentsOfDirectory(atPath: temporary.path).filter {
                            $0.hasPrefix(PrivateRunDirectory.prefix)
                        }.isEmpty)

                    let pulled = directory.appending("pulled")
                    _ = try runProcess(
                        "skopeo",
                        [
                            "copy", "--quiet", "--src-tls-verify=false", "--src-creds",
                            "\(Self.pusher):\(Self.pusherPassword)",
                            "docker://\(ours.host)/team/app:1", "oci:\(pulled.path):latest",
                        ]
                    ).checked()
                    let scanned = try builds.everyOutputByte(pulled)
                    // The scan sees inside layers: the context's own file is there.
                    #expect(
                        scanned.contains {
                            $0.0.hasSuffix("(gunzipped)") && $0.1.range(of: Data("app/src.txt".utf8)) != nil
                        })
                    for (name, data) in scanned {
                        for needle in [
                            Self.pusherPassword,
                            Data("\(Self.pusher):\(Self.pusherPassword)".utf8).base64EncodedString(),
                            "auth.json", "vfs-layers", "app/cache/", "app/image/", "app/notes.md",
                        ] {
                            #expect(data.range(of: Data(needle.utf8)) == nil, "\(name) holds \(needle)")
                        }
                    }

                    // The inputs digest leaves CACHE and OUTPUT out as buildah does: with
                    // buildah's storage and the first image now in the context, nothing changed.
                    let again = try builds.buildTask(context, env, arguments: ["--tag", "\(ours.host)/team/app:1"])
                    #expect(again.succeeded, "\(again.stderrString)")
                    #expect(
                        try builds.json(context.appendingPathComponent("image/build.json"))["reused"] as? Bool == true,
                        "\(again.stderrString)")
                }
            }
        }

        static var pusherCredentials: [String: String] {
            ["REGISTRY_USERNAME": pusher, "REGISTRY_PASSWORD": pusherPassword]
        }

        /// A context `repo` holding `dockerfile`, and `team/base:1` pushed to `registry` with the pusher's credentials.
        func context(_ dockerfile: String, baseIn registry: TestRegistry, _ directory: TemporaryDirectory) throws -> URL
        {
            try pushBase("\(registry.host)/team/base:1", Self.pusherCredentials, directory: directory)
            let context = directory.appending("repo")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try Data(dockerfile.utf8).write(to: context.appendingPathComponent("Dockerfile"))
            return context
        }

        @Test func anAdditionalTargetKeepsTheImagesRegistryCredentials() async throws {
            try await withTestRegistry(.basic(username: Self.pusher, password: Self.pusherPassword)) { ours in
                try await withTemporaryDirectory { directory in
                    let credentials = Self.pusherCredentials
                    // The test stage is built without a tag of its own; its base is on the tag's registry.
                    let context = try self.context(
                        """
                        FROM \(ours.host)/team/base:1 AS test
                        RUN ["/bin/busybox", "cp", "/marker", "/tested"]
                        FROM \(ours.host)/team/base:1
                        RUN ["/bin/busybox", "cp", "/marker", "/seen"]
                        """, baseIn: ours, directory)
                    let built = try builds.buildTask(
                        directory.url,
                        credentials.merging([
                            "CONTEXT": context.path, "OUTPUT": directory.appending("image").path,
                            "CACHE": directory.appending("cache").path,
                            "REGISTRY_INSECURE": "true", "ADDITIONAL_TARGETS": "test",
                        ]) { $1 }, arguments: ["--tag", "\(ours.host)/team/app:1"])
                    #expect(built.succeeded, "\(built.stderrString)")
                    #expect(built.stderrString.contains("target 'test': sha256:"), "\(built.stderrString)")
                }
            }
        }

        @Test func anAbortedBuildLeavesNoCredentialsBehind() async throws {
            try await withTestRegistry(.basic(username: Self.pusher, password: Self.pusherPassword)) { ours in
                try await withTemporaryDirectory { directory in
                    let credentials = Self.pusherCredentials
                    let context = try self.context(
                        "FROM \(ours.host)/team/base:1\nRUN --mount=type=secret,id=token [\"/bin/busybox\", \"sleep\", \"20\"]\n",
                        baseIn: ours, directory)
                    let temporary = directory.appending("tmp")
                    let cache = directory.appending("cache")
                    try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
                    // Started by a shell, which sends SIGTERM once the RUN is under way (as
                    // Concourse aborts a build), then waits for buildah to be gone too.
                    let script = #"""
                        "$0" > "$1/out" 2> "$1/err" & pid=$!
                        i=0; until grep -q "RUN --mount" "$1/err" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done
                        ls "$TMPDIR" > "$1/during"
                        kill -TERM $pid; wait $pid; echo "exit $?"
                        i=0; while pgrep -f "$2" > /dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
                        """#
                    var env = [
                        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
                        "TMPDIR": temporary.path,
                        "CONTEXT": context.path, "CACHE": cache.path, "OUTPUT": directory.appending("image").path,
                        "REGISTRY_INSECURE": "true", "BUILDKIT_SECRETTEXT_token": "a-build-secret",
                        "SKIP_IF_PUBLISHED": "\(ours.host)/team/app",
                    ]
                    env.merge(credentials) { $1 }
                    let aborted = try runProcess(
                        "sh", ["-c", script, try builtProduct("build-task").path, directory.url.path, cache.path],
                        environment: env, currentDirectory: directory.url)
                    let log = (try? String(contentsOf: directory.appending("err"), encoding: .utf8)) ?? ""
                    #expect(
                        aborted.stdoutString.contains("exit 143"), "ended by SIGTERM: \(aborted.stdoutString) \(log)")
                    let during = (try? String(contentsOf: directory.appending("during"), encoding: .utf8)) ?? ""
                    #expect(
                        during.contains(PrivateRunDirectory.prefix),
                        "the private directory existed while the RUN ran: \(during) \(log)")
                    let left = try FileManager.default.contentsOfDirectory(atPath: temporary.path).filter {
                        $0.hasPrefix(PrivateRunDirectory.prefix)
                    }
                    #expect(left.isEmpty, "removed on SIGTERM: \(left)")
                    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []).filter {
                        $0.hasPrefix("run-")
                    }
                    #expect(runs.isEmpty, "the run's work files in CACHE too: \(runs)")
                }
            }
        }

        @Test func theSourceLabelKeepsNoCredentialsQueryOrFragment() async throws {
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    _ = try repository.commit("app", files: ["Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "f\n"])
                    _ = try repository.git(
                        "remote", "add", "origin",
                        "https://ci:glpat-secret@git.example/team/app.git?private_token=tok-secret#frag")
                    let built = try builds.buildTask(
                        directory.url,
                        [
                            "CONTEXT": repository.path.path, "OUTPUT": directory.appending("image").path,
                            "CACHE": directory.appending("cache").path,
                        ])
                    try #require(built.succeeded, "\(built.stderrString)")
                    #expect(
                        try builds.labels(directory.appending("image"))["org.opencontainers.image.source"]
                            == "https://git.example/team/app.git")
                    for (name, data) in try builds.everyOutputByte(directory.appending("image")) {
                        #expect(data.range(of: Data("secret".utf8)) == nil, "\(name)")
                    }
                }
            }
        }

        @Test(arguments: [
            ("https://ci:tok@git.example/r.git?private_token=x#y", "https://git.example/r.git"),
            ("ssh://git:tok@git.example:2222/r.git", "ssh://git.example:2222/r.git"),
            ("https://git.example/r.git?a b", "https://git.example/r.git"),
            ("https://user@git.example", "https://git.example"),
            ("git@git.example:team/r.git", "git@git.example:team/r.git"),
            ("/srv/git/r.git", "/srv/git/r.git"),
        ])
        func publicSourceDropsUserinfoQueryAndFragment(origin: String, shown: String) {
            #expect(ImageBuild.publicSource(origin) == shown)
        }

        /// Credentials with no registry of the pipeline's to go to are said to be unused, not
        /// silently dropped.
        @Test func credentialsWithNoRegistryToGoToAreNamedUnused() throws {
            try withTemporaryDirectory { directory in
                let context = directory.appending("context")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data("FROM scratch\nCOPY a.txt /a.txt\n".utf8).write(
                    to: context.appendingPathComponent("Dockerfile"))
                try Data("a\n".utf8).write(to: context.appendingPathComponent("a.txt"))
                let result = try builds.buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "BUILDER": "assemble", "REGISTRY_USERNAME": "robot",
                        "REGISTRY_PASSWORD": "pw-never-shown", "CACHE": directory.appending("cache").path,
                        "OUTPUT": directory.appending("image").path,
                    ])
                try #require(result.succeeded, "\(result.stderrString)")
                #expect(result.stderrString.contains("no registry gets them"), "\(result.stderrString)")
                #expect(!result.stderrString.contains("pw-never-shown"))
            }
        }

        @Test func theRegistryPasswordFlagSaysItIsVisible() throws {
            let help = try runProcess(try builtProduct("build-task").path, ["--help"])
            let line = help.stdoutString.components(separatedBy: "--registry-password").dropFirst().first ?? ""
            #expect(line.contains("REGISTRY_PASSWORD") && line.contains("visible"), "\(help.stdoutString)")
        }

        @Test func cacheAndOutputInsideTheContextAreLeftOutOfItAndTheContextItselfIsRefused() throws {
            try withTemporaryDirectory { directory in
                try Data("FROM scratch\n".utf8).write(to: directory.appending("Dockerfile"))
                func configuration(_ environment: [String: String]) throws -> BuildConfiguration {
                    try BuildConfiguration(
                        flags: try BuildFlags.parse([]), environment: environment, directory: directory.url)
                }
                let inside = try configuration([
                    "CONTEXT": directory.url.path, "CACHE": directory.appending("cache").path,
                    "OUTPUT": directory.appending("out/image").path,
                ])
                #expect(inside.contextExclusions == ["cache", "out/image"])
                let outside = try configuration([
                    "CONTEXT": directory.url.path, "CACHE": "/var/tmp/slipway-cache",
                    "OUTPUT": "/var/tmp/slipway-image",
                ])
                #expect(outside.contextExclusions.isEmpty)
                #expect(throws: (any Error).self) {
                    try configuration(["CONTEXT": directory.url.path, "CACHE": directory.url.path])
                }
                // A path with pattern characters is left out literally, and only it.
                let ignore = try Dockerignore("!keep\n").excluding(["ca*he", "#x"])
                #expect(ignore.excludes("ca*he/storage/x") && ignore.excludes("#x"))
                #expect(!ignore.excludes("cache") && !ignore.excludes("keep"))
            }
        }
    }
}
