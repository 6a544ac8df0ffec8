import Builder
import Foundation
import OCI
import TestSupport
import Testing

/// Every variable oci-build-task reads is honoured or refused in one line, and a variable
/// that only looks like one of ours is warned about, once.
@Suite("build-task and oci-build-task's variables")
struct OCIBuildTaskVariablesTests {
    func configuration(_ environment: [String: String], in directory: TemporaryDirectory) throws -> BuildConfiguration {
        let context = directory.appending("context")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try Data("FROM scratch\n".utf8).write(to: context.appendingPathComponent("Dockerfile"))
        return try BuildConfiguration(
            flags: try BuildFlags.parse([]), environment: ["CONTEXT": context.path].merging(environment) { $1 },
            directory: directory.url)
    }

    func refusal(_ environment: [String: String], in directory: TemporaryDirectory) throws -> String {
        do {
            _ = try configuration(environment, in: directory)
        } catch {
            return "\(error)"
        }
        Issue.record("\(environment.keys.sorted()) was accepted")
        return ""
    }

    /// oci-build-task's Config (types.go, read by envconfig: field names in upper snake case)
    /// and cmd/build's prefixes.
    static let ociBuildTaskVariables = [
        "DEBUG", "CONTEXT", "DOCKERFILE", "BUILDKIT_SSH", "TARGET", "TARGET_FILE", "ADDITIONAL_TARGETS", "BUILD_ARGS",
        "BUILD_ARGS_FILE",
        "REGISTRY_MIRRORS", "LABELS", "LABELS_FILE", "BUILDKIT_SECRETS", "BUILDKIT_EXTRA_CONFIG", "UNPACK_ROOTFS",
        "OUTPUT_OCI",
        "IMAGE_ARGS", "BUILDKIT_ADD_HOSTS", "IMAGE_PLATFORM",
        "BUILD_ARG_x", "IMAGE_ARG_x", "LABEL_x", "BUILDKIT_SECRET_x", "BUILDKIT_SECRETTEXT_x",
    ]

    @Test func everyOCIBuildTaskVariableIsHonouredOrRefused() throws {
        try withTemporaryDirectory { directory in
            for variable in Self.ociBuildTaskVariables {
                let honoured =
                    BuildConfiguration.variables.contains(variable)
                    || BuildConfiguration.variablePrefixes.contains {
                        variable.hasPrefix($0) && variable.count > $0.count
                    }
                if !honoured {
                    let refused = try refusal([variable: "x"], in: directory)
                    #expect(refused.contains(variable) && !refused.contains("\n"), "\(variable): \(refused)")
                }
                #expect(
                    BuildConfiguration.lookalikeWarnings([variable: "x"]).isEmpty,
                    "\(variable) is ours (honoured or refused), not a look-alike")
            }
        }
    }

    @Test func outputsAndBuildKitSettingsAreRead() throws {
        try withTemporaryDirectory { directory in
            try Data("key".utf8).write(to: directory.appending("token"))
            try Data("ssh".utf8).write(to: directory.appending("id_test"))
            let read = try configuration(
                [
                    "UNPACK_ROOTFS": "true", "OUTPUT_OCI": "true", "ADDITIONAL_TARGETS": "test, lint",
                    "BUILDKIT_SECRET_token": "token",
                    "BUILDKIT_SECRETTEXT_npm": "s3cret-value", "BUILDKIT_SSH": "github=id_test",
                    "BUILDKIT_ADD_HOSTS": "test-host=1.2.3.4,v6=::1",
                    "REGISTRY_MIRRORS": "mirror.example:5000",
                    "BUILDKIT_EXTRA_CONFIG": """
                    # mirrors only
                    [registry]
                      [registry."docker.io"]
                        mirrors = ["second.example",
                                   "mirror.example:5000"]
                    """,
                    "BUILD_ARGS": "A=1,B=2", "BUILD_ARG_B": "3", "LABELS": "team=core", "DEBUG": "true",
                ], in: directory)
            #expect(read.unpackRootFS && read.outputOCI && read.debug)
            #expect(read.additionalTargets == ["test", "lint"])
            #expect(read.secrets.map(\.id) == ["npm", "token"])
            #expect(read.ssh == "github=\(directory.appending("id_test").path)")
            #expect(
                read.addHosts == [
                    HostEntry(host: "test-host", address: "1.2.3.4"), HostEntry(host: "v6", address: "::1"),
                ])
            #expect(
                read.registryMirrors == [try RegistryHost("mirror.example:5000"), try RegistryHost("second.example")])
            #expect(read.buildArgs == ["A": "1", "B": "3"], "BUILD_ARG_<name> wins over oci-build-task's comma list")
            #expect(read.labels == ["team": "core"])
            // A secret's text is never printed, however the configuration is.
            var dumped = ""
            dump(read, to: &dumped)
            for text in ["\(read)", String(reflecting: read), dumped] { #expect(!text.contains("s3cret-value")) }

            // Several platforms imply OUTPUT_OCI, as in oci-build-task.
            #expect(try configuration(["IMAGE_PLATFORM": "linux/amd64,linux/arm64"], in: directory).outputOCI)
        }
    }

    @Test func whatHasNoMeaningHereIsRefusedInOneLine() throws {
        try withTemporaryDirectory { directory in
            let cases: [([String: String], String)] = [
                (["BUILDKIT_PROGRESS": "plain"], "BUILDKIT_PROGRESS is not honoured"),
                (["BUILDKIT_SECRETS": "a=b"], "BUILDKIT_SECRETS is not honoured"),
                (["BUILDKIT_EXTRA_CONFIG": "[worker.oci]\nmax-parallelism = 4\n"], "[worker.oci] is not supported"),
                (
                    ["BUILDKIT_EXTRA_CONFIG": "[registry.\"docker.io\"]\nhttp = true\n"],
                    "[registry.\"docker.io\"] http is not supported"
                ),
                (["BUILDKIT_EXTRA_CONFIG": "[registry.\"docker.io\"]\ninsecure = true\n"], "REGISTRY_INSECURE=true"),
                (
                    ["BUILDKIT_EXTRA_CONFIG": "[registry.\"mirror.example\"]\nca = [\"/etc/ca.pem\"]\n"],
                    "REGISTRY_CA_CERTS"
                ),
                (
                    ["BUILDKIT_EXTRA_CONFIG": "[registry.\"ghcr.io\"]\nmirrors = [\"m.example\"]\n"],
                    "[registry.\"ghcr.io\"] is not supported"
                ),
                (["BUILDKIT_EXTRA_CONFIG": "debug = true\n"], "debug is not supported"),
                (["REGISTRY_MIRRORS": "https://mirror.example"], "host[:port] only"),
                (
                    ["UNPACK_ROOTFS": "true", "IMAGE_PLATFORM": "linux/amd64,linux/arm64"],
                    "rootfs/ holds one platform's files"
                ),
                (
                    ["ADDITIONAL_TARGETS": "test", "SKIP_IF_PUBLISHED": "registry.example/app"],
                    "ADDITIONAL_TARGETS with SKIP_IF_PUBLISHED"
                ),
                (["ADDITIONAL_TARGETS": "../x"], "is not a stage name"),
                (["BUILDKIT_ADD_HOSTS": "test-host:1.2.3.4"], "is not hostname=ip-address"),
                (["BUILDKIT_SECRET_token": "missing-file"], "no readable file there"),
                (["BUILDKIT_SECRETTEXT_": "x"], "has no secret id"),
                (["BUILDKIT_SSH": "default"], "SSH_AUTH_SOCK, which is not set"),
                (["BUILDKIT_SSH": "default=/nonexistent/agent.sock"], "does not exist"),
                (["OUTPUT_OCI": "maybe"], "expected true or false"),
                (["BUILD_ARGS": "A=1,TOKEN"], "item 2 is not NAME=VALUE"),
            ]
            for (environment, expected) in cases {
                let refused = try refusal(environment, in: directory)
                #expect(refused.contains(expected) && !refused.contains("\n"), "\(environment): \(refused)")
            }
            // The secret's text is not in its refusal.
            let both = try refusal(
                ["BUILDKIT_SECRETTEXT_a": "hidden-text", "BUILDKIT_SECRET_a": "missing"], in: directory)
            #expect(!both.contains("hidden-text"), "\(both)")
        }
    }

    @Test(arguments: [
        ("LABEL", "LABEL_<name>"), ("BUILDARG_X", "BUILD_ARG_<name>"), ("build_arg_x", "BUILD_ARG_<name>"),
        ("IMAGEARG_base", "IMAGE_ARG_<name>"),
        ("DOCKER_FILE", "DOCKERFILE"), ("CONTEXTS", "CONTEXT"), ("SKIP_IF_PUBLISH", "SKIP_IF_PUBLISHED"),
        ("target", "TARGET"),
        ("UNPACK_ROOT_FS", "UNPACK_ROOTFS"), ("TAGS", "TAG"), ("BUILDARGS", "BUILD_ARGS"),
    ])
    func aLookAlikeGetsOneWarning(variable: String, meant: String) {
        let warnings = BuildConfiguration.lookalikeWarnings([variable: "secret-value", "PATH": "/bin"])
        #expect(warnings.count == 1, "\(warnings)")
        #expect(
            warnings.first?.contains("\(variable) is not a build-task variable and is ignored; did you mean \(meant)?")
                == true, "\(warnings)")
        #expect(!warnings.joined().contains("secret-value"))
    }

    @Test func buildAllAndPlanRefuseAdditionalTargets() throws {
        try withTemporaryDirectory { directory in
            let image = directory.appending("images/app")
            try FileManager.default.createDirectory(at: image, withIntermediateDirectories: true)
            try Data("FROM scratch AS test\nFROM scratch\n".utf8).write(to: image.appendingPathComponent("Dockerfile"))
            for subcommand in ["plan", "build-all"] {
                let result = try runProcess(
                    try builtProduct("build-task").path, [subcommand, "--root", "images"],
                    environment: ["PATH": "/usr/bin:/bin", "REPOSITORY": "r.example/f", "ADDITIONAL_TARGETS": "test"],
                    currentDirectory: directory.url)
                #expect(
                    result.status == 1
                        && result.stderrString.hasPrefix("build-task: ADDITIONAL_TARGETS is for one image's build"),
                    "\(result.stderrString)")
            }
        }
    }

    @Test func everyVariableAndPrefixIsInTheReference() throws {
        let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("docs/reference.md")
        let text = try String(contentsOf: reference, encoding: .utf8)
        for name in BuildConfiguration.variables.sorted() + BuildConfiguration.variablePrefixes.map({ $0 + "<" }) {
            #expect(text.contains("`\(name)"), "docs/reference.md does not document \(name)")
        }
    }

    @Test func ordinaryVariablesAreNotWarnedAbout() {
        let ordinary = [
            "PATH", "HOME", "USER", "LANG", "TERM", "HOSTNAME", "PWD", "SHLVL", "TMPDIR", "SSH_AUTH_SOCK", "LC_ALL",
            "BUILD_ID", "BUILD_NAME", "BUILD_JOB_NAME", "BUILD_PIPELINE_NAME", "BUILD_TEAM_NAME", "BUILD_CREATED_BY",
            "ATC_EXTERNAL_URL",
            "BUILD_PIPELINE_INSTANCE_VARS", "BUILD_URL", "CONTAINERS_REGISTRIES_CONF", "BUILD_ARG_VERSION",
            "LABEL_team",
            "IMAGE_ARG_base", "BUILDKIT_SECRET_npm", "DOCKER_CONFIG", "GOPATH", "NODE_ENV", "JAVA_HOME",
        ]
        let warnings = BuildConfiguration.lookalikeWarnings(
            Dictionary(uniqueKeysWithValues: ordinary.map { ($0, "x") }))
        #expect(warnings.isEmpty, "\(warnings)")
    }
}
