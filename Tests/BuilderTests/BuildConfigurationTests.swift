import Builder
import Foundation
import OCI
import TestSupport
import Testing

@Suite("build-task configuration from the environment and flags")
struct BuildConfigurationTests {
    func workspace(_ directory: TemporaryDirectory) throws -> URL {
        let context = directory.appending("repo/images/app")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try Data("FROM scratch\n".utf8).write(to: context.appendingPathComponent("Dockerfile"))
        return directory.url
    }

    @Test func theEnvironmentAsAConcourseTaskSetsIt() throws {
        try withTemporaryDirectory { directory in
            let base = try workspace(directory)
            try Data("# args\nVERSION=1.2.3\nBASE=busybox\n".utf8).write(to: base.appendingPathComponent("args.env"))
            try Data("final\n".utf8).write(to: base.appendingPathComponent("target"))
            let environment = [
                "CONTEXT": "repo/images/app", "BUILD_ARGS_FILE": "args.env", "BUILD_ARG_BASE": "alpine",
                "LABEL_team": "core",
                "TARGET_FILE": "target", "IMAGE_PLATFORM": "linux/amd64, linux/arm64",
                "SKIP_IF_PUBLISHED": "registry.example/team/app",
                "LOCK": "file:/tmp/locks", "LOCK_TIMEOUT": "90s", "REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "p",
                "REGISTRY_INSECURE": "true",
            ]
            let configuration = try BuildConfiguration(
                flags: try BuildFlags.parse([]), environment: environment, directory: base)
            #expect(configuration.context.path == base.appendingPathComponent("repo/images/app").path)
            #expect(configuration.dockerfile.lastPathComponent == "Dockerfile")
            #expect(configuration.buildArgs == ["VERSION": "1.2.3", "BASE": "alpine"], "a variable wins over the file")
            #expect(configuration.labels == ["team": "core"])
            #expect(configuration.target == "final")
            #expect(configuration.platforms == [try Platform("linux/amd64"), try Platform("linux/arm64")])
            #expect(configuration.skipIfPublished?.repository.rawValue == "team/app")
            #expect(configuration.lockTimeout == .seconds(90) && configuration.lockTTL == .seconds(7200))
            #expect(configuration.registryInsecure && !configuration.push)
            #expect(
                configuration.output.lastPathComponent == "image" && configuration.cache.lastPathComponent == "cache")
        }
    }

    @Test func flagsWinForALocalBuildAndPush() throws {
        try withTemporaryDirectory { directory in
            let base = try workspace(directory)
            try Data("VERSION: \"2.0\"\nBASE: debian\n".utf8).write(to: base.appendingPathComponent("args.yaml"))
            let flags = try BuildFlags.parse([
                "--context", "repo/images/app", "--build-arg", "VERSION=9", "--tag", "localhost:5000/me/app:my-changes",
                "--push", "--label", "a=b=c", "--lock-ttl", "10m",
            ])
            let configuration = try BuildConfiguration(
                flags: flags, environment: ["BUILD_ARGS_FILE": "args.yaml", "CONTEXT": "elsewhere"], directory: base)
            #expect(configuration.context.lastPathComponent == "app")
            #expect(configuration.buildArgs == ["VERSION": "9", "BASE": "debian"])
            #expect(configuration.labels == ["a": "b=c"])
            #expect(configuration.tag?.description == "localhost:5000/me/app:my-changes" && configuration.push)
            #expect(configuration.lockTTL == .seconds(600))
        }
    }

    @Test(arguments: [
        (["IMAGE_PLATFORM": "linux"], "IMAGE_PLATFORM / --platform"),
        (["PUSH": "true"], "needs --tag / TAG"),
        (["PUSH": "maybe"], "PUSH=maybe: expected true or false"),
        (["LOCK": "redis:x"], "expected file:<dir> or git:<uri>"),
        (["LOCK_TIMEOUT": "soon"], "LOCK_TIMEOUT / --lock-timeout=\"soon\" is not a duration"),
        (["DOCKERFILE": "nope/Dockerfile"], "does not exist"),
        (["CONTEXT": "missing"], "is not a directory"),
        (["TAG": "Bad/Name"], "TAG / --tag"),
        (["REGISTRY_USERNAME": "u"], "go together"),
        (["IMAGE_ARG_base": "no-such-dir"], "image arg base"),
    ])
    func badSettingsAreNamed(environment: [String: String], expected: String) throws {
        try withTemporaryDirectory { directory in
            let base = try workspace(directory)
            var env = environment
            if env["CONTEXT"] == nil { env["CONTEXT"] = "repo/images/app" }
            let error = #expect(throws: BuildConfiguration.ValidationError.self) {
                try BuildConfiguration(flags: try BuildFlags.parse([]), environment: env, directory: base)
            }
            #expect(error?.description.contains(expected) == true, "\(error?.description ?? "")")
        }
    }

    @Test func helpDocumentsFlagsAndVariables() {
        let help = BuildFlags.helpMessage()
        for word in [
            "--context", "CONTEXT", "--build-arg", "BUILD_ARG_", "IMAGE_PLATFORM", "SKIP_IF_PUBLISHED", "LOCK_TTL",
            "--push", "REGISTRY_CA_CERTS",
        ] {
            #expect(help.contains(word), "\(word)")
        }
    }
}

@Suite("build-task, as a person or a task runs it")
struct BuildTaskBinaryTests {
    @Test func helpAndBadSettings() throws {
        let binary = try builtProduct("build-task").path
        let help = try runProcess(binary, ["--help"])
        #expect(help.status == 0)
        #expect(
            help.stdoutString.contains("--skip-if-published") && help.stdoutString.contains("Env: SKIP_IF_PUBLISHED"))
        #expect(help.stdoutString.contains("USAGE: build-task"), "\(help.stdoutString)")
        let bad = try runProcess(binary, [], environment: ["PATH": "/usr/bin:/bin", "CONTEXT": "/nonexistent-context"])
        #expect(bad.status == 1)
        #expect(
            bad.stderrString
                == "build-task: the context /nonexistent-context is not a directory (CONTEXT / --context)\n")
        let flag = try runProcess(
            binary, ["--build-arg", "novalue"], environment: ["PATH": "/usr/bin:/bin"],
            currentDirectory: URL(fileURLWithPath: "/"))
        #expect(flag.status == 1)
    }
}
