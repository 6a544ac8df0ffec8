import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The published resource image, proven the way Concourse runs it: `ci/resource-image` builds
/// the `resource` target (release, static Swift runtime, Debian from ci/debian-base) and
/// pushes it to a registry with htpasswd and TLS; skopeo fetches it back and umoci unpacks it,
/// as registry-image does for a resource type; then every step runs in containers made as
/// Concourse makes them (`ConcourseContainer`), through the image's own `/opt/resource/*` and
/// `build-task`, against a git daemon, an sshd and registries on loopback.
///
/// The image is built once per run (``PublishedResourceImage``). `ci/test` builds the release
/// binary first and passes its directory in `SLIPWAY_RESOURCE_BIN`; without it the script
/// builds it (about 3 minutes).
@Suite(
    "the resource image, run as Concourse runs it", .serialized,
    .enabled(if: geteuid() == 0, "containers are made with namespaces, mounts and chown, as root"))
struct ResourceImageRuntimeTests {
    static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// A container of the image, privileged or not, with a scratch directory for its overlays.
    func container(_ image: PublishedResourceImage.Pulled, privileged: Bool, scratch: URL) -> ConcourseContainer {
        ConcourseContainer(
            harness: image.harness, rootfs: privileged ? image.rootfs : image.shiftedRootfs,
            scratch: scratch, privileged: privileged, environment: image.environment)
    }

    @Test func theImageIsWithinItsSizeGoalAndEveryBinaryItShipsFindsItsLibrariesInsideIt() async throws {
        let image = try await PublishedResourceImage.shared.image()
        #expect(image.compressedBytes <= 100 << 20, "\(image.compressedBytes) bytes compressed: over the 100 MiB goal")
        #expect(image.scriptReport.contains("goal: at most 100 MiB compressed"), "\(image.scriptReport)")

        // Every ELF file of the image, found from outside; listed by the image's own loader inside.
        var dynamic: [String] = []
        var staticPrograms: [String] = []
        let enumerator = FileManager.default.enumerator(
            at: image.rootfs, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey])
        while let file = enumerator?.nextObject() as? URL {
            let values = try file.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
            guard values.isRegularFile == true, values.isSymbolicLink != true, isELF(file) else { continue }
            let inImage = String(
                file.resolvingSymlinksInPath().path.dropFirst(image.rootfs.resolvingSymlinksInPath().path.count))
            if isDynamicELF(file) { dynamic.append(inImage) } else { staticPrograms.append(inImage) }
        }
        for program in [
            "/usr/local/bin/slipway", "/usr/bin/git", "/usr/lib/git-core/git-remote-http", "/usr/bin/ssh",
            "/usr/bin/buildah",
        ] {
            #expect(dynamic.contains(program), "\(program) is in the image, dynamically linked: \(dynamic)")
        }
        #expect(staticPrograms == ["/usr/bin/busybox"], "the only static program is busybox: \(staticPrograms)")

        try withTemporaryDirectory(prefix: "slipway-image-libraries") { scratch in
            let script =
                #"for f; do echo "== $f"; /lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1; echo "status $?"; done"#
            let listed = try container(image, privileged: false, scratch: scratch.url)
                .run(["/bin/sh", "-c", script, "sh"] + dynamic.sorted()).checked()
            let sections = listed.stdoutString.components(separatedBy: "== ").dropFirst()
            #expect(sections.count == dynamic.count, "\(listed.stdoutString)")
            for section in sections {
                #expect(section.hasSuffix("status 0\n") && !section.contains("not found"), "\(section)")
            }
        }
    }

    /// check and in of a source-keyed resource over `git://` and over ssh with
    /// `git.private_key`, as a resource container (not privileged) and as a privileged one.
    @Test(arguments: [false, true])
    func sourceKeyedCheckAndInOverGitAndSSH(privileged: Bool) async throws {
        let image = try await PublishedResourceImage.shared.image()
        try await withTestGitRepository { repository in
            _ = try repository.commit("other", files: ["README": "hello\n"])
            let head = try repository.commit("the app", files: ["app/Dockerfile": "FROM scratch\n"])
            let bare = try repository.bareClone()
            try await withTestGitDaemon(root: bare.path.deletingLastPathComponent()) { daemon in
                try await withTestSSHServer { sshd in
                    let uris: [(name: String, git: [String: Any])] = [
                        (
                            "git://",
                            [
                                "uri": "\(daemon.baseURL)/\(bare.path.lastPathComponent)", "branch": "main",
                                "paths": ["app/"],
                            ]
                        ),
                        (
                            "ssh",
                            [
                                "uri": sshd.url(bare.path), "branch": "main", "paths": ["app/"],
                                "private_key": sshd.clientPrivateKey,
                            ]
                        ),
                    ]
                    for (name, git) in uris {
                        try withTemporaryDirectory(prefix: "slipway-resource-steps") { scratch in
                            var resource = container(image, privileged: privileged, scratch: scratch.url)
                            let source: [String: Any] = ["repository": "registry.invalid/team/app", "git": git]
                            let check = try resource.run(
                                ["/opt/resource/check"], stdin: try json(["source": source, "version": NSNull()]))
                            try #require(check.succeeded, "\(name) check: \(check.stderrString)")
                            #expect(
                                try JSONSerialization.jsonObject(with: check.stdout) as? [[String: String]] == [
                                    ["ref": head]
                                ], "\(name): \(check.stdoutString)")
                            #expect(!check.stderrString.contains("PRIVATE KEY"), "the key never shows")

                            let get = scratch.appending("get")
                            try FileManager.default.createDirectory(at: get, withIntermediateDirectories: true)
                            resource.mounts = [(get, "/tmp/build/get")]
                            resource.environment = ConcourseContainer.environment(
                                image.environment, ConcourseContainer.buildMetadata)
                            let fetched = try resource.run(
                                ["/opt/resource/in", "/tmp/build/get"],
                                stdin: try json([
                                    "source": source, "version": ["ref": head], "params": ["image": "skip"],
                                ]))
                            try #require(fetched.succeeded, "\(name) in: \(fetched.stderrString)")
                            let answer = try JSONSerialization.jsonObject(with: fetched.stdout) as? [String: Any]
                            #expect(
                                (answer?["version"] as? [String: String]) == ["ref": head],
                                "\(name): \(fetched.stdoutString)")
                            #expect(
                                try String(
                                    contentsOf: get.appendingPathComponent("source/app/Dockerfile"), encoding: .utf8)
                                    == "FROM scratch\n")
                            #expect(
                                try String(contentsOf: get.appendingPathComponent("ref"), encoding: .utf8)
                                    .trimmingCharacters(in: .whitespacesAndNewlines) == head)
                        }
                    }
                    #expect(sshd.acceptedPublicKey(), "the ssh steps logged in with the key")
                }
            }
        }
    }

    /// The build of the issue, as a pipeline runs it: check and in of the source (a resource
    /// container), build-task in a privileged task building a Dockerfile with RUN from a base in
    /// the registry, out pushing the image, in with format rootfs, and check of published
    /// images only, before (nothing) and after (the version).
    @Test func aPrivilegedTaskBuildsWithRunAndTheResourcePushesFetchesAndChecksIt() async throws {
        let image = try await PublishedResourceImage.shared.image()
        try await withTestRegistry(.basic(tls: true)) { registry in
            try await withTemporaryDirectory(prefix: "slipway-concourse-build") { scratch in
                let caPEM = try #require(registry.caCertificatePEM)
                let credentials = ["REGISTRY_USERNAME": registry.username!, "REGISTRY_PASSWORD": registry.password!]
                // The base, pushed from this machine by the test build of build-task: busybox on scratch.
                let baseContext = scratch.appending("base")
                try FileManager.default.createDirectory(at: baseContext, withIntermediateDirectories: true)
                try FileManager.default.copyItem(
                    atPath: "/bin/busybox", toPath: baseContext.appendingPathComponent("busybox").path)
                try Data("FROM scratch\nCOPY busybox /bin/busybox\n".utf8).write(
                    to: baseContext.appendingPathComponent("Dockerfile"))
                let base = "\(registry.host)/team/base:1"
                _ = try runProcess(
                    try builtProduct("build-task").path, ["--tag", base, "--push"],
                    environment: credentials.merging([
                        "PATH": Self.path, "HOME": scratch.path, "CONTEXT": baseContext.path,
                        "OUTPUT": scratch.appending("base-image").path, "CACHE": scratch.appending("base-cache").path,
                        "REGISTRY_CA_CERTS": registry.caCertificateFile!.path,
                    ]) { $1 },
                    currentDirectory: scratch.url
                ).checked()

                try await withTestGitRepository { repository in
                    let run = #"RUN ["/bin/busybox", "sh", "-c", "echo built in a privileged task > /built"]"#
                    let head = try repository.commit("the app", files: ["app/Dockerfile": "FROM \(base)\n\(run)\n"])
                    let bare = try repository.bareClone()
                    try await withTestGitDaemon(root: bare.path.deletingLastPathComponent()) { daemon in
                        let source: [String: Any] = [
                            "repository": "\(registry.host)/team/app", "username": registry.username!,
                            "password": registry.password!,
                            "ca_certs": [caPEM],
                            "git": [
                                "uri": "\(daemon.baseURL)/\(bare.path.lastPathComponent)", "branch": "main",
                                "paths": ["app/"],
                            ],
                        ]
                        var resource = container(image, privileged: false, scratch: scratch.url)
                        func directory(_ name: String) throws -> URL {
                            let url = scratch.appending("volumes/\(name)")
                            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
                            return url
                        }
                        func check(_ source: [String: Any]) throws -> [[String: String]]? {
                            resource.mounts = []
                            resource.environment = image.environment
                            resource.workingDirectory = "/"
                            let result = try resource.run(
                                ["/opt/resource/check"], stdin: try json(["source": source, "version": NSNull()]))
                            try #require(result.succeeded, "check: \(result.stderrString)")
                            #expect(!result.stderrString.contains(registry.password!), "the password never shows")
                            return try JSONSerialization.jsonObject(with: result.stdout) as? [[String: String]]
                        }
                        func get(_ name: String, params: [String: Any]) throws -> URL {
                            let volume = try directory(name)
                            resource.mounts = [(volume, "/tmp/build/get")]
                            resource.workingDirectory = "/tmp/build/get"  // the get step's Dir (atc/exec/get_step.go)
                            resource.environment = ConcourseContainer.environment(
                                image.environment, ConcourseContainer.buildMetadata)
                            let result = try resource.run(
                                ["/opt/resource/in", "/tmp/build/get"],
                                stdin: try json(["source": source, "version": ["ref": head], "params": params]))
                            try #require(result.succeeded, "in: \(result.stderrString)")
                            return volume
                        }

                        #expect(try check(source) == [["ref": head]])
                        var published = source
                        published["require_image"] = true
                        #expect(try check(published) == [], "no image is published yet")
                        let checkout = try get("app-image", params: ["image": "skip"])

                        // The task: privileged, its inputs and outputs under /tmp/build/<id>, as Concourse mounts them.
                        let output = try directory("image")
                        let cache = try directory("cache")
                        let ca = try directory("ca")
                        try Data(caPEM.utf8).write(to: ca.appendingPathComponent("ca.pem"))
                        var task = container(image, privileged: true, scratch: scratch.url)
                        let build = "/tmp/build/8d1e2c9a"
                        task.mounts = [
                            (checkout, "\(build)/app-image"), (output, "\(build)/image"), (cache, "\(build)/cache"),
                            (ca, "\(build)/ca"),
                        ]
                        task.workingDirectory = build
                        // SKIP_IF_PUBLISHED names the registry REGISTRY_* belong to (as the README's quick
                        // start does); the private base there gets them too, a registry only FROM names would not.
                        task.environment = ConcourseContainer.environment(
                            image.environment,
                            credentials.merging([
                                "CONTEXT": "app-image/source/app", "CACHE": "cache", "REGISTRY_CA_CERTS": "ca/ca.pem",
                                "SKIP_IF_PUBLISHED": "\(registry.host)/team/app",
                                "ATC_EXTERNAL_URL": "https://ci.example.com",
                            ]) { $1 })
                        let built = try task.run(["build-task"])
                        try #require(built.succeeded, "build-task in a privileged task: \(built.stderrString)")
                        #expect(!built.stderrString.contains(registry.password!), "the password never shows")
                        #expect(
                            FileManager.default.fileExists(atPath: output.appendingPathComponent("oci/index.json").path)
                        )

                        // out, in a resource container: the task's output and the get, as put inputs.
                        resource.mounts = [(checkout, "/tmp/build/put/app-image"), (output, "/tmp/build/put/image")]
                        resource.environment = ConcourseContainer.environment(
                            image.environment, ConcourseContainer.buildMetadata)
                        resource.workingDirectory = "/tmp/build/put"
                        let put = try resource.run(
                            ["/opt/resource/out", "/tmp/build/put"],
                            stdin: try json(["source": source, "params": ["image": "image/oci"]]))
                        try #require(put.succeeded, "out: \(put.stderrString)")
                        let putVersion =
                            (try JSONSerialization.jsonObject(with: put.stdout) as? [String: Any])?["version"]
                            as? [String: String]
                        #expect(putVersion == ["ref": head], "\(put.stdoutString)")

                        let fetched = try get("app-rootfs", params: ["format": "rootfs"])
                        #expect(
                            try String(contentsOf: fetched.appendingPathComponent("rootfs/built"), encoding: .utf8)
                                == "built in a privileged task\n")
                        #expect(
                            FileManager.default.isExecutableFile(
                                atPath: fetched.appendingPathComponent("rootfs/bin/busybox").path))
                        #expect(
                            FileManager.default.fileExists(atPath: fetched.appendingPathComponent("metadata.json").path)
                        )

                        #expect(try check(published) == [["ref": head]], "the published image's version")
                    }
                }
            }
        }
    }

    /// A Dockerfile that runs something cannot be built without `privileged: true`: one line
    /// says so, from inside the image, in a task container that is not privileged.
    @Test func aRunDockerfileInATaskThatIsNotPrivilegedFailsInOneLineNamingPrivileged() async throws {
        let image = try await PublishedResourceImage.shared.image()
        try withTemporaryDirectory(prefix: "slipway-concourse-task") { scratch in
            let context = scratch.appending("volumes/context")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
            try Data("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n".utf8)
                .write(to: context.appendingPathComponent("Dockerfile"))
            let output = scratch.appending("volumes/image")
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            var task = container(image, privileged: false, scratch: scratch.url)
            task.mounts = [(context, "/tmp/build/5f0c/context"), (output, "/tmp/build/5f0c/image")]
            task.workingDirectory = "/tmp/build/5f0c"
            task.environment = ConcourseContainer.environment(image.environment, ["CONTEXT": "context"])
            let result = try task.run(["build-task"])
            #expect(result.status == 1, "\(result.stderrString)")
            let lines = result.stderrString.split(separator: "\n").map(String.init)
            #expect(
                lines.last?.hasPrefix("build-task: ") == true && lines.last?.contains("privileged: true") == true,
                "\(result.stderrString)")
            #expect(
                lines.filter { $0.contains("privileged: true") }.count == 1, "one line says it: \(result.stderrString)")
        }
    }

    /// A Dockerfile that only copies needs no privileges: build-task assembles the image
    /// itself, and it is the image buildah builds in a privileged task from the same inputs
    /// (files, modes, owners, config, labels).
    @Test func aCopyOnlyBuildInATaskThatIsNotPrivilegedMatchesTheBuildahBuild() async throws {
        let image = try await PublishedResourceImage.shared.image()
        try withTemporaryDirectory(prefix: "slipway-concourse-assemble") { scratch in
            let context = scratch.appending("context")
            try FileManager.default.createDirectory(
                at: context.appendingPathComponent("etc"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
            try Data("hello\n".utf8).write(to: context.appendingPathComponent("etc/greeting"))
            try Data(
                """
                FROM scratch
                COPY busybox /bin/busybox
                COPY etc/ /etc/
                ENV GREETING=/etc/greeting
                LABEL org.example.kind=copy-only
                CMD ["/bin/busybox", "cat", "/etc/greeting"]

                """.utf8
            ).write(to: context.appendingPathComponent("Dockerfile"))

            /// Builds the context in a task container (privileged: with buildah, as a Dockerfile
            /// with RUN would be; otherwise as the default BUILDER=auto chooses, which must
            /// assemble); returns the unpacked image's bundle.
            func build(privileged: Bool) throws -> URL {
                let volumes = scratch.appending(privileged ? "privileged" : "unprivileged")
                let input = volumes.appendingPathComponent("context")
                let output = volumes.appendingPathComponent("image")
                try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: context, to: input)
                var task = container(image, privileged: privileged, scratch: scratch.url)
                task.mounts = [(input, "/tmp/build/77aa/context"), (output, "/tmp/build/77aa/image")]
                task.workingDirectory = "/tmp/build/77aa"
                task.environment = ConcourseContainer.environment(
                    image.environment, ["CONTEXT": "context"].merging(privileged ? ["BUILDER": "buildah"] : [:]) { $1 })
                let result = try task.run(["build-task"])
                try #require(result.succeeded, "build-task (privileged: \(privileged)): \(result.stderrString)")
                #expect(
                    result.stderrString.contains(privileged ? "STEP " : "builder: assembling the image"),
                    "\(result.stderrString)")
                let bundle = volumes.appendingPathComponent("bundle")
                _ = try runProcess(
                    "umoci", ["unpack", "--image", "\(output.appendingPathComponent("oci").path):latest", bundle.path],
                    environment: ["PATH": Self.path]
                ).checked()
                return bundle
            }
            let buildah = try build(privileged: true)
            let assembled = try build(privileged: false)

            // The same files with the same contents and modes.
            func files(_ bundle: URL) throws -> String {
                try runProcess(
                    "/bin/sh",
                    [
                        "-c",
                        #"cd "$1" && find . -mindepth 1 -printf '%p %M %U:%G %s %l\n' | sort && find . -type f -exec sha256sum {} + | sort"#,
                        "sh", bundle.appendingPathComponent("rootfs").path,
                    ]
                ).checked().stdoutString
            }
            #expect(try files(assembled) == files(buildah))
            // The same config (Env, Cmd, labels but the build's time).
            func config(_ bundle: URL) throws -> [String: String] {
                let data = try Data(contentsOf: bundle.appendingPathComponent("config.json"))
                let process =
                    (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["process"] as? [String: Any]
                let annotations =
                    (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["annotations"]
                    as? [String: String] ?? [:]
                // Not the build's time (the context is not a checkout), nor the label buildah
                // adds to name itself (`io.buildah.version`): the builder is not the image.
                var result = annotations.filter { !$0.key.hasSuffix(".created") && $0.key != "io.buildah.version" }
                result["env"] = (process?["env"] as? [String])?.joined(separator: "\n")
                result["args"] = (process?["args"] as? [String])?.joined(separator: " ")
                return result
            }
            let assembledConfig = try config(assembled)
            let buildahConfig = try config(buildah)
            #expect(assembledConfig == buildahConfig, "assembled \(assembledConfig), buildah \(buildahConfig)")
            #expect(assembledConfig.values.contains("copy-only"), "the label is there: \(assembledConfig)")
        }
    }
}

/// The resource image as Concourse gets it, once per test run: built by ci/resource-image,
/// pushed to a registry with htpasswd and TLS, fetched back by skopeo and unpacked by umoci.
actor PublishedResourceImage {
    static let shared = PublishedResourceImage()
    private var pending: Task<Pulled, any Error>?

    struct Pulled: Sendable {
        /// The unpacked image, owned by host root: for privileged containers.
        var rootfs: URL
        /// The same, its root's files owned by ``ConcourseContainer/rootID``: for containers
        /// in a user namespace, as Concourse's namespaced volumes are.
        var shiftedRootfs: URL
        /// The image config's `Env`.
        var environment: [String]
        /// The manifest's layer and config sizes, summed.
        var compressedBytes: Int
        /// What ci/resource-image said about the size.
        var scriptReport: String
        /// The compiled container harness.
        var harness: String
    }

    func image() async throws -> Pulled {
        if let pending { return try await pending.value }
        let task = Task { try await Self.make() }
        pending = task
        return try await task.value
    }

    private static func make() async throws -> Pulled {
        // Under the build directory, emptied at each run: the image and its unpacked trees are
        // hundreds of MiB, and kept until the next run for a look after a failure.
        let work = CIPaths.root.appendingPathComponent(".build-resource-image/runtime-tests")
        try? FileManager.default.removeItem(at: work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.environment
        // This PATH after the system's: the script finds swift there when it builds the binary itself.
        var environment = [
            "PATH": ResourceImageRuntimeTests.path + (host["PATH"].map { ":" + $0 } ?? ""),
            "HOME": host["HOME"] ?? NSTemporaryDirectory(),
        ]
        if let cache = host["XDG_CACHE_HOME"] { environment["XDG_CACHE_HOME"] = cache }

        let reference = "tools/slipway:test"
        let (report, pulled) = try await withTestRegistry(.basic(tls: true)) { registry in
            var script = [
                "--debian-base", "--out", work.appendingPathComponent("build").path, "--push",
                "\(registry.host)/\(reference)",
            ]
            if let bin = host["SLIPWAY_RESOURCE_BIN"], !bin.isEmpty { script += ["--bin", bin] }
            let built = try runProcess(
                CIPaths.ci.appendingPathComponent("resource-image").path, script,
                environment: environment.merging([
                    "REGISTRY_USERNAME": registry.username!, "REGISTRY_PASSWORD": registry.password!,
                    "REGISTRY_CA_CERTS": registry.caCertificateFile!.path,
                ]) { $1 })
            guard built.succeeded else {
                throw TestSupportError("ci/resource-image failed: \(built.stderrString.suffix(3000))")
            }
            guard !built.stderrString.contains(registry.password!) else {
                throw TestSupportError("ci/resource-image printed the registry password")
            }

            // skopeo as registry-image's client would: credentials from an auth file, the CA from a cert directory.
            let certificates = work.appendingPathComponent("certs.d")
            try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: registry.caCertificateFile!, to: certificates.appendingPathComponent("ca.crt"))
            let auth = Data("\(registry.username!):\(registry.password!)".utf8).base64EncodedString()
            let authFile = work.appendingPathComponent("auth.json")
            try Data(#"{"auths":{"\#(registry.host)":{"auth":"\#(auth)"}}}"#.utf8).write(to: authFile)
            let layout = work.appendingPathComponent("pulled")
            _ = try runProcess(
                "skopeo",
                [
                    "copy", "--quiet", "--authfile", authFile.path, "--src-cert-dir", certificates.path,
                    "docker://\(registry.host)/\(reference)", "oci:\(layout.path):test",
                ], environment: environment
            ).checked()
            try FileManager.default.removeItem(at: authFile)
            return (built.stderrString, layout)
        }

        let bundle = work.appendingPathComponent("bundle")
        _ = try runProcess(
            "umoci", ["unpack", "--image", "\(pulled.path):test", bundle.path], environment: environment
        ).checked()
        let rootfs = bundle.appendingPathComponent("rootfs")
        let shifted = work.appendingPathComponent("shifted-rootfs")
        _ = try runProcess("cp", ["-a", rootfs.path, shifted.path]).checked()
        try ConcourseContainer.shiftOwnership(shifted)

        let index =
            try JSONSerialization.jsonObject(with: Data(contentsOf: pulled.appendingPathComponent("index.json")))
            as? [String: Any]
        let manifestDigest = ((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let manifestFile = pulled.appendingPathComponent("blobs/sha256/\(manifestDigest.dropFirst("sha256:".count))")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestFile)) as? [String: Any]
        let sizes =
            ((manifest?["layers"] as? [[String: Any]]) ?? []).compactMap { $0["size"] as? Int }
            + [((manifest?["config"] as? [String: Any])?["size"] as? Int) ?? 0]
        // The image config's Env, which Concourse gives the container (umoci's runtime config
        // would add TERM and HOME of its own).
        let configDigest = ((manifest?["config"] as? [String: Any])?["digest"] as? String) ?? ""
        let configFile = pulled.appendingPathComponent("blobs/sha256/\(configDigest.dropFirst("sha256:".count))")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: configFile)) as? [String: Any]
        let env = (config?["config"] as? [String: Any])?["Env"] as? [String] ?? []

        return Pulled(
            rootfs: rootfs, shiftedRootfs: shifted, environment: env, compressedBytes: sizes.reduce(0, +),
            scriptReport: report, harness: try ConcourseContainer.compile(into: work))
    }
}

/// JSON for a resource's stdin.
private func json(_ value: Any) throws -> Data {
    try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
}
