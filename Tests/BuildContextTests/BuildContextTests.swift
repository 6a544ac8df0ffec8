import BuildContext
import Foundation
import OCI
import TestSupport
import Testing

@Suite(".dockerignore with Docker's semantics")
struct DockerignoreTests {
    @Test(
        arguments: [
            // (rules, path, excluded)
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "temp", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("temp?", "tempa", true),
            ("temp?", "temp", false),
            ("**/*.go", "a/b/c.go", true),
            ("**/*.go", "c.go", true),
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "CHANGES.md", true),
            ("!README.md\n*.md", "README.md", true),
            ("docs", "docs/a/b.txt", true),
            ("/build/", "build/out.o", true),
            (".git", ".git/HEAD", true),
            ("# a comment\n\n  spaced  ", "spaced", true),
            ("[ab].txt", "a.txt", true),
            ("[!ab].txt", "a.txt", false),
            ("[!ab].txt", "c.txt", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "x.txt", false),
            ("a/**/z", "a/z", true),
            ("a/**/z", "a/b/c/z", true),
            ("./src/../lib", "lib/x", true),
        ] as [(String, String, Bool)])
    func matches(rules: String, path: String, excluded: Bool) throws {
        #expect(try Dockerignore(rules).excludes(path) == excluded, "\(rules) on \(path)")
    }
}

@Suite("Dockerfile stages and bases")
struct DockerfileStagesTests {
    @Test func argDefaultsBuildArgsAndStages() throws {
        let text = """
            # syntax=docker/dockerfile:1
            ARG REPOSITORY=registry.example/team
            ARG BASE_TAG=main
            ARG PLATFORM
            FROM --platform=${PLATFORM:-linux/amd64} ${REPOSITORY}/base:${BASE_TAG} AS builder
            RUN make \\
                # a comment inside a continuation
                install
            FROM scratch AS final
            COPY --from=builder /out /
            FROM builder AS test
            FROM $REPOSITORY/tools:1.0
            """
        let stages = try DockerfileStages(text)
        #expect(
            stages.stages.map(\.base) == [
                "registry.example/team/base:main", "scratch", "builder", "registry.example/team/tools:1.0",
            ])
        #expect(stages.stages[0].platform == "linux/amd64" && stages.stages[0].name == "builder")
        #expect(stages.externalBases == ["registry.example/team/base:main", "registry.example/team/tools:1.0"])
        let overridden = try DockerfileStages(
            text, buildArgs: ["BASE_TAG": "feature-x", "REPOSITORY": "localhost:5000/me"])
        #expect(overridden.externalBases == ["localhost:5000/me/base:feature-x", "localhost:5000/me/tools:1.0"])
    }

    @Test func automaticPlatformArgsAndRunSteps() throws {
        let text = """
            ARG REGISTRY=registry.example
            FROM --platform=$BUILDPLATFORM ${REGISTRY}/golang:1.22 AS build
            ARG TARGETARCH
            RUN GOARCH=$TARGETARCH go build -o /app
            FROM ${REGISTRY}/runtime:${TARGETARCH}
            COPY --from=build /app /app
            """
        let platforms = DockerfileStages.Platforms(
            build: try Platform("linux/amd64"), target: try Platform("linux/arm64/v8"))
        let stages = try DockerfileStages(text, platforms: platforms).stages
        #expect(stages[0].base == "registry.example/golang:1.22" && stages[0].platform == "linux/amd64")
        #expect(
            stages[0].platformFlag == "$BUILDPLATFORM" && stages[0].onBuildPlatform && stages[0].runs
                && stages[0].line == 2)
        #expect(
            stages[1].base == "registry.example/runtime:arm64" && stages[1].platform == nil && !stages[1].runs
                && !stages[1].onBuildPlatform)
        #expect(
            platforms.arguments["TARGETPLATFORM"] == "linux/arm64/v8" && platforms.arguments["TARGETVARIANT"] == "v8"
                && platforms.arguments["BUILDVARIANT"] == "")
        // Without platforms (track_base, the image graph) the bases are the same where they do not use the args.
        let plain = try DockerfileStages(text).stages
        #expect(plain[0].base == "registry.example/golang:1.22" && plain[0].onBuildPlatform)
        // Build args apply next to the automatic args.
        #expect(
            try DockerfileStages(text, buildArgs: ["REGISTRY": "r.example"], platforms: platforms).stages[1].base
                == "r.example/runtime:arm64")
    }

    @Test func argsOnlyFromLinesRead() throws {
        // Declared before the first FROM and never redeclared in a stage: only FROM sees it.
        let derived = """
            ARG REGISTRY
            ARG BASE_TAG=main
            ARG UNUSED=1
            FROM ${REGISTRY}/fornax/base_image:${BASE_TAG}
            RUN make
            """
        #expect(try DockerfileStages(derived).fromOnlyArgs == ["REGISTRY", "BASE_TAG", "UNUSED"])
        // `ARG NAME` (with or without a default) inside a stage makes it visible to RUN/COPY/ENV there.
        let redeclared = """
            ARG VERSION=1.0
            ARG BASE=busybox
            FROM ${BASE}:${VERSION}
            ARG VERSION
            RUN echo $VERSION
            FROM scratch
            ARG BASE=other
            """
        #expect(try DockerfileStages(redeclared).fromOnlyArgs == [])
        // Used in two stages' FROM lines, redeclared in neither.
        let twoStages = """
            ARG TAG=1
            FROM registry.example/a:${TAG} AS a
            FROM registry.example/b:${TAG}
            COPY --from=a /x /x
            """
        #expect(try DockerfileStages(twoStages).fromOnlyArgs == ["TAG"])
        // A global arg whose default another, stage-visible, global arg reads reaches that stage.
        let chained = """
            ARG MAJOR=1
            ARG VERSION=${MAJOR}.2
            FROM busybox:${VERSION}
            ARG VERSION
            """
        #expect(try DockerfileStages(chained).fromOnlyArgs == [])
        // --platform decides which manifest of an index a stage runs, which a digest does not say.
        let platformed = """
            ARG PLATFORM=linux/arm64
            ARG BUILDPLATFORM
            ARG TAG=1
            FROM --platform=$PLATFORM busybox:${TAG} AS one
            FROM --platform=$BUILDPLATFORM busybox:${TAG}
            """
        #expect(try DockerfileStages(platformed).fromOnlyArgs == ["TAG"])
        // The automatic platform args are not declared by the Dockerfile: they are no build args to leave out.
        let automatic = """
            FROM --platform=$BUILDPLATFORM busybox:1 AS build
            ARG TARGETARCH
            RUN echo $TARGETARCH
            FROM registry.example/runtime:${TARGETARCH}
            """
        let platforms = DockerfileStages.Platforms(
            build: try Platform("linux/amd64"), target: try Platform("linux/arm64"))
        #expect(try DockerfileStages(automatic, platforms: platforms).fromOnlyArgs == [])
        #expect(
            try DockerfileStages("ARG TARGETARCH\nFROM busybox:${TARGETARCH}\n", platforms: platforms).fromOnlyArgs == [
                "TARGETARCH"
            ])
    }

    @Test func errorsNameTheProblem() {
        let empty = #expect(throws: DockerfileStages.ParseError.self) {
            try DockerfileStages("ARG BASE\nFROM ${BASE}\n")
        }
        #expect(empty?.description.contains("line 2") == true)
        let none = #expect(throws: DockerfileStages.ParseError.self) { try DockerfileStages("RUN true\n") }
        #expect(none?.description.contains("no FROM") == true)
    }
}

@Suite("The inputs digest")
struct BuildInputsTests {
    func context(_ directory: TemporaryDirectory) throws -> BuildInputs {
        let root = directory.appending("ctx")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("src"), withIntermediateDirectories: true)
        try Data("FROM scratch\nCOPY src /src\n".utf8).write(to: root.appendingPathComponent("Dockerfile"))
        try Data("hello\n".utf8).write(to: root.appendingPathComponent("src/a.txt"))
        try Data("notes\n".utf8).write(to: root.appendingPathComponent("NOTES.md"))
        try Data("*.md\n".utf8).write(to: root.appendingPathComponent(".dockerignore"))
        try FileManager.default.createSymbolicLink(
            atPath: root.appendingPathComponent("src/link").path, withDestinationPath: "a.txt")
        return BuildInputs(
            contextDirectory: root, dockerfile: root.appendingPathComponent("Dockerfile"),
            buildArgs: ["B": "2", "A": "1"])
    }

    @Test func sameInputsSameDigestAndEveryInputCounts() throws {
        try withTemporaryDirectory { directory in
            var inputs = try context(directory)
            let root = inputs.contextDirectory
            let first = try inputs.digest()
            #expect(try inputs.digest() == first, "stable")
            #expect(try inputs.manifest().contains("\"src/a.txt\""))
            #expect(try !inputs.manifest().contains("NOTES.md"), ".dockerignore'd files are not inputs")

            try Data("changed\n".utf8).write(to: root.appendingPathComponent("NOTES.md"))
            #expect(try inputs.digest() == first, "an ignored file changed")
            _ = try runProcess("touch", ["-d", "2001-01-01", root.appendingPathComponent("src/a.txt").path]).checked()
            #expect(try inputs.digest() == first, "modification times are not inputs")
            inputs.buildArgs = ["A": "1", "B": "2"]
            #expect(try inputs.digest() == first, "build arg order is not an input")

            var changed: [Digest] = []
            try Data("hello!\n".utf8).write(to: root.appendingPathComponent("src/a.txt"))
            changed.append(try inputs.digest())
            try FileManager.default.setAttributes(
                [.posixPermissions: 0o755], ofItemAtPath: root.appendingPathComponent("src/a.txt").path)
            changed.append(try inputs.digest())
            try FileManager.default.removeItem(at: root.appendingPathComponent("src/link"))
            try FileManager.default.createSymbolicLink(
                atPath: root.appendingPathComponent("src/link").path, withDestinationPath: "b.txt")
            changed.append(try inputs.digest())
            inputs.buildArgs["A"] = "3"
            changed.append(try inputs.digest())
            inputs.target = "final"
            changed.append(try inputs.digest())
            inputs.platforms = ["linux/amd64", "linux/arm64"]
            changed.append(try inputs.digest())
            inputs.stageBases = [.image(try Digest("sha256:" + String(repeating: "a", count: 64)))]
            changed.append(try inputs.digest())
            try Data("FROM scratch\n".utf8).write(to: root.appendingPathComponent("Dockerfile"))
            changed.append(try inputs.digest())
            #expect(Set([first] + changed).count == changed.count + 1, "every change gives a new digest")
        }
    }

    static let baseOne = try! Digest("sha256:" + String(repeating: "1", count: 64))
    static let baseTwo = try! Digest("sha256:" + String(repeating: "2", count: 64))

    /// `ARG REGISTRY` / `ARG BASE_TAG=main` / `FROM ${REGISTRY}/fornax/base_image:${BASE_TAG}`
    /// built with the base's per-commit tag: a branch's commit, then the merge commit, whose
    /// tag names the same image.
    func derived(_ context: BuildInputs, baseTag: String, base: Digest, args: [String: String] = [:]) -> BuildInputs {
        var inputs = context
        inputs.buildArgs = ["REGISTRY": "registry.example", "BASE_TAG": baseTag, "VERSION": "1"].merging(args) { $1 }
        inputs.fromOnlyArgs = ["REGISTRY", "BASE_TAG"]
        inputs.stageBases = [.image(base)]
        return inputs
    }

    @Test func aBaseReachedByAnotherNameIsTheSameInput() throws {
        try withTemporaryDirectory { directory in
            let checkout = try context(directory)
            let branch = derived(checkout, baseTag: "0a1b2c3d4e5f", base: Self.baseOne)
            let merged = derived(checkout, baseTag: "9f8e7d6c5b4a", base: Self.baseOne)
            let (branchManifest, mergedManifest) = (try branch.manifest(), try merged.manifest())
            #expect(try branch.digest() == merged.digest(), "\(branchManifest)\n\(mergedManifest)")
            #expect(try !merged.manifest().contains("BASE_TAG"), "a FROM-only arg is summarised by its base")
            #expect(try merged.manifest().hasPrefix("slipway-inputs 2\n"), "old cache tags are misses")
            #expect(try merged.manifest().contains("from 0 \(Self.baseOne)\n"))

            #expect(
                try derived(checkout, baseTag: "9f8e7d6c5b4a", base: Self.baseOne, args: ["VERSION": "2"]).digest()
                    != branch.digest(),
                "an arg a stage sees counts")
            #expect(
                try derived(checkout, baseTag: "9f8e7d6c5b4a", base: Self.baseTwo).digest() != branch.digest(),
                "the base's digest counts")
            #expect(
                try derived(checkout, baseTag: "9f8e7d6c5b4a", base: Self.baseOne, args: ["UNDECLARED": "x"]).digest()
                    != branch.digest(),
                "an arg the Dockerfile does not declare is kept")

            // Which stage gets which base, and which earlier stage a FROM picks, count.
            var two = derived(checkout, baseTag: "x", base: Self.baseOne)
            two.stageBases = [.image(Self.baseOne), .image(Self.baseTwo)]
            var swapped = two
            swapped.stageBases = [.image(Self.baseTwo), .image(Self.baseOne)]
            #expect(try two.digest() != swapped.digest())
            var picks = two
            picks.stageBases = [.image(Self.baseOne), .scratch, .stage(0)]
            var other = picks
            other.stageBases = [.image(Self.baseOne), .scratch, .stage(1)]
            #expect(try picks.digest() != other.digest())

            // track_base: the dev.slipway.base label out keys the version on names the references.
            var tracked = merged
            tracked.baseSummary = Self.baseTwo
            #expect(try tracked.digest() != merged.digest())
        }
    }

    @Test func sameContentInTwoCheckoutsGivesTheSameDigest() throws {
        try withTemporaryDirectory { directory in
            let one = try context(directory)
            let copy = directory.appending("copy")
            _ = try runProcess("cp", ["-a", one.contextDirectory.path, copy.path]).checked()
            _ = try runProcess("touch", ["-d", "2020-02-02", copy.appendingPathComponent("src/a.txt").path]).checked()
            let two = BuildInputs(
                contextDirectory: copy, dockerfile: copy.appendingPathComponent("Dockerfile"), buildArgs: one.buildArgs)
            #expect(try one.digest() == two.digest())
        }
    }
}
