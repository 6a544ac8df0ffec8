import Foundation
import GitSource
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Bounds on what an untrusted repository or remote can make `check`, `in` and
/// `build-task` do, through the built binaries: documents nested deeply enough to overflow
/// the YAML parser's stack are refused in one line, remote-helper transports are refused,
/// and a remote that accepts a connection and never answers is given up on.
@Suite("Git and document bounds, through the built binaries")
struct GitBoundsTests {
    /// `{a: {a: … x}}`, `depth` levels: about 4 bytes a level. 5,000 levels crashed `check`
    /// and `build-task` with SIGSEGV before the depth limit.
    static func nestedFlowMappings(_ depth: Int) -> String {
        String(repeating: "{a: ", count: depth) + "x" + String(repeating: "}", count: depth)
    }

    @Test func aDeeplyNestedTagFileFailsCheckInOneLineAndAnEarlierVersionStillGets() async throws {
        try await withTestGitRepository { repository in
            try await withTemporaryDirectory { directory in
                let remote = try repository.bareClone()
                let environment = try FaultHarness.environment(directory)
                let first = try repository.commit(
                    "app", files: ["app/Dockerfile": "FROM scratch\n", "app/tag.yaml": "tags:\n  base: '1.0'\n"])
                try repository.push()
                let source =
                    #"{"repository":"registry.invalid/team/app","tag_file":{"path":"app/tag.yaml","key":"tags.base"},"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"}}"#
                let check = try builtProduct("check").path

                let before = try FaultHarness.runTimed(
                    check, [], input: #"{"source":\#(source)}"#, environment: environment,
                    scratch: directory.appending("before"), limit: 120)
                try #require(before.status == 0, "check before the deep commit: \(before.stderrString)")

                _ = try repository.commit(
                    "deep tag file", files: ["app/tag.yaml": "tags: " + Self.nestedFlowMappings(5000) + "\n"])
                try repository.push()
                let after = try FaultHarness.runTimed(
                    check, [], input: #"{"source":\#(source),"version":{"ref":"\#(first)","tag_file":"1.0"}}"#,
                    environment: environment, scratch: directory.appending("after"), limit: 120)
                #expect(after.status == 1, "check ends with status 1, not a crash: \(after.status)")
                let lines = after.stderrString.split(separator: "\n")
                #expect(lines.count == 1, "one line: \(after.stderrString.prefix(600))")
                #expect(
                    after.stderrString.contains("app/tag.yaml")
                        && after.stderrString.contains("\(DocumentNesting.maximumDepth) levels"),
                    "names the file and the limit: \(after.stderrString.prefix(600))")

                // The version check gave before the deep commit still gets.
                let get = try FaultHarness.runTimed(
                    try builtProduct("in").path, [directory.appending("get").path],
                    input:
                        #"{"source":\#(source),"version":{"ref":"\#(first)","tag_file":"1.0"},"params":{"image":"skip"}}"#,
                    environment: environment, scratch: directory.appending("in"), limit: 120)
                #expect(get.status == 0, "in of the earlier version: \(get.stderrString.suffix(600))")
                #expect(
                    (try? String(contentsOf: directory.appending("get/tag_file"), encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines) == "1.0")
            }
        }
    }

    @Test(arguments: ["build-args.yaml", "labels.yml"])
    func aDeeplyNestedBuildArgsOrLabelsFileFailsBuildTaskInOneLine(_ name: String) async throws {
        try await withTemporaryDirectory { directory in
            let context = directory.appending("context")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try Data("FROM scratch\n".utf8).write(to: context.appendingPathComponent("Dockerfile"))
            let file = directory.appending(name)
            try Data(("A: " + Self.nestedFlowMappings(5000) + "\n").utf8).write(to: file)
            var environment = try FaultHarness.environment(directory)
            environment["CONTEXT"] = context.path
            environment[name.hasPrefix("labels") ? "LABELS_FILE" : "BUILD_ARGS_FILE"] = file.path
            let run = try FaultHarness.runTimed(
                try builtProduct("build-task").path, [], input: "", environment: environment,
                scratch: directory.appending("run"), limit: 120)
            #expect(run.status == 1, "build-task ends with status 1, not a crash: \(run.status)")
            let lines = run.stderrString.split(separator: "\n")
            #expect(lines.count == 1, "one line: \(run.stderrString.prefix(600))")
            #expect(
                run.stderrString.contains(file.path)
                    && run.stderrString.contains("\(DocumentNesting.maximumDepth) levels"),
                "names the file and the limit: \(run.stderrString.prefix(600))")
        }
    }

    @Test func fdAndExtRemotesAreRefusedByCheckInOneLine() async throws {
        try await withTemporaryDirectory { directory in
            let environment = try FaultHarness.environment(directory)
            for uri in ["fd::3", "ext::sh -c touch% \(directory.appending("pwned").path)"] {
                let input =
                    #"{"source":{"repository":"registry.invalid/team/app","git":{"uri":"\#(uri)","branch":"main"}}}"#
                let run = try FaultHarness.runTimed(
                    try builtProduct("check").path, [], input: input, environment: environment,
                    scratch: directory.appending("run-\(uri.prefix(3))"), limit: 30)
                #expect(run.status == 1, "\(uri): \(run.status) \(run.stderrString.prefix(400))")
                #expect(
                    run.stderrString.split(separator: "\n").count == 1 && run.stderrString.contains("git.uri"),
                    "\(uri): \(run.stderrString.prefix(400))")
            }
            #expect(!FileManager.default.fileExists(atPath: directory.appending("pwned").path))
        }
    }

    /// A TCP listener that accepts connections and never answers, on the ssh (with and
    /// without a key) and git:// transports: check gives up within the bound
    /// (`SLIPWAY_GIT_STALL_TIMEOUT`, 3 s here) and says so in one line.
    @Test(arguments: ["ssh with a key", "ssh", "git"])
    func aRemoteThatNeverAnswersEndsCheckWithinTheBound(_ transport: String) async throws {
        try await withTemporaryDirectory { directory in
            let listener = try StallingListener()
            defer { listener.close() }
            var environment = try FaultHarness.environment(directory)
            environment["SLIPWAY_GIT_STALL_TIMEOUT"] = "3"
            var git: [String: Any] = ["branch": "main"]
            switch transport {
            case "git": git["uri"] = "git://127.0.0.1:\(listener.port)/team/app.git"
            default: git["uri"] = "ssh://git@127.0.0.1:\(listener.port)/team/app.git"
            }
            if transport == "ssh with a key" {
                git["private_key"] = try InterruptionCleanupTests.privateKey(in: directory)
            }
            let input = String(
                decoding: try JSONSerialization.data(withJSONObject: [
                    "source": ["repository": "registry.invalid/team/app", "git": git]
                ]), as: UTF8.self)
            let run = try FaultHarness.runTimed(
                try builtProduct("check").path, [], input: input, environment: environment,
                scratch: directory.appending("run"), limit: 40)
            #expect(
                run.status == 1,
                "\(transport): status \(run.status) after \(run.elapsed) s: \(run.stderrString.prefix(400))")
            #expect(run.elapsed < 20, "\(transport): ended within the bound: \(run.elapsed) s")
            #expect(
                run.stderrString.split(separator: "\n").count == 1,
                "\(transport): one line: \(run.stderrString.prefix(600))")
        }
    }

    /// build-task's `LOCK=git:` lock repository is a git remote too: one that accepts and
    /// never answers ends the build within the stall bound, not after `LOCK_TIMEOUT` or never.
    @Test func aLockRepositoryThatNeverAnswersEndsBuildTaskWithinTheBound() async throws {
        try await withTemporaryDirectory { directory in
            let listener = try StallingListener()
            defer { listener.close() }
            let context = directory.appending("context")
            try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
            try Data("FROM scratch\nCOPY a.txt /a.txt\n".utf8).write(to: context.appendingPathComponent("Dockerfile"))
            try Data("a\n".utf8).write(to: context.appendingPathComponent("a.txt"))
            var environment = try FaultHarness.environment(directory)
            environment.merge([
                "SLIPWAY_GIT_STALL_TIMEOUT": "3", "CONTEXT": context.path, "BUILDER": "assemble",
                "OUTPUT": directory.appending("image").path, "CACHE": directory.appending("cache").path,
                "LOCK": "git:git://127.0.0.1:\(listener.port)/locks.git", "LOCK_TIMEOUT": "5m",
            ]) { $1 }
            let run = try FaultHarness.runTimed(
                try builtProduct("build-task").path, [], input: "", environment: environment,
                scratch: directory.appending("run"), limit: 60)
            #expect(run.status == 1, "status \(run.status) after \(run.elapsed) s: \(run.stderrString.suffix(400))")
            #expect(run.elapsed < 30, "ended within the bound: \(run.elapsed) s")
            let last = run.stderrString.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.contains("lock") && last.contains("3 s"), "\(run.stderrString.suffix(600))")
        }
    }
}
