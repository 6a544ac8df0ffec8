import BuildLock
import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

/// build-task's assembler (`BUILDER=assemble`, and `auto` for a Dockerfile that executes
/// nothing) against buildah building the same inputs: the same files, owners, modes and
/// links, the same config, labels and inputs digest; reproducible layers; outputs skopeo
/// and umoci read.
extension ImageBuildTests {
    /// A base with a shell, a passwd and a group, pushed as `<registry>/team/base:1` by buildah.
    func pushBase(_ registry: TestRegistry, _ directory: TemporaryDirectory) throws -> String {
        let reference = "\(registry.host)/team/base:1"
        let context = try busyboxContext(
            directory.appending("base"), "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd group /etc/\n",
            files: [
                "passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
                "group": "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
            ])
        let pushed = try buildTask(
            directory.url,
            [
                "CONTEXT": context.path, "REGISTRY_INSECURE": "true", "BUILDER": "buildah",
                "CACHE": directory.appending("base-cache").path, "OUTPUT": directory.appending("base-image").path,
            ],
            arguments: ["--tag", reference, "--push"])
        try #require(pushed.succeeded, "\(pushed.stderrString)")
        return reference
    }

    /// Every COPY feature the assembler supports, on a registry base, in two stages.
    static let copyOnlyDockerfile = """
        ARG REGISTRY
        FROM ${REGISTRY}/team/base:1 AS files
        COPY --chown=app:staff tree/ /srv/tree/
        ENV ROOT=/srv

        FROM ${REGISTRY}/team/base:1
        ARG VERSION=1.0
        ENV VERSION=$VERSION GREETING="hello world" PATH=/app/bin:$PATH
        WORKDIR /app
        COPY --from=files /srv/tree ./tree
        COPY --chown=1000:1000 --chmod=640 config.txt ./
        COPY --chown=app app.sh link-to-app bin/
        COPY *.md docs/
        COPY --from=files /etc/group /app/group-copy
        ADD config.txt /app/added.txt
        USER app
        EXPOSE 8080 53/udp 9090/TCP
        ENTRYPOINT ["/bin/busybox", "sh"]
        CMD echo $VERSION
        LABEL org.example.name="the app" version=$VERSION
        STOPSIGNAL SIGTERM
        HEALTHCHECK CMD ["/bin/busybox", "true"]
        VOLUME /data
        """

    /// The context of ``copyOnlyDockerfile``, committed: a directory with a symlink, a setuid
    /// script, a top-level link, markdown files one of which `.dockerignore` leaves out.
    func copyOnlyCheckout(_ repository: TestGitRepository) throws -> URL {
        _ = try repository.commit(
            "app",
            files: [
                "app/Dockerfile": Self.copyOnlyDockerfile, "app/.dockerignore": "secret.md\n",
                "app/tree/a.txt": "a\n", "app/tree/sub/b.txt": "b\n", "app/config.txt": "key=value\n",
                "app/app.sh": "#!/bin/sh\necho app\n",
                "app/README.md": "readme\n", "app/NOTES.md": "notes\n", "app/secret.md": "never in the image\n",
            ])
        let app = repository.path.appendingPathComponent("app")
        try FileManager.default.createSymbolicLink(
            atPath: app.appendingPathComponent("tree/link").path, withDestinationPath: "a.txt")
        try FileManager.default.createSymbolicLink(
            atPath: app.appendingPathComponent("link-to-app").path, withDestinationPath: "app.sh")
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o4755], ofItemAtPath: app.appendingPathComponent("app.sh").path)
        _ = try repository.git("add", "-A")
        _ = try repository.git("commit", "--quiet", "-m", "links")
        return app
    }

    /// What an unpacked file is: type and mode, owner, and its content or link target.
    struct UnpackedFile: Equatable, CustomStringConvertible {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var content: String
        var description: String { "\(String(mode, radix: 8)) \(uid):\(gid) \(content.prefix(40).debugDescription)" }
    }

    /// The files of `layout`'s image (for `architecture`), unpacked by skopeo and umoci.
    func files(_ layout: URL, architecture: String = Platform.host.architecture, into directory: URL) throws -> [String:
        UnpackedFile]
    {
        let root = try unpacked(layout, architecture: architecture, into: directory)
        var result: [String: UnpackedFile] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        while let relative = enumerator?.nextObject() as? String {
            let path = root.appendingPathComponent(relative).path
            var status = stat()
            guard lstat(path, &status) == 0 else { continue }
            var content = ""
            switch status.st_mode & S_IFMT {
            case S_IFLNK: content = "-> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "")
            case S_IFREG:
                content = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data(), as: UTF8.self)
            default: break
            }
            result[relative] = UnpackedFile(
                mode: UInt32(status.st_mode), uid: status.st_uid, gid: status.st_gid, content: content)
        }
        return result
    }

    /// The image config's `config` object (buildah's own `io.buildah.version` label left
    /// out: the assembler is not buildah), with `os` and `architecture`.
    func configuration(_ layout: URL, architecture: String? = nil) throws -> NSDictionary {
        let image = try OCILayout(opening: layout).image(named: "latest")
        let platform = architecture.map { Platform(os: "linux", architecture: $0) }
        let config = try image.platformManifest(for: platform).manifest.config
        var object = try #require(try JSONSerialization.jsonObject(with: image.layout.blob(config)) as? [String: Any])
        var inner = object["config"] as? [String: Any] ?? [:]
        var labels = inner["Labels"] as? [String: String] ?? [:]
        labels["io.buildah.version"] = nil
        inner["Labels"] = labels
        object["config"] = inner
        return [
            "config": inner, "os": object["os"] ?? "", "architecture": object["architecture"] ?? "",
            "created": object["created"] ?? "",
        ] as NSDictionary
    }

    /// `context` built with BUILDER=buildah and with BUILDER=assemble (each with a cache and an
    /// output of its own in `directory`, plus `environment`); the two `image/` directories.
    func buildBothWays(_ context: URL, in directory: TemporaryDirectory, _ environment: [String: String] = [:]) throws
        -> (buildah: URL, assembled: URL)
    {
        let outputs = try ["buildah", "assemble"].map { builder in
            let output = directory.appending("image-\(builder)")
            let result = try buildTask(
                directory.url,
                environment.merging([
                    "CONTEXT": context.path, "BUILDER": builder,
                    "CACHE": directory.appending("cache-\(builder)").path,
                    "OUTPUT": output.path,
                ]) { $1 })
            #expect(result.succeeded, "\(builder): \(result.stderrString)")
            return output
        }
        return (outputs[0], outputs[1])
    }

    /// Asserts that two build outputs hold the same image as far as a container sees it.
    func expectSameImage(
        _ first: URL, _ second: URL, scratch: URL, architecture: String = Platform.host.architecture,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let a = try files(
            first.appendingPathComponent("oci"), architecture: architecture, into: scratch.appendingPathComponent("a"))
        let b = try files(
            second.appendingPathComponent("oci"), architecture: architecture, into: scratch.appendingPathComponent("b"))
        #expect(!a.isEmpty, sourceLocation: sourceLocation)
        for path in Set(a.keys).union(b.keys).sorted() where a[path] != b[path] {
            Issue.record(
                "\(path): \(a[path]?.description ?? "missing") vs \(b[path]?.description ?? "missing")",
                sourceLocation: sourceLocation)
        }
        let configA = try configuration(first.appendingPathComponent("oci"), architecture: architecture)
        let configB = try configuration(second.appendingPathComponent("oci"), architecture: architecture)
        #expect(configA == configB, sourceLocation: sourceLocation)
        let recordA = try json(first.appendingPathComponent("build.json"))
        let recordB = try json(second.appendingPathComponent("build.json"))
        #expect(
            recordA["inputs"] as? String == recordB["inputs"] as? String, "the same inputs digest",
            sourceLocation: sourceLocation)
    }

    @Test func anAssembledImageIsTheImageBuildahBuildsFromTheSameInputs() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    _ = try pushBase(registry, directory)
                    let context = try copyOnlyCheckout(repository)
                    let env = [
                        "CONTEXT": context.path, "BUILD_ARG_REGISTRY": registry.host, "REGISTRY_INSECURE": "true",
                        "LABEL_team": "tools", "LABEL_version": "9.9",
                    ]
                    func build(_ builder: String, _ name: String) throws -> URL {
                        let output = directory.appending(name)
                        let result = try buildTask(
                            directory.url,
                            env.merging([
                                "BUILDER": builder, "OUTPUT": output.path,
                                "CACHE": directory.appending("cache-\(name)").path,
                            ]) { $1 })
                        #expect(result.succeeded, "\(builder): \(result.stderrString)")
                        return output
                    }
                    let buildah = try build("buildah", "buildah")
                    let assembled = try build("assemble", "assembled")
                    try expectSameImage(buildah, assembled, scratch: directory.appending("compare"))

                    // What the comparison covers, spelled out once.
                    let files = try files(assembled.appendingPathComponent("oci"), into: directory.appending("look"))
                    #expect(files["srv"] == nil, "only what the final stage copies")
                    #expect(
                        files["app/tree/a.txt"].map { ($0.uid, $0.gid, $0.content) } ?? (0, 0, "") == (1000, 50, "a\n"),
                        "--chown by name, kept by COPY --from")
                    #expect(files["app/tree/link"]?.content == "-> a.txt", "a link inside a directory stays a link")
                    #expect(
                        files["app/config.txt"].map { ($0.mode & 0o7777, $0.uid, $0.gid) } ?? (0, 0, 0) == (
                            0o640, 1000, 1000
                        ))
                    #expect(
                        files["app/bin/app.sh"].map { ($0.mode & 0o7777, $0.uid, $0.gid) } ?? (0, 0, 0) == (
                            0o755, 1000, 1001
                        ),
                        "setuid dropped; a user alone takes its primary group")
                    #expect(
                        files["app/bin/link-to-app"]?.content == "#!/bin/sh\necho app\n",
                        "a link named as a source is followed")
                    #expect(
                        files["app/group-copy"]?.content.hasPrefix("root:x:0:") == true,
                        "COPY --from reads a file out of the base's layer")
                    #expect(files["app/added.txt"]?.content == "key=value\n")
                    #expect(
                        files["app/docs/README.md"] != nil && files["app/docs/NOTES.md"] != nil
                            && files["app/docs/secret.md"] == nil)
                    let config = try #require(
                        try configuration(assembled.appendingPathComponent("oci"))["config"] as? [String: Any])
                    #expect(config["Cmd"] as? [String] == ["/bin/sh", "-c", "echo $VERSION"])
                    #expect(config["Entrypoint"] as? [String] == ["/bin/busybox", "sh"])
                    #expect((config["Env"] as? [String])?.contains("GREETING=hello world") == true)
                    let labels = try #require(config["Labels"] as? [String: String])
                    let head = try repository.head()
                    #expect(
                        labels["version"] == "9.9",
                        "LABEL_* wins over the Dockerfile's LABEL, as buildah's --label does")
                    #expect(labels["team"] == "tools" && labels["org.opencontainers.image.revision"] == head)
                    #expect(labels["org.opencontainers.image.base.name"] == "\(registry.host)/team/base:1")

                    // Reproducible: the same inputs assemble to the same manifest, byte for byte.
                    let again = try build("assemble", "again")
                    let digest = try String(contentsOf: assembled.appendingPathComponent("digest"), encoding: .utf8)
                    #expect(try String(contentsOf: again.appendingPathComponent("digest"), encoding: .utf8) == digest)

                    // skopeo reads and copies the layout and the archive; the digest is the manifest's.
                    let raw = try runProcess(
                        "skopeo", ["inspect", "--raw", "oci:\(assembled.appendingPathComponent("oci").path):latest"]
                    ).checked()
                    #expect(Digest.sha256(raw.stdout).rawValue == digest)
                    _ = try runProcess(
                        "skopeo",
                        [
                            "copy", "--quiet", "oci:\(assembled.appendingPathComponent("oci").path):latest",
                            "oci:\(directory.appending("copied").path):latest",
                        ]
                    ).checked()
                    _ = try runProcess(
                        "skopeo", ["inspect", "docker-archive:\(assembled.appendingPathComponent("image.tar").path)"]
                    ).checked()
                    let manifest = try #require(try JSONSerialization.jsonObject(with: raw.stdout) as? [String: Any])
                    #expect(
                        (manifest["annotations"] as? [String: String])?["org.opencontainers.image.base.name"]
                            == "\(registry.host)/team/base:1")
                }
            }
        }
    }

    @Test func severalPlatformsAssembleIntoAnIndexOfPerArchitectureFilesOnEachPlatformsBase() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                // A multi-platform base whose marker names its platform, pushed by buildah.
                let base = "\(registry.host)/team/multi-base:1"
                try pushMarkedBase(base, in: directory, markerSuffix: " base", builder: "buildah")

                let context = try busyboxContext(
                    directory.appending("ctx"),
                    "ARG BASE\nFROM ${BASE}\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/app /app\n")
                for architecture in ["amd64", "arm64"] {
                    try FileManager.default.createDirectory(
                        at: context.appendingPathComponent("bin/\(architecture)"), withIntermediateDirectories: true)
                    try Data("binary for \(architecture)\n".utf8).write(
                        to: context.appendingPathComponent("bin/\(architecture)/app"))
                }
                let result = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64", "BUILDER": "assemble",
                        "BUILD_ARG_BASE": base, "REGISTRY_INSECURE": "true",
                        "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("image").path,
                    ])
                #expect(result.succeeded, "\(result.stderrString)")
                let layout = directory.appending("image/oci")
                #expect(
                    try platforms(layout) == ["amd64": "amd64", "arm64": "arm64"],
                    "the index and each config name the platform")
                let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(layout.path):latest"]).checked()
                #expect(
                    Digest.sha256(raw.stdout).rawValue
                        == (try String(contentsOf: directory.appending("image/digest"), encoding: .utf8)))
                #expect(
                    !FileManager.default.fileExists(atPath: directory.appending("image/image.tar").path),
                    "a docker-archive holds one platform")
                for architecture in ["amd64", "arm64"] {
                    let root = try unpacked(layout, architecture: architecture, into: directory.url)
                    #expect(
                        try String(contentsOf: root.appendingPathComponent("app"), encoding: .utf8)
                            == "binary for \(architecture)\n")
                    #expect(
                        try String(contentsOf: root.appendingPathComponent("marker"), encoding: .utf8)
                            == "\(architecture) base\n",
                        "each platform is built on the base's manifest for it")
                }
            }
        }
    }

    @Test func aBaseWithOnBuildTriggersIsNotAssembled() throws {
        try withTemporaryDirectory { directory in
            // A base whose config carries ONBUILD triggers (written by hand: buildah's OCI format drops them).
            let layout = try OCILayout.create(at: directory.appending("base"))
            let config = try layout.writeBlob(
                Data(
                    #"{"architecture":"\#(Platform.host.architecture)","os":"linux","config":{"OnBuild":["RUN make"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
                        .utf8),
                mediaType: .ociConfig)
            let manifest = try layout.writeBlob(
                try CanonicalJSON.encode(ImageManifest(config: config, layers: [])), mediaType: .ociManifest)
            try layout.addToIndex(manifest, name: "latest")
            let context = try busyboxContext(
                directory.appending("ctx"), "ARG BASE\nFROM ${BASE}\nCOPY busybox /bin/busybox\n")
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "BUILDER": "assemble", "IMAGE_ARG_BASE": directory.appending("base").path,
                    "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("image").path,
                ])
            #expect(result.status == 1)
            #expect(
                result.stderrString.split(separator: "\n").last?.hasPrefix(
                    "build-task: Dockerfile line 2: the base image ") == true, "\(result.stderrString)")
            #expect(
                result.stderrString.contains(
                    "has ONBUILD triggers, which run when it is built on; the assembler does not run them; BUILDER=assemble cannot build it"
                ), "\(result.stderrString)")
        }
    }

    @Test func skipIfPublishedReusesAnImageWhicheverBuilderMadeIt() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    _ = try pushBase(registry, directory)
                    let context = try copyOnlyCheckout(repository)
                    let env = [
                        "CONTEXT": context.path, "BUILD_ARG_REGISTRY": registry.host, "REGISTRY_INSECURE": "true",
                        "SKIP_IF_PUBLISHED": "\(registry.host)/team/app", "CACHE": directory.appending("cache").path,
                    ]
                    func build(_ builder: String, _ name: String) throws -> [String: Any] {
                        let result = try buildTask(
                            directory.url,
                            env.merging(["BUILDER": builder, "OUTPUT": directory.appending(name).path]) { $1 })
                        #expect(result.succeeded, "\(builder): \(result.stderrString)")
                        return try json(directory.appending("\(name)/build.json"))
                    }
                    // buildah publishes; the assembler finds the same inputs and reuses it.
                    let built = try build("buildah", "first")
                    let reused = try build("assemble", "second")
                    #expect(built["reused"] as? Bool == false && reused["reused"] as? Bool == true)
                    #expect(reused["digest"] as? String == built["digest"] as? String)

                    // And the other way round, for new inputs.
                    _ = try repository.commit("config", files: ["app/config.txt": "key=other\n"])
                    let assembled = try build("assemble", "third")
                    let reusedByBuildah = try build("buildah", "fourth")
                    #expect(assembled["reused"] as? Bool == false && reusedByBuildah["reused"] as? Bool == true)
                    #expect(reusedByBuildah["digest"] as? String == assembled["digest"] as? String)
                    #expect(assembled["inputs"] as? String != built["inputs"] as? String)
                }
            }
        }
    }

    @Test func aHostileContextCannotReachOutsideIt() throws {
        try withTemporaryDirectory { directory in
            try Data("outside the context\n".utf8).write(to: directory.appending("secret"))
            let context = try busyboxContext(
                directory.appending("ctx"),
                "FROM scratch\nCOPY . /all/\nCOPY ../secret /up\nCOPY escape/passwd /passwd\n",
                files: ["secret": "the context's own\n", "ignored.txt": "left out\n", ".dockerignore": "ignored.txt\n"])
            try FileManager.default.createSymbolicLink(
                atPath: context.appendingPathComponent("escape").path, withDestinationPath: "/etc")
            try FileManager.default.createSymbolicLink(
                atPath: context.appendingPathComponent("up-link").path, withDestinationPath: "../secret")
            func build(_ dockerfile: String) throws -> ProcessResult {
                try Data(dockerfile.utf8).write(to: context.appendingPathComponent("Dockerfile"))
                return try buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "BUILDER": "assemble", "CACHE": directory.appending("cache").path,
                        "OUTPUT": directory.appending("image").path,
                    ])
            }
            // A link out of the context, named as a source, resolves inside it: there is no etc/passwd there.
            let escaping = try build("FROM scratch\nCOPY escape/passwd /passwd\n")
            #expect(
                escaping.status == 1
                    && escaping.stderrString.hasSuffix(
                        "build-task: Dockerfile line 2: COPY escape/passwd: no such file in the build context (or .dockerignore excludes it)\n"
                    ),
                "\(escaping.stderrString)")
            let ignored = try build("FROM scratch\nCOPY ignored.txt /x\n")
            #expect(
                ignored.status == 1 && ignored.stderrString.contains("COPY ignored.txt: no such file"),
                "\(ignored.stderrString)")

            let result = try build("FROM scratch\nCOPY . /all/\nCOPY ../secret /up\nCOPY up-link /via-link\n")
            #expect(result.succeeded, "\(result.stderrString)")
            let files = try files(directory.appending("image/oci"), into: directory.appending("look"))
            #expect(files["up"]?.content == "the context's own\n", "../ stops at the context's root")
            #expect(
                files["via-link"]?.content == "the context's own\n", "a link to ../secret resolves inside the context")
            #expect(files["all/escape"]?.content == "-> /etc", "a link is copied as a link, never followed")
            #expect(files["all/up-link"]?.content == "-> ../secret")
            #expect(files["all/ignored.txt"] == nil && files["all/secret"] != nil)
            #expect(!files.values.contains { $0.content == "outside the context\n" })
        }
    }

    @Test func assembleRefusesARunInOneLineAndAutoBuildsItWithBuildah() throws {
        try withTemporaryDirectory { directory in
            let dockerfile =
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo hi > /hi\"]\n"
            let context = try busyboxContext(directory.appending("ctx"), dockerfile)
            let recording = try recordingBuildah(directory.url)
            func build(_ builder: String?) throws -> ProcessResult {
                var env = [
                    "CONTEXT": context.path, "CACHE": directory.appending("cache").path,
                    "OUTPUT": directory.appending("image").path, "PATH": recording.path,
                ]
                env["BUILDER"] = builder
                return try buildTask(directory.url, env)
            }
            let refused = try build("assemble")
            #expect(refused.status == 1)
            #expect(
                refused.stderrString.split(separator: "\n").last
                    == "build-task: Dockerfile line 3: RUN executes a program; BUILDER=assemble cannot build it: use BUILDER=auto or buildah (buildah needs privileged: true in Concourse)",
                "\(refused.stderrString)")
            #expect(!FileManager.default.fileExists(atPath: recording.calls.path + ".all"), "buildah was called")

            let auto = try build(nil)
            #expect(auto.succeeded, "\(auto.stderrString)")
            #expect(
                auto.stderrString.contains("builder: buildah, since Dockerfile line 3: RUN executes a program"),
                "\(auto.stderrString)")
            #expect(FileManager.default.fileExists(atPath: recording.calls.path + ".all"), "buildah built it")

            let bad = try build("kaniko")
            #expect(
                bad.status == 1
                    && bad.stderrString
                        == "build-task: BUILDER / --builder: kaniko is not one of auto, assemble, buildah\n",
                "\(bad.stderrString)")
        }
    }

    @Test func autoFallsBackToBuildahForWhatTheAssemblerDoesNotDoAndAssembleRefusesIt() throws {
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(directory.appending("ctx"), "FROM scratch\nADD files.tar.gz /\n")
            _ = try runProcess(
                "/bin/tar",
                ["-czf", context.appendingPathComponent("files.tar.gz").path, "-C", context.path, "busybox"]
            ).checked()
            func build(_ builder: String) throws -> ProcessResult {
                try buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "BUILDER": builder, "CACHE": directory.appending("cache").path,
                        "OUTPUT": directory.appending("image-\(builder)").path,
                    ])
            }
            let refused = try build("assemble")
            #expect(
                refused.status == 1
                    && refused.stderrString.hasSuffix(
                        "build-task: Dockerfile line 2: ADD files.tar.gz is an archive Docker would extract; the assembler does not extract archives; BUILDER=assemble cannot build it: use BUILDER=auto or buildah (buildah needs privileged: true in Concourse)\n"
                    ),
                "\(refused.stderrString)")
            let auto = try build("auto")
            #expect(auto.succeeded, "\(auto.stderrString)")
            #expect(
                auto.stderrString.contains(
                    "builder: buildah after all, since Dockerfile line 2: ADD files.tar.gz is an archive"),
                "\(auto.stderrString)")
            let root = try unpacked(
                directory.appending("image-auto/oci"), architecture: Platform.host.architecture,
                into: directory.appending("look"))
            #expect(
                FileManager.default.fileExists(atPath: root.appendingPathComponent("busybox").path),
                "buildah extracted it")
        }
    }

    @Test func anImageArgBaseIsAssembledAsBuildahBuildsOnIt() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                // The base: a get directory as our `in` writes it (oci/ and digest), no registry.
                let base = try busyboxContext(
                    directory.appending("base"), "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\n",
                    files: ["passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"])
                let made = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": base.path, "BUILDER": "buildah", "CACHE": directory.appending("base-cache").path,
                        "OUTPUT": directory.appending("base-image").path,
                    ])
                try #require(made.succeeded, "\(made.stderrString)")
                _ = try repository.commit(
                    "app",
                    files: [
                        "app/Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY --chown=app f /home/app/f\nUSER app\n",
                        "app/f": "f\n",
                    ])
                let (buildah, assembled) = try buildBothWays(
                    repository.path.appendingPathComponent("app"), in: directory,
                    ["IMAGE_ARG_BASE": directory.appending("base-image").path])
                try expectSameImage(buildah, assembled, scratch: directory.appending("compare"))
                let labels = try #require(
                    (try configuration(assembled.appendingPathComponent("oci"))["config"] as? [String: Any])?["Labels"]
                        as? [String: String])
                let baseDigest = try String(contentsOf: directory.appending("base-image/digest"), encoding: .utf8)
                #expect(
                    labels["org.opencontainers.image.base.digest"] == baseDigest
                        && labels["org.opencontainers.image.base.name"] == nil)
            }
        }
    }

    /// WORKDIR's directory is root's whatever USER says, and buildah keeps it only when a
    /// later COPY commits a layer (measured): a trailing WORKDIR makes no directory.
    @Test func workdirDirectoriesAreKeptAsBuildahKeepsThem() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                _ = try repository.commit(
                    "app",
                    files: [
                        "app/Dockerfile": "FROM scratch\nUSER 1000\nWORKDIR /w\nCOPY x .\nWORKDIR /w2/deep\n",
                        "app/x": "x\n",
                    ])
                let (buildah, assembled) = try buildBothWays(
                    repository.path.appendingPathComponent("app"), in: directory)
                try expectSameImage(buildah, assembled, scratch: directory.appending("compare"))
                let files = try files(assembled.appendingPathComponent("oci"), into: directory.appending("look"))
                #expect(files["w"].map { ($0.uid, $0.mode & 0o7777) } ?? (1, 0) == (0, 0o755) && files["w2"] == nil)
            }
        }
    }

    /// LOCK serialises an assembled build as it does buildah's: a build waiting for the lock
    /// looks its inputs up again once it holds it, and reuses what the holder published.
    @Test func anAssembledBuildWaitsForTheLockAndReusesWhatItsHolderPublished() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    _ = try pushBase(registry, directory)
                    let context = try copyOnlyCheckout(repository)
                    let locks = directory.appending("locks")
                    try FileManager.default.createDirectory(at: locks, withIntermediateDirectories: true)
                    let lockFile = locks.appendingPathComponent(try LockKey("team/locked").safeName + ".lock").path
                    let product = try builtProduct("build-task").path
                    var env = [
                        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "CONTEXT": context.path,
                        "BUILD_ARG_REGISTRY": registry.host, "REGISTRY_INSECURE": "true",
                        "SKIP_IF_PUBLISHED": "\(registry.host)/team/locked",
                    ]
                    // The holder: buildah builds and publishes these inputs while it holds the lock.
                    let holderEnv = env.merging([
                        "BUILDER": "buildah", "CACHE": directory.appending("cache-holder").path,
                        "OUTPUT": directory.appending("holder").path,
                    ]) { $1 }
                    // It holds the lock (the marker says so) and 3 s more before it starts, so the
                    // waiter reaches the lock while it is held, even on a loaded machine.
                    let held = directory.appending("held").path
                    let holder = BackgroundProcess(
                        "/usr/bin/flock",
                        [lockFile, "/bin/sh", "-c", "touch \"$1\"; sleep 3; exec \"$0\"", product, held],
                        environment: holderEnv, currentDirectory: directory.url)
                    // Polled without suspending: a suspended test may resume only after the holder is done.
                    for _ in 0..<200 where !FileManager.default.fileExists(atPath: held) { usleep(50_000) }
                    try #require(FileManager.default.fileExists(atPath: held), "the holder took the lock")
                    env.merge([
                        "BUILDER": "assemble", "LOCK": "file:\(locks.path)", "LOCK_KEY": "team/locked",
                        "CACHE": directory.appending("cache").path,
                        "OUTPUT": directory.appending("waiter").path,
                    ]) { $1 }
                    let waiter = try runProcess(product, [], environment: env, currentDirectory: directory.url)
                    let holderResult = try holder.result()
                    #expect(holderResult.succeeded, "\(holderResult.stderrString)")
                    #expect(waiter.succeeded, "\(waiter.stderrString)")
                    #expect(waiter.stderrString.contains("waiting for lock team/locked"), "\(waiter.stderrString)")
                    let record = try json(directory.appending("waiter/build.json"))
                    #expect(record["reused"] as? Bool == true, "\(waiter.stderrString)")
                    #expect(
                        record["digest"] as? String
                            == (try json(directory.appending("holder/build.json"))["digest"] as? String))
                }
            }
        }
    }
}
