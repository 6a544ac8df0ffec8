import BuildContext
import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing

/// Multi-arch builds on a worker without qemu (finding 7): the cross-build pattern, where
/// every RUN runs on the build platform (`FROM --platform=$BUILDPLATFORM`), works; a RUN
/// that would need emulation fails before buildah starts, in one line.
extension ImageBuildTests {
    static let crossBuildDockerfile = """
        FROM --platform=$BUILDPLATFORM scratch AS build
        COPY busybox /bin/busybox
        ARG TARGETARCH
        RUN ["/bin/busybox","sh","-c","echo $TARGETARCH > /arch"]
        FROM scratch
        COPY --from=build /arch /arch
        """

    /// A context holding the host's static busybox and `dockerfile`.
    func busyboxContext(_ directory: URL, _ dockerfile: String, files: [String: String] = [:]) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: "/bin/busybox", toPath: directory.appendingPathComponent("busybox").path)
        try Data(dockerfile.utf8).write(to: directory.appendingPathComponent("Dockerfile"))
        for (name, text) in files { try Data(text.utf8).write(to: directory.appendingPathComponent(name)) }
        return directory
    }

    /// Pushes `reference`, an index of linux/amd64 and linux/arm64 whose `/marker` names its
    /// architecture (`marker-<arch>` holds the text `<arch><markerSuffix>`), with busybox in
    /// each image; its build output goes to `base-image/` in `directory`.
    func pushMarkedBase(
        _ reference: String, in directory: TemporaryDirectory, markerSuffix: String = "", builder: String = "auto"
    ) throws {
        let context = try busyboxContext(
            directory.appending("base"),
            "FROM scratch\nARG TARGETARCH\nCOPY busybox /bin/busybox\nCOPY marker-${TARGETARCH} /marker\n",
            files: ["marker-amd64": "amd64\(markerSuffix)\n", "marker-arm64": "arm64\(markerSuffix)\n"])
        let pushed = try buildTask(
            directory.url,
            [
                "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64", "BUILDER": builder,
                "REGISTRY_INSECURE": "true", "CACHE": directory.appending("base-cache").path,
                "OUTPUT": directory.appending("base-image").path,
            ], arguments: ["--tag", reference, "--push"])
        try #require(pushed.succeeded, "\(pushed.stderrString)")
    }

    /// The files of the `architecture` image of the layout `oci/`, unpacked by skopeo and umoci.
    func unpacked(_ layout: URL, architecture: String, into directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let single = directory.appendingPathComponent("single-\(architecture)")
        _ = try runProcess(
            "skopeo",
            [
                "copy", "--quiet", "--override-os", "linux", "--override-arch", architecture,
                "oci:\(layout.path):latest", "oci:\(single.path):latest",
            ]
        ).checked()
        let bundle = directory.appendingPathComponent("bundle-\(architecture)")
        _ = try runProcess("umoci", ["unpack", "--image", "\(single.path):latest", bundle.path]).checked()
        return bundle.appendingPathComponent("rootfs")
    }

    /// The index in `layout` as our layout code reads it: each platform's architecture, with its config's.
    func platforms(_ layout: URL) throws -> [String: String] {
        let image = try OCILayout(opening: layout).image(named: "latest")
        guard case .index(let index) = image.manifest else { return [:] }
        var result: [String: String] = [:]
        for entry in index.manifests {
            let platform = try #require(entry.platform)
            #expect(platform.os == "linux")
            result[platform.architecture] = try image.configuration(for: platform).architecture
        }
        return result
    }

    /// Contexts whose image is the same on both platforms: buildah 1.28 collapses the two
    /// identical images into one index entry whose platform disagrees with its config.
    static let samePerPlatform: [(dockerfile: String, builder: String)] = [
        ("FROM scratch\nCOPY hello.txt /hello.txt\n", "buildah"),
        ("FROM scratch\nCOPY hello.txt /hello.txt\n", "assemble"),
        (
            """
            FROM --platform=$BUILDPLATFORM scratch AS build
            COPY busybox /bin/busybox
            RUN ["/bin/busybox","sh","-c","echo same > /same"]
            FROM scratch
            COPY --from=build /same /same
            """, "buildah"
        ),
    ]

    @Test(arguments: 0..<samePerPlatform.count)
    func identicalPlatformsStillGetOneManifestEachNamingItsPlatform(_ which: Int) throws {
        let (dockerfile, builder) = Self.samePerPlatform[which]
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(
                directory.appending("ctx"), dockerfile, files: ["hello.txt": "the same on every platform\n"])
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/arm64,linux/amd64", "BUILDER": builder,
                    "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("image").path,
                ])
            try #require(result.succeeded, "\(result.stderrString)")
            let layout = directory.appending("image/oci")
            let image = try OCILayout(opening: layout).image(named: "latest")
            guard case .index(let index) = image.manifest else {
                Issue.record("not an index")
                return
            }
            #expect(
                index.manifests.compactMap(\.platform) == [
                    Platform(os: "linux", architecture: "arm64"), Platform(os: "linux", architecture: "amd64"),
                ],
                "one manifest per platform asked, in the order asked")
            for entry in index.manifests {
                let platform = try #require(entry.platform)
                let configuration = try image.configuration(for: platform)
                #expect(
                    configuration.os == platform.os && configuration.architecture == platform.architecture,
                    "\(builder): the entry for \(platform) has a config for \(configuration.os)/\(configuration.architecture)"
                )
            }
            let raw = try runProcess("skopeo", ["inspect", "--raw", "oci:\(layout.path):latest"]).checked()
            #expect(
                Digest.sha256(raw.stdout).rawValue
                    == (try String(contentsOf: directory.appending("image/digest"), encoding: .utf8)))
            for architecture in ["amd64", "arm64"] {
                let inspected = try runProcess(
                    "skopeo",
                    ["inspect", "--override-os", "linux", "--override-arch", architecture, "oci:\(layout.path):latest"]
                ).checked()
                let json = try #require(try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])
                #expect(json["Architecture"] as? String == architecture)
            }
        }
    }

    @Test func aCrossBuildRunsEveryRunOnTheBuildPlatformAndGivesAnIndexOfBothArchitectures() throws {
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(directory.appending("ctx"), Self.crossBuildDockerfile)
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
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
            let index = try #require(try JSONSerialization.jsonObject(with: raw.stdout) as? [String: Any])
            #expect(index["mediaType"] as? String == "application/vnd.oci.image.index.v1+json")
            for architecture in ["amd64", "arm64"] {
                let root = try unpacked(layout, architecture: architecture, into: directory.url)
                #expect(
                    try String(contentsOf: root.appendingPathComponent("arch"), encoding: .utf8) == "\(architecture)\n")
            }
        }
    }

    /// `FROM --platform=$BUILDPLATFORM <registry base>`: the build stage uses the build
    /// platform's manifest of a multi-platform base, also when one other platform is built.
    @Test func aCrossBuildFromARegistryBaseUsesTheBuildPlatformsManifest() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                // The base: an index of amd64 and arm64, each with a marker naming its platform.
                let tools = "\(registry.host)/team/tools:1"
                try pushMarkedBase(tools, in: directory)
                let indexDigest = try String(contentsOf: directory.appending("base-image/digest"), encoding: .utf8)

                let context = directory.appending("derived")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data(
                    """
                    ARG REGISTRY
                    FROM --platform=$BUILDPLATFORM ${REGISTRY}/team/tools:1 AS build
                    ARG TARGETARCH
                    RUN ["/bin/busybox","sh","-c","cat /marker > /seen; echo $TARGETARCH > /arch"]
                    FROM scratch
                    COPY --from=build /seen /seen
                    COPY --from=build /arch /arch
                    """.utf8
                ).write(to: context.appendingPathComponent("Dockerfile"))
                for (platforms, name) in [("linux/arm64", "one"), ("linux/amd64,linux/arm64", "both")] {
                    let output = directory.appending("image-\(name)")
                    let built = try buildTask(
                        directory.url,
                        [
                            "CONTEXT": context.path, "IMAGE_PLATFORM": platforms, "BUILD_ARG_REGISTRY": registry.host,
                            "REGISTRY_INSECURE": "true", "CACHE": directory.appending("cache").path,
                            "OUTPUT": output.path,
                        ])
                    #expect(built.succeeded, "\(platforms): \(built.stderrString)")
                    // The base is pinned to its index (buildah picks the build platform's manifest from it),
                    // and the base summary is the one track_base computes for this Dockerfile.
                    let record = try json(output.appendingPathComponent("build.json"))
                    #expect(
                        (record["baseDigests"] as? [String: String])?[tools] == indexDigest, "\(platforms): \(record)")
                    let summary = BaseSummary.digest([tools: try Digest(indexDigest)]).rawValue
                    let architectures = platforms.split(separator: ",").map { String($0.split(separator: "/")[1]) }
                    for architecture in architectures {
                        let root = try unpacked(
                            output.appendingPathComponent("oci"), architecture: architecture,
                            into: directory.appending(name))
                        #expect(
                            try String(contentsOf: root.appendingPathComponent("seen"), encoding: .utf8) == "amd64\n",
                            "\(platforms) \(architecture): the build platform's base")
                        #expect(
                            try String(contentsOf: root.appendingPathComponent("arch"), encoding: .utf8)
                                == "\(architecture)\n")
                        let config = try OCILayout(opening: output.appendingPathComponent("oci")).image(named: "latest")
                            .configuration(for: Platform(os: "linux", architecture: architecture))
                        #expect(config.architecture == architecture)
                        #expect(config.config?.labels?["dev.slipway.base"] == summary)
                    }
                }
            }
        }
    }

    /// Skipped where a qemu-aarch64 handler is registered (there, the RUN would work) and off x86-64.
    @Test(
        .enabled(if: Platform.host.architecture == "amd64", "the expected line names a linux/amd64 worker"),
        .enabled(
            if: !FileManager.default.fileExists(atPath: "/proc/sys/fs/binfmt_misc/qemu-aarch64"),
            "this machine has a qemu-aarch64 binfmt_misc handler, so an arm64 RUN does not need the cross-build pattern here"
        ))
    func aRunForArm64WithoutEmulationFailsInOneLineBeforeBuildah() throws {
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(
                directory.appending("ctx"),
                Self.crossBuildDockerfile.replacingOccurrences(of: "--platform=$BUILDPLATFORM ", with: ""))
            let recording = try recordingBuildah(directory.url)
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64", "PATH": recording.path,
                    "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("image").path,
                ])
            #expect(result.status == 1)
            let lines = result.stderrString.split(separator: "\n").filter { $0.hasPrefix("build-task: ") }
            #expect(lines.count == 1, "\(result.stderrString)")
            let line = String(lines.first ?? "")
            #expect(
                line.hasPrefix(
                    "build-task: stage \"build\" (line 1, FROM scratch) has RUN steps for linux/arm64, but this worker is linux/amd64"
                ), "\(line)")
            for part in [
                "no qemu-aarch64 handler registered in /proc/sys/fs/binfmt_misc", "register qemu-user-static",
                "FROM --platform=$BUILDPLATFORM", "(Concourse tags:)",
            ] {
                #expect(line.contains(part), "\(part): \(line)")
            }
            #expect(
                !FileManager.default.fileExists(atPath: recording.calls.path + ".all"),
                "buildah was called: \(result.stderrString)")
        }
    }
}
