import BuildLock
import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

/// build-task's bases, image args, skips, locks and progress, with real buildah and a real
/// registry. In the same serialized suite as the other builds: buildah is CPU-bound here.
extension ImageBuildTests {
    /// Builds a base image (busybox plus a marker file) and pushes it as `reference`.
    func pushBase(_ reference: String, marker: String, directory: URL) throws -> String {
        let context = directory.appendingPathComponent("base-\(marker)")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
        try Data("FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n".utf8).write(
            to: context.appendingPathComponent("Dockerfile"))
        try Data("\(marker)\n".utf8).write(to: context.appendingPathComponent("marker"))
        let output = directory.appendingPathComponent("base-image-\(marker)")
        let result = try buildTask(
            directory,
            [
                "CONTEXT": context.path, "OUTPUT": output.path, "CACHE": directory.appendingPathComponent("cache").path,
                "REGISTRY_INSECURE": "true",
            ], arguments: ["--tag", reference, "--push"])
        try #require(result.succeeded, "\(result.stderrString)")
        return try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)
    }

    func labels(_ image: URL) throws -> [String: String] {
        let inspected = try runProcess("skopeo", ["inspect", "oci:\(image.appendingPathComponent("oci").path):latest"])
            .checked()
        return (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"]
            as? [String: String] ?? [:]
    }

    /// Per platform manifest of `image/oci`: its `org.opencontainers.image.base.*` annotations and config labels.
    func baseKeys(_ image: URL) throws -> [(annotations: [String: String], labels: [String: String])] {
        let layout = try OCILayout(opening: image.appendingPathComponent("oci"))
        let top = try layout.image(named: "latest")
        var manifests: [ImageManifest] = []
        switch top.manifest {
        case .image(let manifest): manifests = [manifest]
        case .index(let index):
            manifests = try index.manifests.map {
                try #require(try Manifest.decode(layout.blob($0), mediaType: $0.mediaType).image)
            }
        }
        return try manifests.map { manifest in
            let config = try JSONDecoder().decode(ImageConfiguration.self, from: layout.blob(manifest.config))
            let isBase = { (key: String) in key.hasPrefix("org.opencontainers.image.base.") }
            return (
                (manifest.annotations ?? [:]).filter { isBase($0.key) },
                (config.config?.labels ?? [:]).filter { isBase($0.key) }
            )
        }
    }

    @Test func baseFromARegistryIsResolvedPinnedAndLabelled() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let first = try pushBase("\(registry.host)/team/base:1", marker: "one", directory: directory.url)
                let context = directory.appending("derived")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data(
                    """
                    ARG REGISTRY
                    ARG BASE_TAG=1
                    FROM ${REGISTRY}/team/base:${BASE_TAG} AS build
                    RUN ["/bin/busybox", "cp", "/marker", "/seen"]
                    FROM build
                    """.utf8
                ).write(to: context.appendingPathComponent("Dockerfile"))
                let env = [
                    "CONTEXT": context.path, "BUILD_ARG_REGISTRY": registry.host,
                    "CACHE": directory.appending("cache").path,
                    "REGISTRY_INSECURE": "true", "OUTPUT": directory.appending("image").path,
                ]
                let built = try buildTask(directory.url, env)
                #expect(built.succeeded, "\(built.stderrString)")
                let labelled = try labels(directory.appending("image"))
                #expect(labelled["org.opencontainers.image.base.name"] == "\(registry.host)/team/base:1")
                #expect(labelled["org.opencontainers.image.base.digest"] == first)
                // The manifest's annotations say the same, not buildah's name for the pinned copy.
                for keys in try baseKeys(directory.appending("image")) {
                    #expect(keys.annotations == keys.labels, "\(keys)")
                }
                let record = try json(directory.appending("image/build.json"))
                #expect((record["baseDigests"] as? [String: String])?["\(registry.host)/team/base:1"] == first)
                let inputs = try #require(record["inputs"] as? String)

                // The tag moves: the build follows it, and the inputs digest changes with the base.
                let second = try pushBase("\(registry.host)/team/base:1", marker: "two", directory: directory.url)
                #expect(second != first)
                var again = env
                again["OUTPUT"] = directory.appending("again").path
                let rebuilt = try buildTask(directory.url, again)
                #expect(rebuilt.succeeded, "\(rebuilt.stderrString)")
                #expect(try labels(directory.appending("again"))["org.opencontainers.image.base.digest"] == second)
                #expect(try json(directory.appending("again/build.json"))["inputs"] as? String != inputs)
                let bundle = directory.appending("bundle")
                _ = try runProcess(
                    "umoci", ["unpack", "--image", "\(directory.appending("again/oci").path):latest", bundle.path]
                ).checked()
                #expect(
                    try String(contentsOf: bundle.appendingPathComponent("rootfs/seen"), encoding: .utf8) == "two\n",
                    "built from the pinned base")

                // A base that does not exist is one line naming it; buildah is never reached.
                var missing = env
                missing["BUILD_ARG_BASE_TAG"] = "9"
                let failed = try buildTask(directory.url, missing)
                #expect(failed.status == 1)
                #expect(
                    failed.stderrString.contains("the base image \(registry.host)/team/base:9 does not exist"),
                    "\(failed.stderrString)")
                #expect(!failed.stderrString.contains("STEP"), "\(failed.stderrString)")
            }
        }
    }

    @Test func stagesAfterTheTargetAreNotResolved() throws {
        try withTemporaryDirectory { directory in
            let context = directory.appending("ctx")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try Data("small\n".utf8).write(to: context.appendingPathComponent("f"))
            try Data("FROM scratch AS small\nCOPY f /f\nFROM registry.invalid/nothing:1 AS big\nCOPY f /g\n".utf8)
                .write(to: context.appendingPathComponent("Dockerfile"))
            let result = try buildTask(
                directory.url, ["CONTEXT": context.path, "TARGET": "small", "CACHE": directory.appending("cache").path])
            #expect(result.succeeded, "\(result.stderrString)")
            #expect(
                try json(directory.appending("image/build.json"))["bases"] as? [Any] == nil
                    || (try json(directory.appending("image/build.json"))["bases"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func imageArgTakesTheBaseFromAGetDirectoryWithoutARegistry() async throws {
        try await withTemporaryDirectory { directory in
            var baseDigest = ""
            var host = ""
            // Gets of the base, as our in writes them (oci-layout: oci/; oci: image.tar); then the registry is gone.
            try await withTestRegistry(.open) { registry in
                host = registry.host
                baseDigest = try pushBase("\(registry.host)/team/base:1", marker: "local", directory: directory.url)
                for (name, format) in [("get-layout", "oci-layout"), ("get-tar", "oci")] {
                    let input =
                        #"{"source":{"repository":"\#(registry.host)/team/base","tag":"1","insecure":true},"version":{"tag":"1","digest":"\#(baseDigest)"},"params":{"format":"\#(format)"}}"#
                    let fetched = try runProcess(
                        try builtProduct("in").path, [directory.appending(name).path], stdin: Data(input.utf8),
                        environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
                    try #require(fetched.succeeded, "\(fetched.stderrString)")
                }
            }
            // A directory with no repository file (an OCI layout from elsewhere): its reference is unknown.
            try FileManager.default.copyItem(
                at: directory.appending("get-layout"), to: directory.appending("get-unnamed"))
            for file in ["repository", "tag"] {
                try FileManager.default.removeItem(at: directory.appending("get-unnamed/\(file)"))
            }
            let context = directory.appending("derived")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try Data(
                "ARG base_image\nFROM ${base_image}\nRUN [\"/bin/busybox\", \"cp\", \"/marker\", \"/seen\"]\n".utf8
            )
            .write(to: context.appendingPathComponent("Dockerfile"))
            var inputs: [String] = []
            let named = [
                "org.opencontainers.image.base.name": "\(host)/team/base:1",
                "org.opencontainers.image.base.digest": baseDigest,
            ]
            for (name, expected) in [
                ("get-layout", named), ("get-tar", named),
                ("get-unnamed", ["org.opencontainers.image.base.digest": baseDigest]),
            ] {
                let output = directory.appending("image-\(name)")
                let built = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": context.path, "IMAGE_ARG_base_image": directory.appending(name).path,
                        "CACHE": directory.appending("cache").path, "OUTPUT": output.path,
                    ])
                #expect(built.succeeded, "\(name): \(built.stderrString)")
                // Labels and manifest annotations name the get's reference (none without a repository file), never buildah's temporary link.
                for keys in try baseKeys(output) {
                    #expect(keys.labels == expected, "\(name)")
                    #expect(keys.annotations == expected, "\(name)")
                }
                let archived = try runProcess(
                    "skopeo", ["inspect", "docker-archive:\(output.appendingPathComponent("image.tar").path)"]
                ).checked()
                let archivedLabels =
                    (try JSONSerialization.jsonObject(with: archived.stdout) as? [String: Any])?["Labels"]
                    as? [String: String] ?? [:]
                #expect(
                    archivedLabels.filter { $0.key.hasPrefix("org.opencontainers.image.base.") } == expected,
                    "\(name): image.tar")
                let bundle = directory.appending("bundle-\(name)")
                _ = try runProcess(
                    "umoci", ["unpack", "--image", "\(output.appendingPathComponent("oci").path):latest", bundle.path]
                ).checked()
                #expect(
                    try String(contentsOf: bundle.appendingPathComponent("rootfs/seen"), encoding: .utf8) == "local\n")
                inputs.append(try json(output.appendingPathComponent("build.json"))["inputs"] as? String ?? "")
            }
            #expect(
                Set(inputs).count == 1,
                "the inputs digest names the base by digest, not by the directory's path or name")

            let empty = directory.appending("rootfs-only/rootfs")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            let refused = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "IMAGE_ARG_base_image": directory.appending("rootfs-only").path,
                    "CACHE": directory.appending("cache").path,
                ])
            #expect(
                refused.status == 1 && refused.stderrString.contains("holds only rootfs/"), "\(refused.stderrString)")
        }
    }

    /// A multi-platform image arg (build-task's own output, then with a get's repository and
    /// tag files): every platform's manifest is annotated as it is labelled, and --push pushes that index.
    @Test func anIndexBuiltOnAnImageArgIsAnnotatedAsItIsLabelledAndPushedSo() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                // Platforms differ by a marker (buildah 1.28 lists two identical images once).
                let base = try busyboxContext(
                    directory.appending("base"),
                    "FROM scratch\nARG TARGETARCH\nCOPY busybox /bin/busybox\nCOPY marker-${TARGETARCH} /marker\n",
                    files: ["marker-amd64": "amd64\n", "marker-arm64": "arm64\n"])
                let baseImage = directory.appending("base-image")
                let made = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": base.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
                        "CACHE": directory.appending("cache").path, "OUTPUT": baseImage.path,
                    ])
                try #require(made.succeeded, "\(made.stderrString)")
                let baseDigest = try String(contentsOf: baseImage.appendingPathComponent("digest"), encoding: .utf8)
                let context = directory.appending("derived")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data("derived\n".utf8).write(to: context.appendingPathComponent("f"))
                try Data("ARG base\nFROM ${base}\nCOPY f /f\n".utf8).write(
                    to: context.appendingPathComponent("Dockerfile"))
                let digestOnly = ["org.opencontainers.image.base.digest": baseDigest]
                // buildah annotates with its own idea of the base (the temporary link it read); the assembler writes none: both end as labelled.
                for builder in ["buildah", "assemble"] {
                    for (name, expected) in [
                        ("unnamed", digestOnly),
                        (
                            "named",
                            digestOnly.merging(["org.opencontainers.image.base.name": "\(registry.host)/team/base:2"]) {
                                $1
                            }
                        ),
                    ] {
                        let repositoryFile = baseImage.appendingPathComponent("repository")
                        let tagFile = baseImage.appendingPathComponent("tag")
                        if name == "named" {
                            try Data("\(registry.host)/team/base\n".utf8).write(to: repositoryFile)
                            try Data("2\n".utf8).write(to: tagFile)
                        } else {
                            try? FileManager.default.removeItem(at: repositoryFile)
                            try? FileManager.default.removeItem(at: tagFile)
                        }
                        let output = directory.appending("image-\(builder)-\(name)")
                        let tag = "\(registry.host)/team/derived:\(builder)-\(name)"
                        let built = try buildTask(
                            directory.url,
                            [
                                "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
                                "IMAGE_ARG_base": baseImage.path,
                                "REGISTRY_INSECURE": "true", "CACHE": directory.appending("cache").path,
                                "OUTPUT": output.path,
                                "BUILDER": builder,
                            ],
                            arguments: ["--tag", tag, "--push"])
                        try #require(built.succeeded, "\(builder) \(name): \(built.stderrString)")
                        let keys = try baseKeys(output)
                        #expect(keys.count == 2, "\(builder) \(name)")
                        for platform in keys {
                            #expect(platform.labels == expected, "\(builder) \(name)")
                            #expect(platform.annotations == expected, "\(builder) \(name)")
                        }
                        let pushed = try runProcess(
                            "skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(tag)"]
                        ).checked()
                        #expect(
                            Digest.sha256(pushed.stdout).rawValue
                                == (try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)),
                            "\(builder) \(name): the pushed index is the annotated one")
                    }
                }
            }
        }
    }

    /// A `buildah` first on PATH that records each call, then runs the real one.
    func recordingBuildah(_ directory: URL) throws -> (path: String, calls: URL) {
        let bin = directory.appendingPathComponent("recording-bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let calls = directory.appendingPathComponent("buildah-calls")
        let script = """
            #!/bin/sh
            case "$*" in *" bud "*) echo "start $$ $(date +%s.%N)" >> \(calls.path); sleep "${RECORDING_BUD_PAUSE:-0}" ;; esac
            /usr/bin/buildah "$@"
            status=$?
            case "$*" in *" bud "*) echo "end $$ $(date +%s.%N)" >> \(calls.path) ;; esac
            echo "call $*" >> \(calls.path).all
            exit $status
            """
        try Data(script.utf8).write(to: bin.appendingPathComponent("buildah"))
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o755], ofItemAtPath: bin.appendingPathComponent("buildah").path)
        return ("\(bin.path):/usr/local/bin:/usr/bin:/bin", calls)
    }

    @Test func skipIfPublishedReusesTheImageOfIdenticalInputsWithoutBuildah() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let first = try checkout(repository)
                    let remote = try repository.bareClone()
                    try repository.push()
                    let recording = try recordingBuildah(directory.url)
                    let env = [
                        "CONTEXT": repository.path.appendingPathComponent("app").path, "TARGET": "final",
                        "CACHE": directory.appending("cache").path,
                        "REGISTRY_INSECURE": "true", "SKIP_IF_PUBLISHED": "\(registry.host)/team/app",
                        "PATH": recording.path,
                    ]
                    let built = try buildTask(
                        directory.url, env.merging(["OUTPUT": directory.appending("first").path]) { $1 })
                    #expect(built.succeeded, "\(built.stderrString)")
                    let digest = try String(contentsOf: directory.appending("first/digest"), encoding: .utf8)
                    let inputs = try #require(try json(directory.appending("first/build.json"))["inputs"] as? String)
                    let cacheTag = try OCI.Tag("inputs-" + inputs.dropFirst("sha256:".count))
                    #expect(
                        try registry.client().manifestDescriptor(try Repository("team/app"), .tag(cacheTag))?.digest
                            .rawValue == digest,
                        "published under its inputs digest")

                    // Another branch, another commit, the same inputs: no buildah call at all.
                    try repository.branch("feature/other", checkout: true)
                    let second = try repository.commit("docs only", files: ["README.md": "not in the context\n"])
                    try repository.push()
                    try FileManager.default.removeItem(at: URL(fileURLWithPath: recording.calls.path + ".all"))
                    let reused = try buildTask(
                        directory.url, env.merging(["OUTPUT": directory.appending("second").path]) { $1 })
                    #expect(reused.succeeded, "\(reused.stderrString)")
                    #expect(
                        !FileManager.default.fileExists(atPath: recording.calls.path + ".all"),
                        "buildah was called on the skip path")
                    #expect(reused.stderrString.contains("reusing \(digest)"), "\(reused.stderrString)")
                    #expect(try String(contentsOf: directory.appending("second/digest"), encoding: .utf8) == digest)
                    let record = try json(directory.appending("second/build.json"))
                    #expect(record["reused"] as? Bool == true && record["revision"] as? String == second)
                    // skopeo and umoci read the reused layout and archive.
                    _ = try runProcess("skopeo", ["inspect", "oci:\(directory.appending("second/oci").path):latest"])
                        .checked()
                    _ = try runProcess(
                        "skopeo", ["inspect", "docker-archive:\(directory.appending("second/image.tar").path)"]
                    ).checked()

                    // out keys it on this run's commit (the layout's annotation), not on the first build's label.
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"feature/other","paths":["app/"]}}"#
                    let version = try outVersion(
                        runOut(#"{"source":\#(source),"params":{"image":"second/oci"}}"#, directory: directory.url))
                    #expect(version == ["ref": second])
                    #expect(second != first)
                }
            }
        }
    }

    /// An image `out` published (not build-task's SKIP_IF_PUBLISHED) is found by a later
    /// build of the same inputs: out tags it `inputs-<hex>` as build-task would.
    @Test func skipIfPublishedFindsAnImageOutPublished() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let commit = try checkout(repository)
                    let remote = try repository.bareClone()
                    try repository.push()
                    let recording = try recordingBuildah(directory.url)
                    let env = [
                        "CONTEXT": repository.path.appendingPathComponent("app").path, "TARGET": "final",
                        "CACHE": directory.appending("cache").path,
                        "REGISTRY_INSECURE": "true", "PATH": recording.path,
                    ]
                    let built = try buildTask(
                        directory.url, env.merging(["OUTPUT": directory.appending("built").path]) { $1 })
                    #expect(built.succeeded, "\(built.stderrString)")
                    let digest = try String(contentsOf: directory.appending("built/digest"), encoding: .utf8)
                    let inputs = try #require(try json(directory.appending("built/build.json"))["inputs"] as? String)
                    let cacheTag = try OCI.Tag("inputs-" + inputs.dropFirst("sha256:".count))
                    #expect(
                        try registry.client().manifestDescriptor(try Repository("team/app"), .tag(cacheTag)) == nil,
                        "build-task published nothing")

                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["app/"]}}"#
                    let put = try runOut(
                        #"{"source":\#(source),"params":{"image":"built/oci"}}"#, directory: directory.url)
                    #expect(try outVersion(put) == ["ref": commit])
                    #expect(
                        try registry.client().manifestDescriptor(try Repository("team/app"), .tag(cacheTag))?.digest
                            .rawValue == digest,
                        "out tagged the image with its inputs: \(put.stderrString)")

                    try FileManager.default.removeItem(at: URL(fileURLWithPath: recording.calls.path + ".all"))
                    let reused = try buildTask(
                        directory.url,
                        env.merging([
                            "OUTPUT": directory.appending("reused").path,
                            "SKIP_IF_PUBLISHED": "\(registry.host)/team/app",
                        ]) { $1 })
                    #expect(reused.succeeded, "\(reused.stderrString)")
                    #expect(reused.stderrString.contains("reusing \(digest), no build"), "\(reused.stderrString)")
                    #expect(
                        !FileManager.default.fileExists(atPath: recording.calls.path + ".all"),
                        "buildah was called on the skip path")
                    #expect(try String(contentsOf: directory.appending("reused/digest"), encoding: .utf8) == digest)
                }
            }
        }
    }

    /// A derived image built FROM its base's per-commit tag: after a merge, main's tag (the
    /// merge commit's) names the same base image as the branch commit's tag. The inputs digest
    /// records the base by digest, so main reuses the branch's image instead of building a twin.
    @Test func skipIfPublishedReusesAcrossTagsOfTheSameBase() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let digest = try pushBase(
                    "\(registry.host)/fornax/base_image:0a1b2c3d4e5f", marker: "base", directory: directory.url)
                let client = try registry.client()
                let repository = try Repository("fornax/base_image")
                let manifest = try client.manifest(repository, .tag(try OCI.Tag("0a1b2c3d4e5f")))
                _ = try client.putManifest(
                    repository, .tag(try OCI.Tag("9f8e7d6c5b4a")), bytes: manifest.bytes, mediaType: manifest.mediaType)
                #expect(
                    try client.manifestDescriptor(repository, .tag(try OCI.Tag("9f8e7d6c5b4a")))?.digest.rawValue
                        == digest)

                let context = directory.appending("derived")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data(
                    """
                    ARG REGISTRY
                    ARG BASE_TAG=main
                    FROM ${REGISTRY}/fornax/base_image:${BASE_TAG}
                    ARG GREETING=hello
                    RUN ["/bin/busybox", "sh", "-c", "cat /marker > /seen; echo $GREETING > /greeting"]
                    """.utf8
                ).write(to: context.appendingPathComponent("Dockerfile"))
                let recording = try recordingBuildah(directory.url)
                let env = [
                    "CONTEXT": context.path, "BUILD_ARG_REGISTRY": registry.host,
                    "CACHE": directory.appending("cache").path,
                    "REGISTRY_INSECURE": "true", "SKIP_IF_PUBLISHED": "\(registry.host)/fornax/derived",
                    "PATH": recording.path,
                ]
                let branch = try buildTask(
                    directory.url,
                    env.merging(["BUILD_ARG_BASE_TAG": "0a1b2c3d4e5f", "OUTPUT": directory.appending("branch").path]) {
                        $1
                    })
                try #require(branch.succeeded, "\(branch.stderrString)")
                let built = try String(contentsOf: directory.appending("branch/digest"), encoding: .utf8)
                let inputs = try #require(try json(directory.appending("branch/build.json"))["inputs"] as? String)

                // main, after the merge: the merge commit's tag, the same base image.
                try FileManager.default.removeItem(at: URL(fileURLWithPath: recording.calls.path + ".all"))
                let main = try buildTask(
                    directory.url,
                    env.merging(["BUILD_ARG_BASE_TAG": "9f8e7d6c5b4a", "OUTPUT": directory.appending("main").path]) {
                        $1
                    })
                #expect(main.succeeded, "\(main.stderrString)")
                #expect(
                    !FileManager.default.fileExists(atPath: recording.calls.path + ".all"),
                    "buildah was called: \(main.stderrString)")
                #expect(main.stderrString.contains("no build"), "\(main.stderrString)")
                #expect(try String(contentsOf: directory.appending("main/digest"), encoding: .utf8) == built)
                let record = try json(directory.appending("main/build.json"))
                #expect(record["reused"] as? Bool == true && record["inputs"] as? String == inputs)
                #expect(
                    (record["baseDigests"] as? [String: String])?["\(registry.host)/fornax/base_image:9f8e7d6c5b4a"]
                        == digest,
                    "build.json still names the base as this run reached it")

                // An arg the stage sees is still an input: it builds.
                let greeted = try buildTask(
                    directory.url,
                    env.merging([
                        "BUILD_ARG_BASE_TAG": "9f8e7d6c5b4a", "BUILD_ARG_GREETING": "hi",
                        "OUTPUT": directory.appending("greeted").path,
                    ]) { $1 })
                #expect(greeted.succeeded, "\(greeted.stderrString)")
                #expect(try json(directory.appending("greeted/build.json"))["reused"] as? Bool == false)
            }
        }
    }

    @Test func twoBuildTasksContendingForOneLockRunOneAfterTheOther() async throws {
        try await withTestGitRepository { repository in
            try await withTemporaryDirectory { directory in
                _ = try checkout(repository)
                let recording = try recordingBuildah(directory.url)
                let locks = directory.appending("locks")
                try FileManager.default.createDirectory(at: locks, withIntermediateDirectories: true)
                let product = try builtProduct("build-task").path
                // Two processes, two caches, one lock key: the second waits for the first.
                let runs = (0..<2).map { index in
                    BackgroundProcess(
                        product, [],
                        environment: [
                            "PATH": recording.path, "HOME": NSTemporaryDirectory(),
                            "CONTEXT": repository.path.appendingPathComponent("app").path,
                            "TARGET": "final", "CACHE": directory.appending("cache-\(index)").path,
                            "OUTPUT": directory.appending("image-\(index)").path,
                            "LOCK": "file:\(locks.path)", "LOCK_KEY": "team/app", "BUILD_ARG_GREETING": "run \(index)",
                            // The holder's build lasts long enough for the other, started with
                            // it, to reach the lock even on a loaded machine.
                            "RECORDING_BUD_PAUSE": "3",
                        ], currentDirectory: directory.url)
                }
                var logs: [String] = []
                for run in runs {
                    let result = try run.result()
                    #expect(result.succeeded, "\(result.stderrString)")
                    logs.append(result.stderrString)
                }
                #expect(logs.contains { $0.contains("waiting for lock") }, "one of them logged its wait: \(logs)")
                let events = try String(contentsOf: recording.calls, encoding: .utf8).split(separator: "\n").map {
                    $0.split(separator: " ")
                }
                let intervals = Dictionary(grouping: events, by: { String($0[1]) }).values.map {
                    group -> (Double, Double) in
                    (Double(group.first { $0[0] == "start" }![2])!, Double(group.first { $0[0] == "end" }![2])!)
                }.sorted { $0.0 < $1.0 }
                try #require(intervals.count == 2)
                #expect(intervals[0].1 <= intervals[1].0, "the builds overlapped: \(intervals)")
            }
        }
    }

    @Test func aStaleGitLockIsTakenOverAfterTheTTL() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                _ = try checkout(repository)
                // The lock repository holds a lock commit two hours old: its holder died.
                let locks = try TestGitRepository.create(at: directory.appending("locks-work"))
                let lockRemote = try locks.bareClone()
                let stale = try locks.commit("an old lock", date: Date().addingTimeInterval(-7200), allowEmpty: true)
                let ref = "refs/slipway-locks/" + (try LockKey("team/app")).safeName
                _ = try locks.git("push", "--quiet", "origin", "\(stale):\(ref)")
                let env = [
                    "CONTEXT": repository.path.appendingPathComponent("app").path, "TARGET": "final",
                    "CACHE": directory.appending("cache").path,
                    "LOCK": "git:\(lockRemote.url.absoluteString)", "LOCK_KEY": "team/app", "LOCK_TTL": "1h",
                    "LOCK_TIMEOUT": "60s",
                ]
                let result = try buildTask(directory.url, env)
                #expect(result.succeeded, "\(result.stderrString)")
                #expect(result.stderrString.contains("took over lock"), "\(result.stderrString)")
                #expect(try locks.git("ls-remote", "origin", ref).isEmpty, "the lock was released after the build")
            }
        }
    }

    @Test func aTerminalGetsALiveStatusLine() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                _ = try checkout(repository)
                let product = try builtProduct("build-task").path
                let command =
                    "CONTEXT=\(repository.path.appendingPathComponent("app").path) TARGET=final CACHE=\(directory.appending("cache").path) \(product)"
                // script(1) gives build-task a pseudo-terminal, as a developer's shell would.
                let result = try runProcess(
                    "script", ["-q", "-e", "-c", command, "/dev/null"],
                    environment: [
                        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "TERM": "xterm",
                    ],
                    currentDirectory: directory.url)
                #expect(result.succeeded, "\(result.stdoutString)")
                #expect(result.stdoutString.contains("\r\u{1B}[K"), "the status line is drawn and cleared")
                #expect(result.stdoutString.contains("STEP "), "the step lines stay")

                // Without a terminal (a Concourse task): only plain lines, no control sequences.
                let plain = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": repository.path.appendingPathComponent("app").path, "TARGET": "final",
                        "CACHE": directory.appending("cache").path,
                    ])
                #expect(plain.succeeded && !plain.stderrString.contains("\u{1B}["), "\(plain.stderrString)")
            }
        }
    }

    /// RUN for a foreign architecture needs qemu's binfmt handler; FROM scratch + COPY does not.
    /// It needs a registered qemu-aarch64 handler and a static arm64 busybox
    /// (`dpkg --add-architecture arm64; apt-get download busybox-static:arm64`, extracted to
    /// `$SLIPWAY_ARM64_BUSYBOX`); this machine's kernel has no binfmt_misc, so it skips here.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: "/proc/sys/fs/binfmt_misc/qemu-aarch64")
                && ProcessInfo.processInfo.environment["SLIPWAY_ARM64_BUSYBOX"] != nil,
            "needs a qemu-aarch64 binfmt handler in /proc/sys/fs/binfmt_misc and SLIPWAY_ARM64_BUSYBOX (a static arm64 busybox)"
        ))
    func runStepsForAForeignArchitectureWorkWithQemu() async throws {
        try await withTemporaryDirectory { directory in
            let busybox = URL(fileURLWithPath: ProcessInfo.processInfo.environment["SLIPWAY_ARM64_BUSYBOX"] ?? "")
            let context = directory.appending("ctx")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: busybox, to: context.appendingPathComponent("busybox"))
            try Data(
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /arch\"]\n"
                    .utf8
            )
            .write(to: context.appendingPathComponent("Dockerfile"))
            let result = try buildTask(
                directory.url,
                ["CONTEXT": context.path, "IMAGE_PLATFORM": "linux/arm64", "CACHE": directory.appending("cache").path])
            #expect(result.succeeded, "\(result.stderrString)")
            let bundle = directory.appending("bundle")
            _ = try runProcess(
                "umoci", ["unpack", "--image", "\(directory.appending("image/oci").path):latest", bundle.path]
            ).checked()
            #expect(
                try String(contentsOf: bundle.appendingPathComponent("rootfs/arch"), encoding: .utf8) == "aarch64\n")
        }
    }
}
