import Builder
import Foundation
import OCI
import Registry
import TestSupport
import Testing

/// The image graph of `build-task plan`, pure: edges from FROM lines, the build order,
/// dependents, cycles.
@Suite("image graphs: order, dependents, cycles")
struct ImageGraphTests {
    static let repository = "registry.example/fornax"

    /// An image of `images/<name>` built FROM `bases` (already substituted).
    func image(_ name: String, _ bases: String...) -> GraphImage {
        GraphImage(name: name, path: "images/\(name)", repository: "\(Self.repository)/\(name)", bases: bases)
    }

    @Test func theOrderPutsEveryImageAfterItsBasesAndTiesByName() throws {
        let graph = try ImageGraph([
            image("web", "registry.example/fornax/base:main"),
            image(
                "top", "registry.example/fornax/app:main",
                "registry.example/fornax/lib@sha256:" + String(repeating: "a", count: 64)),
            image("tool", "docker.io/library/busybox:1"),
            image("lib", "registry.example/fornax/base"),
            image("app", "registry.example/fornax/base:main"),
            image("base"),
        ])
        #expect(graph.order == ["base", "app", "lib", "tool", "top", "web"])
        #expect(graph.dependencies["top"] == ["app", "lib"], "any tag or digest of an image's repository is an edge")
        #expect(graph.dependencies["tool"] == [], "an image from elsewhere is no edge")
        #expect(graph.dependents(of: ["base"]) == ["app", "lib", "top", "web"])
        #expect(graph.dependents(of: ["lib"]) == ["top"])
        #expect(graph.dependents(of: ["tool", "top"]).isEmpty)
    }

    @Test func templatedFromLinesAreReadWithTheBuildArgs() throws {
        let dockerfile = """
            ARG REPOSITORY
            ARG BASE_TAG=main
            FROM ${REPOSITORY}/base:${BASE_TAG} AS build
            COPY f /f
            FROM build
            """
        let args = ["REPOSITORY": Self.repository, "BASE_TAG": "feature-x"]
        let app = try GraphImage(
            name: "app", path: "images/app", repository: "\(Self.repository)/app", dockerfile: dockerfile,
            buildArgs: args)
        #expect(
            app.bases == ["registry.example/fornax/base:feature-x"],
            "the later stage is built on an earlier one, not an image")
        let graph = try ImageGraph([app, image("base")])
        #expect(graph.dependencies["app"] == ["base"] && graph.order == ["base", "app"])
        #expect(graph.references["app"]?["base"] == ["registry.example/fornax/base:feature-x"])

        // Left to Concourse (--emit-pipeline): ((vars)) are cut textually.
        let emitted = try GraphImage(
            name: "app", path: "images/app", repository: "((registry))/fornax/app", dockerfile: dockerfile,
            buildArgs: ["REPOSITORY": "((registry))/fornax", "BASE_TAG": "((branch))"])
        let base = GraphImage(name: "base", path: "images/base", repository: "((registry))/fornax/base", bases: [])
        #expect(try ImageGraph([emitted, base]).dependencies["app"] == ["base"])

        // Docker Hub's short names are the same repository as the long ones.
        let hub = GraphImage(
            name: "app", path: "images/app", repository: "docker.io/fornax/app",
            bases: ["fornax/base:1", "index.docker.io/fornax/base"])
        #expect(
            try ImageGraph([
                hub, GraphImage(name: "base", path: "images/base", repository: "docker.io/fornax/base", bases: []),
            ]).dependencies["app"] == ["base"])

        let broken = #expect(throws: ImageGraph.Failure.self) {
            try GraphImage(
                name: "x", path: "images/x", repository: "r.example/x", dockerfile: "# nothing\n", buildArgs: [:])
        }
        #expect(broken?.description == "images/x/Dockerfile: the Dockerfile has no FROM instruction")
    }

    @Test func aCycleIsRejectedByName() {
        let pair = #expect(throws: ImageGraph.Failure.self) {
            try ImageGraph([
                image("b", "registry.example/fornax/a:1"), image("a", "registry.example/fornax/b:1"), image("c"),
            ])
        }
        #expect(pair?.description == "the images depend on each other in a cycle: images/a → images/b → images/a")
        // Entered from outside, named from its smallest member.
        let loop = #expect(throws: ImageGraph.Failure.self) {
            try ImageGraph([
                image("a", "registry.example/fornax/d"), image("d", "registry.example/fornax/c"),
                image("c", "registry.example/fornax/b"), image("b", "registry.example/fornax/d"),
            ])
        }
        #expect(
            loop?.description == "the images depend on each other in a cycle: images/b → images/d → images/c → images/b"
        )
        let itself = #expect(throws: ImageGraph.Failure.self) {
            try ImageGraph([image("a", "registry.example/fornax/a:old")])
        }
        #expect(itself?.description == "the images depend on each other in a cycle: images/a → images/a")
    }

    @Test func aPlanBuildsEveryDependentOfAChangedImageWithoutAskingAboutIt() throws {
        let graph = try ImageGraph([
            image("base"), image("app", "registry.example/fornax/base:main"),
            image("top", "registry.example/fornax/app:main"),
            image("tool"),
        ])
        let inputs = Digest.sha256(Data("inputs".utf8))
        let published = Digest.sha256(Data("image".utf8))
        var asked: [String] = []
        let plan = graph.plan { image in
            asked.append(image.name)
            return image.name == "base" ? .build(.notPublished(inputs)) : .reuse(published, .published(inputs))
        }
        #expect(asked == ["base", "tool"], "dependents of a changed image build whatever their own inputs")
        #expect(
            plan.map(\.line) == [
                "build base (not published: no inputs-\(inputs.encoded))",
                "build app (because base changes)",
                "reuse tool \(published) (published as inputs-\(inputs.encoded))",
                "build top (because app changes)",
            ])
        let files = PlannedImage(
            image: image("x"),
            decision: .build(.changedFiles(["images/x/a", "images/x/b", "images/x/c", "images/x/d"])))
        #expect(files.line == "build x (changed files: images/x/a, images/x/b, images/x/c and 1 more)")
    }

    @Test func twoImagesOfOneRepositoryAreRefused() {
        let error = #expect(throws: ImageGraph.Failure.self) {
            try ImageGraph([
                GraphImage(name: "a", path: "images/a", repository: "r.example/x", bases: []),
                GraphImage(name: "b", path: "images/b", repository: "r.example/x", bases: []),
            ])
        }
        #expect(error?.description.contains("images/a and images/b are both the image r.example/x") == true)
    }
}

/// `build-task plan` and `build-all` with real buildah and a real registry: a base, two
/// images FROM it by a templated name and one independent image.
extension ImageBuildTests {
    /// `images/` of a git checkout: base (FROM scratch, busybox and a marker), app and web
    /// (FROM `${REPOSITORY}/base:${BASE_TAG}`), tool (FROM scratch).
    func imageRoot(_ repository: TestGitRepository) throws {
        let derived = "ARG REPOSITORY\nARG BASE_TAG=latest\nFROM ${REPOSITORY}/base:${BASE_TAG}\nCOPY f /f\n"
        _ = try repository.commit(
            "images",
            files: [
                "images/base/Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n",
                "images/base/marker": "one\n",
                "images/app/Dockerfile": derived, "images/app/f": "app\n",
                "images/web/Dockerfile": derived, "images/web/f": "web\n",
                "images/tool/Dockerfile": "FROM scratch\nCOPY f /tool\n", "images/tool/f": "tool\n",
                "images/.hidden/Dockerfile": "FROM nothing.invalid/at-all\n",
            ])
        try FileManager.default.copyItem(
            atPath: "/bin/busybox", toPath: repository.path.appendingPathComponent("images/base/busybox").path)
        _ = try repository.git("add", "images/base/busybox")
        _ = try repository.git("commit", "--amend", "--no-edit", "--quiet")
    }

    func lines(_ result: ProcessResult) -> [String] {
        result.stdoutString.split(separator: "\n").map(String.init)
    }

    /// Each image's build.json `reused`.
    func reused(_ output: URL) throws -> [String: Bool] {
        var result: [String: Bool] = [:]
        for name in ["base", "app", "web", "tool"] {
            result[name] = try json(output.appendingPathComponent("\(name)/build.json"))["reused"] as? Bool
        }
        return result
    }

    @Test func anImageGraphIsBuiltInOrderReusedAndRebuiltWhereItChanged() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    try imageRoot(repository)
                    let recording = try recordingBuildah(directory.url)
                    let all = URL(fileURLWithPath: recording.calls.path + ".all")
                    // As a Concourse task would set it: IMAGE_TAG is the tag the dependents' BASE_TAG names.
                    let env = [
                        "ROOT": repository.path.appendingPathComponent("images").path,
                        "REPOSITORY": "\(registry.host)/fornax",
                        "IMAGE_TAG": "dev", "BUILD_ARG_BASE_TAG": "dev", "PUSH": "true", "REGISTRY_INSECURE": "true",
                        "CACHE": directory.appending("cache").path, "OUTPUT": directory.appending("out").path,
                        "PATH": recording.path,
                        "BUILDER": "buildah",
                    ]  // buildah's calls are counted below
                    let client = try registry.client()
                    func tagged(_ name: String) throws -> String? {
                        try client.manifestDescriptor(try Repository("fornax/\(name)"), .tag(try OCI.Tag("dev")))?
                            .digest.rawValue
                    }

                    // First: nothing is published, everything builds, in order.
                    let first = try buildTask(directory.url, env, arguments: ["plan"])
                    #expect(first.succeeded, "\(first.stderrString)")
                    #expect(
                        lines(first).map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                            "build base", "build app", "build tool", "build web",
                        ],
                        "\(first.stdoutString)")
                    #expect(lines(first)[0].hasPrefix("build base (not published: no inputs-"))
                    #expect(
                        lines(first)[1] == "build app (because base changes)"
                            && lines(first)[3] == "build web (because base changes)")
                    let built = try buildTask(directory.url, env, arguments: ["build-all"])
                    #expect(built.succeeded, "\(built.stderrString)")
                    #expect(
                        lines(built).map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                            "built base", "built app", "built tool", "built web",
                        ])
                    #expect(
                        try reused(directory.appending("out")) == [
                            "base": false, "app": false, "web": false, "tool": false,
                        ])
                    let base = try #require(try tagged("base"))
                    #expect(
                        try String(contentsOf: directory.appending("out/base/digest"), encoding: .utf8) == base,
                        "pushed as <repository>/base:dev")
                    for name in ["app", "web"] {
                        let bases =
                            try json(directory.appending("out/\(name)/build.json"))["bases"] as? [[String: String]]
                        #expect(
                            bases?.first?["digest"] == base
                                && bases?.first?["reference"] == "\(registry.host)/fornax/base:dev",
                            "\(name): \(bases ?? [])")
                        #expect(
                            try tagged(name)
                                == (try String(contentsOf: directory.appending("out/\(name)/digest"), encoding: .utf8)))
                    }

                    // Again, unchanged: all reused, buildah never called.
                    try? FileManager.default.removeItem(at: all)
                    let unchanged = try buildTask(directory.url, env, arguments: ["plan"])
                    #expect(
                        unchanged.succeeded && lines(unchanged).count == 4
                            && lines(unchanged).allSatisfy {
                                $0.hasPrefix("reuse ") && $0.contains("(published as inputs-")
                            },
                        "\(unchanged.stdoutString)\(unchanged.stderrString)")
                    #expect(lines(unchanged)[0].hasPrefix("reuse base \(base) "))
                    let again = try buildTask(directory.url, env, arguments: ["build-all"])
                    #expect(again.succeeded, "\(again.stderrString)")
                    #expect(
                        lines(again).allSatisfy { $0.hasPrefix("reused ") } && lines(again).count == 4,
                        "\(again.stdoutString)")
                    #expect(
                        try reused(directory.appending("out")) == [
                            "base": true, "app": true, "web": true, "tool": true,
                        ])
                    #expect(
                        !FileManager.default.fileExists(atPath: all.path),
                        "buildah was called: \((try? String(contentsOf: all, encoding: .utf8)) ?? "")")

                    // The base changes: it and exactly its two dependents build.
                    let before = try repository.head()
                    _ = try repository.commit("base marker", files: ["images/base/marker": "two\n"])
                    let changed = try buildTask(directory.url, env, arguments: ["plan"])
                    #expect(changed.succeeded, "\(changed.stderrString)")
                    let tool = try #require(try tagged("tool"))
                    #expect(
                        lines(changed).count == 4
                            && lines(changed)[0].hasPrefix("build base (not published: no inputs-"),
                        "\(changed.stdoutString)")
                    #expect(
                        Array(lines(changed)[1...]) == [
                            "build app (because base changes)",
                            "reuse tool \(tool) (published as inputs-"
                                + ((try json(directory.appending("out/tool/build.json"))["inputs"] as? String) ?? "")
                                .dropFirst(7) + ")",
                            "build web (because base changes)",
                        ])
                    // By git instead of the registry: the same images.
                    let since = try buildTask(directory.url, env, arguments: ["plan", "--since", before])
                    #expect(since.succeeded, "\(since.stderrString)")
                    #expect(
                        lines(since) == [
                            "build base (changed files: images/base/marker)", "build app (because base changes)",
                            "reuse tool \(tool) (no changed files since \(before))", "build web (because base changes)",
                        ])

                    // A dependent whose FROM tag is not the one pushed would not see the new base: refused before any build.
                    let mismatch = try buildTask(
                        directory.url, env.merging(["IMAGE_TAG": "other"]) { $1 }, arguments: ["build-all"])
                    #expect(mismatch.status == 1 && !FileManager.default.fileExists(atPath: all.path))
                    #expect(
                        mismatch.stderrString.hasSuffix(
                            "build-task: images/app is built FROM \(registry.host)/fornax/base:dev, but this run pushes base as :other; set --image-tag dev (IMAGE_TAG), or the FROM line's tag to other\n"
                        ),
                        "\(mismatch.stderrString)")
                    let unpushed = try buildTask(
                        directory.url, env.merging(["PUSH": "false"]) { $1 }, arguments: ["build-all"])
                    #expect(
                        unpushed.status == 1
                            && unpushed.stderrString.contains(
                                "images/app is built FROM \(registry.host)/fornax/base:dev, which only --push (PUSH=true) points at this run's base"
                            ),
                        "\(unpushed.stderrString)")
                    #expect(!FileManager.default.fileExists(atPath: all.path))

                    let rebuilt = try buildTask(directory.url, env, arguments: ["build-all"])
                    #expect(rebuilt.succeeded, "\(rebuilt.stderrString)")
                    #expect(
                        try reused(directory.appending("out")) == [
                            "base": false, "app": false, "web": false, "tool": true,
                        ])
                    let builds = try String(contentsOf: recording.calls, encoding: .utf8).split(separator: "\n").filter
                    { $0.hasPrefix("start ") }
                    #expect(builds.count == 4 + 3, "four builds, then none, then three: \(builds)")
                    let newBase = try #require(try tagged("base"))
                    #expect(newBase != base)
                    for name in ["app", "web"] {
                        let bases =
                            try json(directory.appending("out/\(name)/build.json"))["bases"] as? [[String: String]]
                        #expect(bases?.first?["digest"] == newBase, "\(name) is built on the new base")
                    }
                    #expect(try tagged("tool") == tool)
                }
            }
        }
    }

    @Test func anImageGraphCycleAndBadSettingsAreOneLine() throws {
        try withTemporaryDirectory { directory in
            let images = directory.appending("images")
            for (name, from) in [("a", "${REPOSITORY}/b:1"), ("b", "${REPOSITORY}/a"), ("c", "scratch")] {
                try FileManager.default.createDirectory(
                    at: images.appendingPathComponent(name), withIntermediateDirectories: true)
                try Data("ARG REPOSITORY\nFROM \(from)\n".utf8).write(
                    to: images.appendingPathComponent("\(name)/Dockerfile"))
            }
            let cycle = try buildTask(
                directory.url, ["REPOSITORY": "registry.example/fornax"], arguments: ["plan", "--root", "images"])
            #expect(cycle.status == 1 && cycle.stdoutString.isEmpty)
            #expect(
                cycle.stderrString
                    == "build-task: the images depend on each other in a cycle: images/a → images/b → images/a\n")
            let cycleAll = try buildTask(
                directory.url, ["REPOSITORY": "registry.example/fornax", "ROOT": "images"], arguments: ["build-all"])
            #expect(cycleAll.status == 1 && cycleAll.stderrString.contains("images/a → images/b → images/a"))

            let noRepository = try buildTask(directory.url, [:], arguments: ["plan", "--root", "images"])
            #expect(
                noRepository.status == 1 && noRepository.stderrString.contains("REPOSITORY / --repository is required"),
                "\(noRepository.stderrString)")
            let tag = try buildTask(
                directory.url, ["REPOSITORY": "r.example/f"],
                arguments: ["build-all", "--root", "images", "--tag", "r.example/f/a:1"])
            #expect(tag.status == 1 && tag.stderrString.contains("--tag is set per image"), "\(tag.stderrString)")
            let empty = try buildTask(
                directory.url, ["REPOSITORY": "r.example/f"], arguments: ["plan", "--root", "images/c"])
            #expect(empty.status == 1 && empty.stderrString.contains("no image under"), "\(empty.stderrString)")
        }
    }
}

@Suite("build-task's subcommands keep the one-image command line")
struct ImageGraphCommandLineTests {
    @Test func theDefaultIsOneImageAndTheSubcommandsParse() throws {
        guard
            case .build(let flags) = BuildTaskCommandLine.parseRequest([
                "--context", "app", "--build-arg", "A=1", "--push",
            ])
        else {
            Issue.record("build-task [flags] is not a build")
            return
        }
        #expect(flags.context == "app" && flags.buildArgs == ["A=1"] && flags.push)
        guard case .build(let explicit) = BuildTaskCommandLine.parseRequest(["build", "--context", "app"]) else {
            Issue.record("build-task build is not a build")
            return
        }
        #expect(explicit.context == "app")
        guard
            case .plan(let planFlags, let graph, let emit) = BuildTaskCommandLine.parseRequest(
                [
                    "plan", "--root", "images", "--repository", "r.example/f", "--build-arg", "BASE_TAG=dev", "--since",
                    "HEAD~1", "--emit-pipeline", "p.yml",
                ])
        else {
            Issue.record("plan is not a plan")
            return
        }
        #expect(
            graph.root == "images" && graph.repository == "r.example/f" && graph.since == "HEAD~1" && emit == "p.yml")
        #expect(planFlags.buildArgs == ["BASE_TAG=dev"], "build flags after the subcommand")
        guard
            case .buildAll(let allFlags, let allGraph) = BuildTaskCommandLine.parseRequest(
                ["--build-arg", "X=1", "build-all", "--image-tag", "dev", "--push", "--output", "out"])
        else {
            Issue.record("build-all is not build-all")
            return
        }
        #expect(
            allGraph.imageTag == "dev" && allFlags.push && allFlags.output == "out" && allFlags.buildArgs == ["X=1"],
            "build flags before the subcommand")
    }

    @Test func helpNamesTheSubcommandsAndTheirFlags() throws {
        let binary = try builtProduct("build-task").path
        let help = try runProcess(binary, ["--help"])
        #expect(help.status == 0)
        for word in ["plan", "build-all", "build (default)", "--skip-if-published", "Env: SKIP_IF_PUBLISHED"] {
            #expect(help.stdoutString.contains(word), "\(word)")
        }
        let plan = try runProcess(binary, ["plan", "--help"])
        let planText = plan.stdoutString.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for word in [
            "USAGE: build-task plan", "--root", "Env: ROOT", "--repository", "Env: REPOSITORY", "--since",
            "--emit-pipeline", "--build-arg",
        ] {
            #expect(planText.contains(word), "\(word): \(plan.stdoutString)")
        }
        let all = try runProcess(binary, ["help", "build-all"])
        #expect(
            all.status == 0 && all.stdoutString.contains("--image-tag") && all.stdoutString.contains("Env: IMAGE_TAG"),
            "\(all.stdoutString)")
    }
}
