import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// build-task with real buildah, run as a Concourse task runs it (settings in the environment).
@Suite("build-task with real buildah", .serialized)
struct ImageBuildTests {
    /// A git checkout whose image needs a shell: busybox-static copied into a FROM scratch build.
    func checkout(_ repository: TestGitRepository) throws -> String {
        let busybox = try Data(contentsOf: URL(fileURLWithPath: "/bin/busybox"))
        let dockerfile = """
            FROM scratch AS base
            COPY busybox /bin/busybox
            ARG GREETING=hello
            RUN ["/bin/busybox", "sh", "-c", "echo $GREETING > /greeting"]

            FROM base AS final
            COPY app.txt /app.txt
            """
        let commit = try repository.commit(
            "app",
            files: ["app/Dockerfile": dockerfile, "app/app.txt": "hello from the app\n", "app/.dockerignore": "*.md\n"])
        try busybox.write(to: repository.path.appendingPathComponent("app/busybox"))
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o755], ofItemAtPath: repository.path.appendingPathComponent("app/busybox").path)
        _ = try repository.git("add", "app/busybox")
        _ = try repository.git("commit", "--amend", "--no-edit", "--quiet")
        _ = commit
        return try repository.head()
    }

    func buildTask(_ directory: URL, _ environment: [String: String], arguments: [String] = []) throws -> ProcessResult
    {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        env.merge(environment) { $1 }
        return try runProcess(
            try builtProduct("build-task").path, arguments, environment: env, currentDirectory: directory)
    }

    func json(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    @Test func buildsLabelsAndWritesOutputsReadBySkopeoAndUmoci() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let head = try checkout(repository)
                let env = [
                    "CONTEXT": repository.path.appendingPathComponent("app").path, "BUILD_ARG_GREETING": "hi",
                    "TARGET": "final",
                    "OUTPUT": directory.appending("image").path, "CACHE": directory.appending("cache").path,
                ]
                let result = try buildTask(directory.url, env)
                #expect(result.succeeded, "\(result.stderrString)")
                #expect(
                    result.stderrString.split(separator: "\n").contains {
                        $0.hasPrefix("[2/2] STEP 2/") && $0.hasSuffix("COPY app.txt /app.txt")
                    }, "one line per build step: \(result.stderrString)")
                let image = directory.appending("image")
                let digest = try String(contentsOf: image.appendingPathComponent("digest"), encoding: .utf8)
                let raw = try runProcess(
                    "skopeo", ["inspect", "--raw", "oci:\(image.appendingPathComponent("oci").path):latest"]
                ).checked()
                #expect(Digest.sha256(raw.stdout).rawValue == digest)
                let inspected = try runProcess(
                    "skopeo", ["inspect", "docker-archive:\(image.appendingPathComponent("image.tar").path)"]
                ).checked()
                let labels = try #require(
                    (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"]
                        as? [String: String])
                #expect(labels["org.opencontainers.image.revision"] == head)
                #expect(labels["dev.slipway.branch"] == "main")
                let commitTime = try repository.git("log", "-1", "--format=%cI", "HEAD")
                #expect(
                    labels["org.opencontainers.image.created"].map { ISO8601DateFormatter().date(from: $0) }
                        == ISO8601DateFormatter().date(from: commitTime))
                let record = try json(image.appendingPathComponent("build.json"))
                #expect(record["revision"] as? String == head && record["digest"] as? String == digest)
                #expect(labels["dev.slipway.inputs"] == record["inputs"] as? String)

                let bundle = directory.appending("bundle")
                _ = try runProcess(
                    "umoci", ["unpack", "--image", "\(image.appendingPathComponent("oci").path):latest", bundle.path]
                ).checked()
                #expect(
                    try String(contentsOf: bundle.appendingPathComponent("rootfs/greeting"), encoding: .utf8) == "hi\n",
                    "RUN saw the build arg")
                #expect(
                    try String(contentsOf: bundle.appendingPathComponent("rootfs/app.txt"), encoding: .utf8)
                        == "hello from the app\n")

                // The same inputs again (another output, the same cache): the same inputs digest and image config.
                var again = env
                again["OUTPUT"] = directory.appending("again").path
                #expect(try buildTask(directory.url, again).succeeded)
                let second = try json(directory.appending("again/build.json"))
                #expect(second["inputs"] as? String == record["inputs"] as? String)
                func config(_ dir: URL) throws -> String {
                    let manifest = try runProcess(
                        "skopeo", ["inspect", "--raw", "oci:\(dir.appendingPathComponent("oci").path):latest"]
                    ).checked()
                    let object = try JSONSerialization.jsonObject(with: manifest.stdout) as? [String: Any]
                    return (object?["config"] as? [String: Any])?["digest"] as? String ?? ""
                }
                #expect(try config(image) == config(directory.appending("again")), "the same image config")
            }
        }
    }

    @Test func outPushesTheTasksOutputAndPushFlagPushesDirectly() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let head = try checkout(repository)
                    let remote = try repository.bareClone()
                    try repository.push()
                    let env = [
                        "CONTEXT": repository.path.appendingPathComponent("app").path, "TARGET": "final",
                        "CACHE": directory.appending("cache").path, "REGISTRY_INSECURE": "true",
                    ]
                    // A local developer's build and push, flags over the environment.
                    let local = try buildTask(
                        directory.url, env, arguments: ["--tag", "\(registry.host)/team/app:my-changes", "--push"])
                    #expect(local.succeeded, "\(local.stderrString)")
                    let digest = try String(contentsOf: directory.appending("image/digest"), encoding: .utf8)
                    #expect(
                        try registry.client().manifestDescriptor(
                            try Repository("team/app"), .tag(try OCI.Tag("my-changes")))?.digest.rawValue == digest)

                    // In a pipeline: out pushes the task's image/ unchanged, keyed on its revision label.
                    let source =
                        #"{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["app/"]}}"#
                    let version = try outVersion(
                        runOut(#"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: directory.url))
                    #expect(version == ["ref": head])
                    #expect(
                        try registry.client().manifestDescriptor(
                            try Repository("team/app"), .tag(try OCI.Tag(String(head.prefix(12)))))?.digest.rawValue
                            == digest)
                }
            }
        }
    }

    @Test func severalPlatformsGiveAnIndexThatOutPushesAndInReadsPerPlatform() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    // FROM scratch with COPY needs no emulation to build for another architecture.
                    _ = try repository.commit(
                        "multi",
                        files: [
                            "app/Dockerfile": "FROM scratch\nARG TARGETARCH\nCOPY file-${TARGETARCH} /arch\n",
                            "app/file-amd64": "amd64\n", "app/file-arm64": "arm64\n",
                        ])
                    // buildah's manifest list; the assembler's index is AssembleTests'.
                    let env = [
                        "CONTEXT": repository.path.appendingPathComponent("app").path,
                        "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
                        "CACHE": directory.appending("cache").path, "BUILDER": "buildah",
                    ]
                    let result = try buildTask(directory.url, env)
                    #expect(result.succeeded, "\(result.stderrString)")
                    let raw = try runProcess(
                        "skopeo", ["inspect", "--raw", "oci:\(directory.appending("image/oci").path):latest"]
                    ).checked()
                    let index = try #require(try JSONSerialization.jsonObject(with: raw.stdout) as? [String: Any])
                    #expect(index["mediaType"] as? String == "application/vnd.oci.image.index.v1+json")
                    let architectures = (index["manifests"] as? [[String: Any]] ?? []).compactMap {
                        ($0["platform"] as? [String: String])?["architecture"]
                    }
                    #expect(Set(architectures) == ["amd64", "arm64"])
                    let digest = try String(contentsOf: directory.appending("image/digest"), encoding: .utf8)
                    #expect(Digest.sha256(raw.stdout).rawValue == digest, "digest is the index digest")
                    #expect(
                        !FileManager.default.fileExists(atPath: directory.appending("image/image.tar").path),
                        "a docker-archive holds one platform")

                    let source = #"{"repository":"\#(registry.host)/team/multi","tag":"latest","insecure":true}"#
                    let pushed = try outVersion(
                        runOut(#"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: directory.url))
                    #expect(pushed["digest"] == digest)
                    for arch in ["amd64", "arm64"] {
                        let get = directory.appending("get-\(arch)")
                        let input =
                            #"{"source":\#(source),"version":{"tag":"latest","digest":"\#(digest)"},"params":{"platform":{"os":"linux","architecture":"\#(arch)"}}}"#
                        let fetched = try runProcess(
                            try builtProduct("in").path, [get.path], stdin: Data(input.utf8),
                            environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
                        #expect(fetched.succeeded, "\(fetched.stderrString)")
                        #expect(
                            try String(contentsOf: get.appendingPathComponent("rootfs/arch"), encoding: .utf8)
                                == "\(arch)\n")
                    }
                }
            }
        }
    }

    @Test func missingBuildahAndABadDockerfileAreClearErrors() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                _ = try checkout(repository)
                let env = [
                    "CONTEXT": repository.path.appendingPathComponent("app").path,
                    "CACHE": directory.appending("cache").path,
                ]
                let noBuildah = try runProcess(
                    try builtProduct("build-task").path, [], environment: env.merging(["PATH": "/nonexistent"]) { $1 },
                    currentDirectory: directory.url)
                #expect(
                    noBuildah.status == 1 && noBuildah.stderrString.contains("buildah is not installed"),
                    "\(noBuildah.stderrString)")
                try Data("FROMM scratch\n".utf8).write(to: repository.path.appendingPathComponent("app/Dockerfile"))
                let bad = try buildTask(directory.url, env)
                #expect(bad.status == 1 && bad.stderrString.contains("buildah bud failed"), "\(bad.stderrString)")
                #expect(
                    bad.stderrString.contains("no FROM statement found"),
                    "buildah's own message is shown: \(bad.stderrString)")
            }
        }
    }
}

/// Runs the built `out DIR`, as in ResourceTests.
func runOut(_ input: String, directory: URL) throws -> ProcessResult {
    try runProcess(
        try builtProduct("out").path, [directory.path], stdin: Data(input.utf8),
        environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
}

func outVersion(_ result: ProcessResult) throws -> [String: String] {
    try #require(result.succeeded, "out failed: \(result.stderrString)")
    let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    return try #require(json["version"] as? [String: String])
}
