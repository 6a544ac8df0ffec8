import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing

/// oci-build-task's outputs (UNPACK_ROOTFS, OUTPUT_OCI, ADDITIONAL_TARGETS) and BuildKit
/// settings (secrets, ssh, add-hosts, docker.io mirrors) through the built `build-task`,
/// with real buildah and a real registry as the mirror.
extension ImageBuildTests {
    /// A context holding busybox (static) and `files`, with `dockerfile`.
    func busyboxContext(
        _ directory: TemporaryDirectory, _ name: String, dockerfile: String, files: [String: String] = [:]
    ) throws -> URL {
        let context = directory.appending(name)
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: context.appendingPathComponent("busybox").path)
        try Data(dockerfile.utf8).write(to: context.appendingPathComponent("Dockerfile"))
        for (file, text) in files { try Data(text.utf8).write(to: context.appendingPathComponent(file)) }
        return context
    }

    @Test func unpackRootfsAndOutputOCIWriteOCIBuildTaskLayout() throws {
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(
                directory, "ctx",
                dockerfile: "FROM scratch\nCOPY busybox /bin/busybox\nENV GREETING=hi\nUSER 1000:1000\n")
            let output = directory.appending("image")
            // A secret for an assembled build is fine: nothing executes, so nothing reads it.
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": output.path, "CACHE": directory.appending("cache").path,
                    "UNPACK_ROOTFS": "true", "OUTPUT_OCI": "true", "BUILDER": "assemble",
                    "BUILDKIT_SECRETTEXT_token": "assembled-secret-text",
                    "DOCKER_FILE": "Other.Dockerfile", "BUILD_ID": "42", "BUILD_PIPELINE_NAME": "p",
                ])
            #expect(result.succeeded, "\(result.stderrString)")
            #expect(!(result.stdoutString + result.stderrString).contains("assembled-secret-text"))
            // A look-alike is one warning line, and the build goes on; Concourse's metadata is no look-alike.
            let warnings = result.stderrString.split(separator: "\n").filter { $0.contains("warning:") }
            #expect(
                warnings == [
                    "build-task: warning: DOCKER_FILE is not a build-task variable and is ignored; did you mean DOCKERFILE?"
                ], "\(warnings)")

            // What has no meaning here fails at once, in one line, before anything is built.
            let refused = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": directory.appending("refused").path,
                    "CACHE": directory.appending("cache").path, "BUILDKIT_PROGRESS": "plain",
                ])
            #expect(refused.status == 1)
            #expect(
                refused.stderrString.hasPrefix(
                    "build-task: BUILDKIT_PROGRESS is not honoured: build-task builds with buildah, not BuildKit")
                    && refused.stderrString.split(separator: "\n").count == 1, "\(refused.stderrString)")
            let digest = try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)

            // OUTPUT_OCI: image/ is an OCI layout of the same image, and there is no image.tar.
            #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("image.tar").path))
            let raw = try runProcess(
                "skopeo", ["inspect", "--raw", "oci:\(output.appendingPathComponent("image").path):latest"]
            ).checked()
            #expect(Digest.sha256(raw.stdout).rawValue == digest)
            #expect(
                FileManager.default.fileExists(atPath: output.appendingPathComponent("oci/index.json").path),
                "Slipway's oci/ stays")

            // UNPACK_ROOTFS: rootfs/ and oci-build-task's metadata.json, from the image's config.
            #expect(
                FileManager.default.isExecutableFile(atPath: output.appendingPathComponent("rootfs/bin/busybox").path))
            let config = try OCILayout(opening: output.appendingPathComponent("oci")).image(named: "latest")
                .configuration()
            let metadata = try String(contentsOf: output.appendingPathComponent("metadata.json"), encoding: .utf8)
            #expect(
                metadata.hasPrefix("{\"env\":[") && metadata.hasSuffix("],\"user\":\"1000:1000\"}\n"), "\(metadata)")
            let parsed = try json(output.appendingPathComponent("metadata.json"))
            #expect(Set(parsed.keys) == ["env", "user"])
            #expect(
                parsed["env"] as? [String] == config.config?.env && (config.config?.env ?? []).contains("GREETING=hi"))

            // oci-build-task's OUTPUT_OCI output (image/ and digest, no oci/ or image.tar) is a base for IMAGE_ARG_*.
            let get = directory.appending("get")
            try FileManager.default.createDirectory(at: get, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: output.appendingPathComponent("image"), to: get.appendingPathComponent("image"))
            try FileManager.default.copyItem(
                at: output.appendingPathComponent("digest"), to: get.appendingPathComponent("digest"))
            let derived = try busyboxContext(
                directory, "derived", dockerfile: "ARG base\nFROM ${base}\nCOPY f /f\n", files: ["f": "f\n"])
            let onIt = try buildTask(
                directory.url,
                [
                    "CONTEXT": derived.path, "OUTPUT": directory.appending("derived-image").path,
                    "CACHE": directory.appending("cache").path, "IMAGE_ARG_base": get.path,
                ])
            #expect(onIt.succeeded, "\(onIt.stderrString)")
            #expect(try labels(directory.appending("derived-image"))["org.opencontainers.image.base.digest"] == digest)
        }
    }

    @Test func severalPlatformsImplyOutputOCIAndAReusedImageGetsTheSameOutputs() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let context = try busyboxContext(
                    directory, "ctx", dockerfile: "FROM scratch\nCOPY f /f\n", files: ["f": "f\n"])
                let common = [
                    "CONTEXT": context.path, "CACHE": directory.appending("cache").path, "REGISTRY_INSECURE": "true",
                ]
                // Two platforms: an index in image/ (as oci-build-task), no image.tar.
                let several = try buildTask(
                    directory.url,
                    common.merging([
                        "OUTPUT": directory.appending("several").path,
                        "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
                    ]) { $1 })
                #expect(several.succeeded, "\(several.stderrString)")
                let index = try OCILayout(opening: directory.appending("several/image")).image(named: "latest")
                #expect(
                    index.descriptor.digest.rawValue
                        == (try String(contentsOf: directory.appending("several/digest"), encoding: .utf8)))
                #expect(!FileManager.default.fileExists(atPath: directory.appending("several/image.tar").path))

                // Published under its inputs, then reused: the reuse writes image/ and rootfs/ too.
                let skip = ["SKIP_IF_PUBLISHED": "\(registry.host)/team/app"]
                #expect(
                    try buildTask(
                        directory.url,
                        common.merging(skip) { $1 }.merging(["OUTPUT": directory.appending("first").path]) { $1 }
                    ).succeeded)
                let reused = try buildTask(
                    directory.url,
                    common.merging(skip) { $1 }.merging([
                        "OUTPUT": directory.appending("reused").path, "UNPACK_ROOTFS": "true", "OUTPUT_OCI": "true",
                    ]) { $1 })
                #expect(reused.succeeded, "\(reused.stderrString)")
                #expect(try json(directory.appending("reused/build.json"))["reused"] as? Bool == true)
                #expect(FileManager.default.fileExists(atPath: directory.appending("reused/rootfs/f").path))
                #expect(FileManager.default.fileExists(atPath: directory.appending("reused/image/index.json").path))
                #expect(!FileManager.default.fileExists(atPath: directory.appending("reused/image.tar").path))
            }
        }
    }

    @Test func additionalTargetsAreBuiltEachIntoItsOwnDirectory() throws {
        try withTemporaryDirectory { directory in
            let context = try busyboxContext(
                directory, "ctx",
                dockerfile: """
                    FROM scratch AS test
                    COPY t /t
                    FROM scratch AS lint
                    COPY l /l
                    FROM scratch
                    COPY f /f
                    """, files: ["t": "t\n", "l": "l\n", "f": "f\n"])
            // `test` is a task output (its directory exists), `lint` is not: built, not kept.
            try FileManager.default.createDirectory(at: directory.appending("test"), withIntermediateDirectories: true)
            let output = directory.appending("image")
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": output.path, "CACHE": directory.appending("cache").path,
                    "ADDITIONAL_TARGETS": "test,lint", "UNPACK_ROOTFS": "true",
                ])
            #expect(result.succeeded, "\(result.stderrString)")
            #expect(
                result.stderrString.contains("building target 'test'")
                    && result.stderrString.contains("building target 'lint'"), "\(result.stderrString)")
            let test = directory.appending("test")
            for file in ["oci/index.json", "image.tar", "digest", "build.json", "rootfs/t", "metadata.json"] {
                #expect(FileManager.default.fileExists(atPath: test.appendingPathComponent(file).path), "test/\(file)")
            }
            #expect(!FileManager.default.fileExists(atPath: test.appendingPathComponent("rootfs/f").path))
            #expect(
                !FileManager.default.fileExists(atPath: directory.appending("lint").path),
                "no lint/ output was declared")
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("rootfs/f").path))
            #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("rootfs/t").path))
            #expect(
                try String(contentsOf: test.appendingPathComponent("digest"), encoding: .utf8)
                    != String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8))
        }
    }

    /// Every byte the build left behind, layers decompressed (gzip), for a secret search.
    func everyOutputByte(_ directory: URL) throws -> [(String, Data)] {
        var found: [(String, Data)] = []
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        while let file = files?.nextObject() as? URL {
            guard (try? file.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let data = try Data(contentsOf: file)
            found.append((file.path, data))
            if data.starts(with: [0x1f, 0x8b]) {
                found.append((file.path + " (gunzipped)", try runProcess("gzip", ["-dc", file.path]).checked().stdout))
            }
        }
        return found
    }

    @Test func secretsReachRunButNoLayerConfigManifestOrLogAndAddHostsReachEtcHosts() throws {
        try withTemporaryDirectory { directory in
            let text = "slipway-text-secret-\(UUID().uuidString)"
            let fileSecret = "slipway-file-secret-\(UUID().uuidString)"
            try Data(fileSecret.utf8).write(to: directory.appending("npmrc"))
            let context = try busyboxContext(
                directory, "ctx",
                dockerfile: """
                    FROM scratch
                    COPY busybox /bin/busybox
                    RUN --mount=type=secret,id=token --mount=type=secret,id=npmrc ["/bin/busybox", "sh", "-c", "/bin/busybox sha256sum /run/secrets/token > /token.sha && /bin/busybox cat /run/secrets/token /run/secrets/npmrc > /dev/null && /bin/busybox grep test-host /etc/hosts > /hosts"]
                    """)
            let output = directory.appending("image")
            let temporary = directory.appending("tmp")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": output.path, "CACHE": directory.appending("cache").path,
                    "BUILDKIT_SECRETTEXT_token": text, "BUILDKIT_SECRET_npmrc": directory.appending("npmrc").path,
                    "BUILDKIT_ADD_HOSTS": "test-host=1.2.3.4", "UNPACK_ROOTFS": "true", "DEBUG": "true",
                    "TMPDIR": temporary.path,
                ])
            #expect(result.succeeded, "\(result.stderrString)")
            // DEBUG logs buildah's command line: the secrets by path, the text one's a temporary file.
            #expect(
                result.stderrString.contains("--secret id=npmrc,src=\(directory.appending("npmrc").path)"),
                "\(result.stderrString)")
            #expect(
                result.stderrString.contains("--secret id=token,src=")
                    && result.stderrString.contains("--add-host test-host:1.2.3.4"))
            // The RUN read the text secret: its digest is in the image, not the secret.
            let sum = try String(contentsOf: output.appendingPathComponent("rootfs/token.sha"), encoding: .utf8)
            #expect(sum.hasPrefix(Digest.sha256(Data(text.utf8)).encoded), "\(sum)")
            #expect(
                try String(contentsOf: output.appendingPathComponent("rootfs/hosts"), encoding: .utf8).contains(
                    "1.2.3.4"))
            let scanned = try everyOutputByte(output)
            // The search sees inside layers: the RUN's output file is found there.
            let written = Data(Digest.sha256(Data(text.utf8)).encoded.utf8)
            #expect(
                scanned.contains {
                    $0.0.contains("/oci/blobs/") && $0.0.hasSuffix("(gunzipped)") && $0.1.range(of: written) != nil
                })
            for secret in [text, fileSecret] {
                for (name, data) in scanned + [("log", result.stdout + result.stderr)] {
                    #expect(data.range(of: Data(secret.utf8)) == nil, "\(name) holds a secret")
                }
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: temporary.path)
            #expect(leftovers.isEmpty, "the text secret's file is removed: \(leftovers)")
        }
    }

    @Test func aDockerHubMirrorServesTheBaseToTheAssemblerAndToBuildah() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                // The base exists only in the mirror (docker.io is not reachable from here).
                let base = try pushBase(
                    "\(registry.host)/slipwaymirror/base:1", marker: "mirrored", directory: directory.url)
                let assembled = try busyboxContext(
                    directory, "assembled", dockerfile: "FROM slipwaymirror/base:1\nCOPY f /f\n", files: ["f": "f\n"])
                let result = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": assembled.path, "OUTPUT": directory.appending("one").path,
                        "CACHE": directory.appending("cache").path, "BUILDER": "assemble",
                        "REGISTRY_MIRRORS": "127.0.0.1:1,\(registry.host)", "REGISTRY_INSECURE": "true",
                    ])
                #expect(result.succeeded, "\(result.stderrString)")
                // A mirror that fails is logged and skipped; the next one serves the base.
                #expect(
                    result.stderrString.contains("the mirror 127.0.0.1:1 failed")
                        && result.stderrString.contains("from the mirror \(registry.host)"),
                    "\(result.stderrString)")
                let labelled = try labels(directory.appending("one"))
                #expect(labelled["org.opencontainers.image.base.digest"] == base)
                #expect(labelled["org.opencontainers.image.base.name"] == "docker.io/slipwaymirror/base:1")

                // buildah pulls through the same mirror, here given as a buildkitd.toml.
                let built = try busyboxContext(
                    directory, "built",
                    dockerfile: "FROM slipwaymirror/base:1\nRUN [\"/bin/busybox\", \"cp\", \"/marker\", \"/seen\"]\n")
                let config = "[registry.\"docker.io\"]\n  mirrors = [\"\(registry.host)\"]\n"
                let second = try buildTask(
                    directory.url,
                    [
                        "CONTEXT": built.path, "OUTPUT": directory.appending("two").path,
                        "CACHE": directory.appending("cache").path, "BUILDER": "buildah", "UNPACK_ROOTFS": "true",
                        "BUILDKIT_EXTRA_CONFIG": config, "REGISTRY_INSECURE": "true",
                    ])
                #expect(second.succeeded, "\(second.stderrString)")
                #expect(try String(contentsOf: directory.appending("two/rootfs/seen"), encoding: .utf8) == "mirrored\n")
                #expect(try labels(directory.appending("two"))["org.opencontainers.image.base.digest"] == base)
            }
        }
    }

    @Test func anSSHAgentIsForwardedToRun() throws {
        try withTemporaryDirectory { directory in
            let key = directory.appending("id_test")
            _ = try runProcess("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "slipway-test", "-f", key.path])
                .checked()
            let socket = directory.appending("agent.sock")
            let agent = try runProcess("ssh-agent", ["-a", socket.path]).checked()
            let pid = agent.stdoutString.components(separatedBy: "SSH_AGENT_PID=").dropFirst().first.flatMap {
                Int32($0.prefix { $0.isNumber })
            }
            defer { if let pid { kill(pid, SIGTERM) } }
            _ = try runProcess(
                "ssh-add", [key.path], environment: ["SSH_AUTH_SOCK": socket.path, "PATH": "/usr/bin:/bin"]
            ).checked()
            let fingerprint = try runProcess("ssh-keygen", ["-l", "-f", key.path + ".pub"]).checked().stdoutString
                .split(separator: " ")[1]

            // ssh-add and the libraries it loads, so the RUN can ask the forwarded agent.
            let context = try busyboxContext(
                directory, "ctx",
                dockerfile: """
                    FROM scratch
                    COPY busybox /bin/busybox
                    COPY root/ /
                    RUN --mount=type=ssh ["/bin/busybox", "sh", "-c", "/usr/bin/ssh-add -l > /keys"]
                    """)
            let libraries = try runProcess("ldd", ["/usr/bin/ssh-add"]).checked().stdoutString.split(separator: "\n")
                .compactMap { line in
                    line.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("/") }.map(String.init)
                }
            for file in ["/usr/bin/ssh-add"] + libraries {
                let target = context.appendingPathComponent("root" + file)
                try FileManager.default.createDirectory(
                    at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: URL(fileURLWithPath: file).resolvingSymlinksInPath(), to: target)
            }
            let output = directory.appending("image")
            let result = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": output.path, "CACHE": directory.appending("cache").path,
                    "BUILDKIT_SSH": "default=\(socket.path)", "UNPACK_ROOTFS": "true",
                ])
            #expect(result.succeeded, "\(result.stderrString)")
            let keys = (try? String(contentsOf: output.appendingPathComponent("rootfs/keys"), encoding: .utf8)) ?? ""
            #expect(keys.contains(fingerprint) && keys.contains("slipway-test"), "\(keys)")

            // A key file instead of an agent (oci-build-task's README form, <id>=<key>): buildah serves it under that id.
            let dockerfile = try String(contentsOf: context.appendingPathComponent("Dockerfile"), encoding: .utf8)
            try Data(
                dockerfile.replacingOccurrences(of: "--mount=type=ssh ", with: "--mount=type=ssh,id=github_key ").utf8
            )
            .write(to: context.appendingPathComponent("Dockerfile"))
            let fromFile = try buildTask(
                directory.url,
                [
                    "CONTEXT": context.path, "OUTPUT": directory.appending("from-file").path,
                    "CACHE": directory.appending("cache").path, "BUILDKIT_SSH": "github_key=\(key.path)",
                    "UNPACK_ROOTFS": "true",
                ])
            #expect(fromFile.succeeded, "\(fromFile.stderrString)")
            let listed = (try? String(contentsOf: directory.appending("from-file/rootfs/keys"), encoding: .utf8)) ?? ""
            #expect(listed.contains(fingerprint), "\(listed)")
        }
    }
}
