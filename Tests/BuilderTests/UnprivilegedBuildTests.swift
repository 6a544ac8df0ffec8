import Builder
import Foundation
import TestSupport
import Testing

/// build-task run the way Concourse runs a task that is not `privileged: true`: in a user
/// namespace (`unshare --user --map-root-user`), through `Tests/Fixtures/concourse/unprivileged.c`,
/// which keeps only Concourse's capabilities (no CAP_SYS_ADMIN) and refuses unshare, setns,
/// mount, pivot_root and clone with namespace flags with EPERM (concourse/concourse
/// worker/runtime/spec). buildah cannot work there; build-task says so in one line, before
/// buildah runs. A Dockerfile that executes nothing is assembled without buildah, so it builds there.
extension ImageBuildTests {
    static let unprivilegedSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/concourse/unprivileged.c")

    /// The wrapper, compiled into `directory` with libseccomp-dev by `cc`, else the Swift
    /// toolchain's clang (it drops capabilities, so it runs as root).
    func unprivilegedWrapper(_ directory: URL) throws -> String {
        let binary = directory.appendingPathComponent("unprivileged").path
        _ = try runProcess(
            "/bin/sh",
            [
                "-c", #""$(command -v cc || command -v clang)" -O -o "$1" "$2" -lseccomp"#, "sh",
                binary, Self.unprivilegedSource.path,
            ]
        ).checked()
        return binary
    }

    static let namespaceFix =
        "Concourse runs tasks without privileges by default; set privileged: true on the task that runs build-task"

    @Test(.enabled(if: geteuid() == 0, "the wrapper drops root's capabilities"))
    func inANonPrivilegedConcourseContainerABuildFailsInOneLineBeforeBuildah() throws {
        try withTemporaryDirectory { directory in
            let wrapper = try unprivilegedWrapper(directory.url)
            let concourse = ["--user", "--map-root-user", wrapper]  // unshare(1)'s arguments: the task's container
            // The wrapper is faithful: buildah itself, through it, fails as in the issue.
            let storage = [
                "--root", directory.appending("probe/storage").path, "--runroot",
                directory.appending("probe/runroot").path, "--storage-driver", "vfs",
            ]
            let direct = try runProcess("/usr/bin/unshare", concourse + ["buildah"] + storage + ["images", "--quiet"])
            #expect(
                !direct.succeeded && direct.stderrString.contains("unshare(CLONE_NEWUSER): Operation not permitted"),
                "\(direct.stderrString)")
            #expect(
                Namespaces.problem(buildahOutput: direct.stderrString) != nil,
                "the storage check's fallback knows buildah's words: \(direct.stderrString)")

            let recording = try recordingBuildah(directory.url)
            func build(_ name: String, _ dockerfile: String, unprivileged: Bool) throws -> ProcessResult {
                let context = try busyboxContext(directory.appending(name), dockerfile)
                // buildah's own limits are what this test is about: no assembling.
                let environment = [
                    "PATH": recording.path, "HOME": NSTemporaryDirectory(), "CONTEXT": context.path,
                    "BUILDER": "buildah",
                    "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("image-\(name)").path,
                ]
                let buildTask = try builtProduct("build-task").path
                return try runProcess(
                    unprivileged ? "/usr/bin/unshare" : buildTask, unprivileged ? concourse + [buildTask] : [],
                    environment: environment, currentDirectory: directory.url)
            }
            /// Every stderr line but the last is build-task's own progress; the last is the error.
            func onlyTheLine(_ result: ProcessResult, _ expected: String) {
                #expect(result.status == 1, "\(result.stderrString)")
                let lines = result.stderrString.split(separator: "\n").map(String.init)
                #expect(lines.last == "build-task: " + expected, "\(result.stderrString)")
                #expect(
                    lines.dropLast().allSatisfy {
                        $0.hasPrefix("inputs sha256:") || $0.hasPrefix("the context is not in a git checkout")
                    },
                    "nothing else on stderr: \(result.stderrString)")
                #expect(
                    !FileManager.default.fileExists(atPath: recording.calls.path + ".all"),
                    "buildah was called: \(result.stderrString)")
            }

            let withRun =
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo hi > /hi\"]\n"
            onlyTheLine(
                try build("run", withRun, unprivileged: true),
                "this container cannot create the namespaces buildah needs to RUN (unshare(CLONE_NEWUSER): Operation not permitted): "
                    + Self.namespaceFix)
            // COPY only: buildah still needs the user namespace for its storage; the same cause, said honestly.
            onlyTheLine(
                try build("copy", "FROM scratch\nCOPY busybox /bin/busybox\n", unprivileged: true),
                "this container cannot create the user namespace buildah needs to open its storage, even for a build without RUN (unshare(CLONE_NEWUSER): Operation not permitted): "
                    + Self.namespaceFix)
            // Privileged (no wrapper), the same RUN build works.
            let privileged = try build("run-privileged", withRun, unprivileged: false)
            #expect(privileged.succeeded, "\(privileged.stderrString)")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "the wrapper drops root's capabilities"))
    func inANonPrivilegedConcourseContainerACopyOnlyBuildIsAssembledAndARunIsExplained() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let wrapper = try unprivilegedWrapper(directory.url)
                    let concourse = ["--user", "--map-root-user", wrapper]
                    _ = try pushBase(registry, directory)
                    let context = try copyOnlyCheckout(repository)
                    let buildTask = try builtProduct("build-task").path
                    func build(_ name: String, unprivileged: Bool, _ extra: [String: String] = [:]) throws
                        -> ProcessResult
                    {
                        let environment = [
                            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(),
                            "CONTEXT": context.path,
                            "BUILD_ARG_REGISTRY": registry.host, "REGISTRY_INSECURE": "true",
                            "CACHE": directory.appending("cache-\(name)").path,
                            "OUTPUT": directory.appending(name).path,
                        ].merging(extra) { $1 }
                        return try runProcess(
                            unprivileged ? "/usr/bin/unshare" : buildTask, unprivileged ? concourse + [buildTask] : [],
                            environment: environment, currentDirectory: directory.url)
                    }
                    // The default BUILDER=auto assembles it there, and it is the image buildah builds where it can.
                    let assembled = try build("assembled", unprivileged: true)
                    #expect(assembled.succeeded, "\(assembled.stderrString)")
                    #expect(
                        assembled.stderrString.contains("builder: assembling the image"), "\(assembled.stderrString)")
                    let privileged = try build("buildah", unprivileged: false, ["BUILDER": "buildah"])
                    #expect(privileged.succeeded, "\(privileged.stderrString)")
                    try expectSameImage(
                        directory.appending("buildah"), directory.appending("assembled"),
                        scratch: directory.appending("compare"))

                    // A RUN cannot be assembled: one line naming the fix, whichever way it is asked.
                    try Data((Self.copyOnlyDockerfile + "\nRUN [\"/bin/busybox\", \"true\"]\n").utf8).write(
                        to: context.appendingPathComponent("Dockerfile"))
                    let run = try build("run", unprivileged: true)
                    #expect(run.status == 1)
                    #expect(
                        run.stderrString.contains("builder: buildah, since Dockerfile line 24: RUN executes a program"),
                        "\(run.stderrString)")
                    let last = run.stderrString.split(separator: "\n").last.map(String.init) ?? ""
                    #expect(
                        last.hasPrefix("build-task: this container cannot create the namespaces buildah needs to RUN")
                            && last.hasSuffix(Self.namespaceFix), "\(last)")
                    let refused = try build("run-assemble", unprivileged: true, ["BUILDER": "assemble"])
                    #expect(
                        refused.status == 1
                            && refused.stderrString.hasSuffix(
                                "build-task: Dockerfile line 24: RUN executes a program; BUILDER=assemble cannot build it: use BUILDER=auto or buildah (buildah needs privileged: true in Concourse)\n"
                            ),
                        "\(refused.stderrString)")
                }
            }
        }
    }
}
