import Foundation
import TestSupport
import Testing

/// `ci/demo` end to end with the binaries this package built: a real registry, git and
/// buildah, and nothing left behind afterwards.
@Suite("ci/demo", .serialized)
struct DemoTests {
    static let script = CIPaths.ci.appendingPathComponent("demo").path

    /// The banner of every step, in order.
    static let banners = [
        "==> [1/11] install what is missing",
        "==> [2/11] use the built binaries in SLIPWAY_BIN",
        "==> [3/11] start a throwaway registry on loopback",
        "==> [4/11] make a sample git repository (app/Dockerfile)",
        "==> [5/11] check: the newest commit that touches app/",
        "==> [6/11] in (image: skip): the commit's source, as a get before the build",
        "==> [7/11] build-task: build app-source/source/app with buildah into image/",
        "==> [8/11] out: push image/oci, tagged by the source's templates",
        "==> [9/11] in (format: rootfs): the pushed image of the put's version",
        "==> [10/11] out (promote): tag ",
        "==> [11/11] check again, from the put's version: Concourse sees the same version",
    ]

    /// Runs the demo with the built binaries and its temporary files under `temporary`.
    func demo(binaries: URL, temporary: URL) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["SLIPWAY_BIN"] = binaries.path
        environment["TMPDIR"] = temporary.path
        return try runProcess(Self.script, [], environment: environment)
    }

    /// The demo's working directory, from the line it prints.
    func workDirectory(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("demo: working in ") }.map {
            String($0.dropFirst("demo: working in ".count))
        }
    }

    /// Processes whose command line mentions `text` (the registry's is its config file's path).
    func processes(mentioning text: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
            return command.contains(text) ? "\(pid): \(command)" : nil
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func runsTheWholeFlowAndCleansUp() throws {
        // The directory of the built slipway: the demo links check, in, out and build-task to it.
        let binaries = try builtProduct("slipway").deletingLastPathComponent()
        try withTemporaryDirectory(prefix: "slipway-demo-test") { temporary in
            let result = try demo(binaries: binaries, temporary: temporary.url)
            let output = result.stdoutString + result.stderrString
            #expect(result.succeeded, "ci/demo failed:\n\(output.suffix(6000))")

            var rest = Substring(result.stdoutString)
            for banner in Self.banners {
                guard let found = rest.range(of: banner) else {
                    Issue.record("no banner \"\(banner)\" (in order) in:\n\(result.stdoutString.suffix(6000))")
                    break
                }
                rest = rest[found.upperBound...]
            }
            // Versions and answers are pretty-printed JSON: a version names its 40-hex commit.
            #expect(result.stdoutString.contains(/"ref": "[0-9a-f]{40}"/))
            #expect(
                result.stdoutString.contains("rootfs/greeting: hello from a slipway image"),
                "in's rootfs holds what RUN wrote")
            // The promoted tag is in the registry's tag list.
            #expect(result.stdoutString.contains(/"tags": \[[^\]]*"prod"/), "prod among the registry's tags")
            #expect(result.stdoutString.contains("demo: every step passed"))
            #expect(
                result.stdoutString.contains("/bin/{check,in,out,build-task} -> \(binaries.path)/slipway"),
                "the demo made the links")

            let work = try #require(workDirectory(result.stdoutString), "the demo names its directory")
            #expect(work.hasPrefix(temporary.path + "/"))
            #expect(!FileManager.default.fileExists(atPath: work), "\(work) removed")
            #expect(processes(mentioning: work).isEmpty, "no registry left: \(processes(mentioning: work))")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aFailingStepIsNamedAndStillCleansUp() throws {
        let built = try builtProduct("check").deletingLastPathComponent()
        try withTemporaryDirectory(prefix: "slipway-demo-test") { temporary in
            // The real check, in and build-task, and an out that fails as a broken registry would.
            let binaries = temporary.appending("bin")
            try FileManager.default.createDirectory(at: binaries, withIntermediateDirectories: true)
            for name in ["check", "in", "build-task"] {
                try FileManager.default.createSymbolicLink(
                    at: binaries.appendingPathComponent(name), withDestinationURL: built.appendingPathComponent(name))
            }
            let out = binaries.appendingPathComponent("out")
            try Data("#!/bin/sh\necho 'out: the registry refused the push' >&2\nexit 1\n".utf8).write(to: out)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: out.path)

            let result = try demo(binaries: binaries, temporary: temporary.url)
            #expect(!result.succeeded)
            #expect(
                result.stdoutString.contains("    | out: the registry refused the push"),
                "out's stderr shown as its log")
            #expect(result.stderrString.contains("demo: out exited with status 1"), "\(result.stderrString)")
            #expect(
                result.stderrString.contains("demo: FAILED at step 8/11: out: push image/oci"), "\(result.stderrString)"
            )
            #expect(!result.stdoutString.contains("==> [9/11]"), "no step after the failing one")

            let work = try #require(workDirectory(result.stdoutString))
            #expect(!FileManager.default.fileExists(atPath: work), "\(work) removed")
            #expect(processes(mentioning: work).isEmpty, "no registry left: \(processes(mentioning: work))")
        }
    }
}
