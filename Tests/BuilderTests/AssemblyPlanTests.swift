import Archive
import BuildContext
import Foundation
import OCI
import TestSupport
import Testing

@testable import Builder

/// Which Dockerfiles the assembler takes and what it refuses, decided from the text alone;
/// the tree it reads stages from; `BUILDER`'s values.
@Suite("the assembler's plan, tree and setting")
struct AssemblyPlanTests {
    func plan(_ text: String, target: String? = nil) throws -> AssemblyPlan {
        var stages = try DockerfileStages(text).stages
        if let target, let end = stages.firstIndex(where: { $0.name == target }) { stages = Array(stages[...end]) }
        return try AssemblyPlan(stages, directives: DockerfileStages.directives(text))
    }

    func refusal(_ text: String, target: String? = nil) -> String? {
        do {
            _ = try plan(text, target: target)
            return nil
        } catch let refusal as AssemblyRefusal {
            return refusal.description
        } catch {
            return "\(error)"
        }
    }

    @Test func aCopyOnlyMultiStageDockerfileIsPlannedWithTheStagesTheTargetNeeds() throws {
        let text = """
            FROM scratch AS unused
            RUN make
            FROM scratch AS files
            COPY a /a
            FROM files AS final
            COPY --from=files /a /b
            SHELL ["/bin/bash", "-c"]
            HEALTHCHECK CMD true
            CMD ["/b"]
            """
        let planned = try plan(text)
        #expect(planned.stages.map(\.index) == [1, 2], "the RUN stage is not needed, so it does not count")
        #expect(planned.stages[1].baseStage == 1)
        guard case .copy(let copy) = planned.stages[1].steps[0].step else {
            Issue.record("not a copy")
            return
        }
        #expect(copy.fromStage == 1 && copy.sources == ["/a"] && copy.destination == "/b")
        #expect(planned.stages[1].steps[1].step == .ignored && planned.stages[1].steps[3].step == .cmd(.exec(["/b"])))
        #expect(AssemblyPlan.Command.shell("echo hi").arguments == ["/bin/sh", "-c", "echo hi"])
    }

    @Test(arguments: [
        ("FROM scratch\nCOPY a /a\nRUN true\n", "Dockerfile line 3: RUN executes a program"),
        (
            "FROM scratch\nADD https://example.com/x /x\n",
            "Dockerfile line 2: ADD https://example.com/x fetches from the network; the assembler adds only local files"
        ),
        (
            "FROM scratch\nCOPY --from=alpine:3 /x /x\n",
            "Dockerfile line 2: COPY --from=alpine:3 names no earlier stage; copying from another image is not supported by the assembler (name it in a FROM … AS stage)"
        ),
        ("FROM scratch\nCOPY --link a /a\n", "Dockerfile line 2: COPY --link is not supported by the assembler"),
        ("FROM scratch\nCOPY --parents a/b /\n", "Dockerfile line 2: COPY --parents is not supported by the assembler"),
        (
            "FROM scratch\nCOPY --chmod=u+x a /a\n",
            "Dockerfile line 2: COPY --chmod=u+x is not an octal mode; the assembler supports only those"
        ),
        (
            "FROM scratch\nCOPY <<EOF /a\nhello\nEOF\n",
            "Dockerfile line 2: COPY with a heredoc is not supported by the assembler"
        ),
        ("FROM scratch\nONBUILD COPY a /a\n", "Dockerfile line 2: ONBUILD is not supported by the assembler"),
        (
            "FROM scratch\nEXPOSE 8000-8010\n",
            "Dockerfile line 2: EXPOSE of a port range is not supported by the assembler"
        ),
        (
            "# escape=`\nFROM scratch\nCOPY a /a\n",
            "the Dockerfile's # escape= directive is not supported by the assembler"
        ),
        ("FROM scratch\nMAINTAINER someone\n", "Dockerfile line 2: MAINTAINER is not supported by the assembler"),
    ])
    func whatTheAssemblerCannotDoExactlyIsRefusedNamingTheLine(_ text: String, _ expected: String) {
        #expect(refusal(text) == expected)
    }

    @Test func aRunAfterTheTargetDoesNotCount() {
        #expect(refusal("FROM scratch AS app\nCOPY a /a\nFROM app AS test\nRUN true\n", target: "app") == nil)
    }

    @Test func wordsAndPairsAreReadAsDockersLexerReadsThem() {
        let values = ["A": "1", "B": "two words"]
        #expect(
            DockerfileStages.words(#"x "$B" '$A' \$A ${A:-z}"#, values: values) == ["x", "two words", "$A", "$A", "1"])
        #expect(
            DockerfileStages.keyValues(#"C=$A-${B} D="a \"q\"""#, values: values)?.map { "\($0.key)=\($0.value)" } == [
                "C=1-two words", #"D=a "q""#,
            ])
        #expect(
            DockerfileStages.keyValues("OLD value with spaces", values: values)?.map { "\($0.key)=\($0.value)" } == [
                "OLD=value with spaces"
            ])
        #expect(DockerfileStages.keyValues("=x", values: values) == nil)
    }

    @Test func symlinksResolveInsideTheRootWhateverTheyPointAt() {
        let links = ["bin": "usr/bin", "up": "../../..", "abs": "/etc", "loop": "loop"]
        func resolve(_ path: String, last: Bool = true) -> String? {
            FileTree.resolve(path, followLast: last) { links[$0] }
        }
        #expect(resolve("/bin/sh") == "usr/bin/sh")
        #expect(resolve("up/etc/passwd") == "etc/passwd", "../ stops at the root")
        #expect(resolve("abs/passwd") == "etc/passwd", "an absolute target starts again at the root")
        #expect(resolve("../../x") == "x")
        #expect(resolve("bin", last: false) == "bin")
        #expect(resolve("loop") == nil)
    }

    @Test func aTreeAppliesWhiteoutsAndRefusesAnEntryThatLeavesTheRoot() throws {
        try withTemporaryDirectory { directory in
            func layer(_ name: String, _ entries: [(String, TarHeader.Kind, String)]) throws -> URL {
                let url = directory.appending(name)
                let writer = TarWriter(try FileSink(path: url.path))
                for (path, kind, body) in entries {
                    try writer.append(
                        TarHeader(
                            name: path, kind: kind, mode: 0o644, size: kind == .regular ? Int64(body.utf8.count) : 0,
                            linkName: kind == .symbolicLink ? body : ""),
                        body: kind == .regular ? DataSource(Data(body.utf8)) : nil)
                }
                try writer.finish()
                return url
            }
            var tree = FileTree()
            try tree.apply(
                layer: try layer(
                    "one",
                    [
                        ("etc", .directory, ""), ("./etc/passwd", .regular, "root:x:0:0::/:/bin/sh\n"),
                        ("etc/old", .regular, "old"), ("var/", .directory, ""), ("var/cache/x", .regular, "x"),
                    ]))
            try tree.apply(
                layer: try layer(
                    "two",
                    [("etc/.wh.old", .regular, ""), ("var/.wh..wh..opq", .regular, ""), ("var/new", .regular, "n")]))
            #expect(
                tree["etc/old"] == nil && tree["var/cache/x"] == nil && tree["var/new"] != nil
                    && tree["etc/passwd"]?.size == 22)
            #expect(
                try tree.text(of: "/etc/passwd", scratch: directory.appending("scratch")) == "root:x:0:0::/:/bin/sh\n")
            #expect(throws: FileTree.Failure.self) {
                try tree.apply(layer: try layer("bad", [("../../escape", .regular, "x")]))
            }

            // --chown reads the stage's own passwd and group.
            try tree.apply(
                layer: try layer(
                    "users",
                    [
                        ("etc/passwd", .regular, "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"),
                        ("etc/group", .regular, "root:x:0:\nstaff:x:50:\n"),
                    ]))
            func owner(_ text: String) -> String {
                do {
                    let (uid, gid) = try CopyInstruction.owner(
                        text, tree: &tree, scratch: directory.appending("owners"), line: 4)
                    return "\(uid):\(gid)"
                } catch { return "\(error)" }
            }
            #expect(
                owner("app") == "1000:1001" && owner("app:staff") == "1000:50" && owner("1000") == "1000:1001"
                    && owner("7") == "7:7" && owner("7:8") == "7:8")
            #expect(owner("ghost") == "Dockerfile line 4: --chown=ghost: no user ghost in the stage's /etc/passwd")
            #expect(
                owner("app:wheel") == "Dockerfile line 4: --chown=app:wheel: no group wheel in the stage's /etc/group")
            #expect(owner(":5") == "Dockerfile line 4: --chown=:5 names no user (user, user:group, uid or uid:gid)")
        }
    }

    @Test func builderIsAutoByDefaultAndABadValueIsRefused() throws {
        try withTemporaryDirectory { temporary in
            let flags = try BuildFlags.parse([])
            let directory = temporary.url
            try Data("FROM scratch\n".utf8).write(to: directory.appendingPathComponent("Dockerfile"))
            #expect(try BuildConfiguration(flags: flags, environment: [:], directory: directory).builder == .auto)
            #expect(
                try BuildConfiguration(flags: flags, environment: ["BUILDER": "buildah"], directory: directory).builder
                    == .buildah)
            #expect(
                try BuildConfiguration(
                    flags: try BuildFlags.parse(["--builder", "assemble"]), environment: ["BUILDER": "buildah"],
                    directory: directory
                ).builder == .assemble)
            #expect(throws: BuildConfiguration.ValidationError.self) {
                try BuildConfiguration(flags: flags, environment: ["BUILDER": "docker"], directory: directory)
            }
        }
    }
}
