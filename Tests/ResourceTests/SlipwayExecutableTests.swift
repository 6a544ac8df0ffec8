import Foundation
import TestSupport
import Testing

/// The one executable, `slipway`, run as Concourse runs it: by links named `check`, `in`,
/// `out` and `build-task` (the name picks the command), and by hand as `slipway <command>`,
/// which must answer exactly the same.
@Suite("slipway: one executable, four names")
struct SlipwayExecutableTests {
    /// A call that fails or answers the same whatever the environment: the command's own
    /// arguments and stdin, and what its answer must show.
    struct Call: Sendable, CustomTestStringConvertible {
        let command: String
        let arguments: [String]
        let stdin: String
        let status: Int32
        /// Text the answer (stdout on success, stderr otherwise) must hold.
        let says: String
        var testDescription: String { ([command] + arguments).joined(separator: " ") }
    }

    static let calls = [
        // No repository: the check's own one-line input error.
        Call(command: "check", arguments: [], stdin: #"{"source":{},"version":null}"#, status: 1, says: "check: "),
        Call(command: "in", arguments: [], stdin: "{}", status: 1, says: "in: usage: in <destination directory>"),
        Call(command: "in", arguments: ["get"], stdin: "not json", status: 1, says: "in: "),
        Call(command: "out", arguments: [], stdin: "{}", status: 1, says: "out: usage: out <build directory>"),
        Call(command: "out", arguments: ["put"], stdin: #"{"source":{},"params":{}}"#, status: 1, says: "out: "),
        Call(command: "build-task", arguments: ["--help"], stdin: "", status: 0, says: "USAGE: build-task"),
        Call(
            command: "build-task", arguments: ["plan", "--help"], stdin: "", status: 0, says: "USAGE: build-task plan"),
        Call(command: "build-task", arguments: ["--no-such-flag"], stdin: "", status: 64, says: "Usage: build-task"),
    ]

    /// A private HOME and TMPDIR (check's git cache), the work directory of `in` and `out`.
    func environment(_ directory: TemporaryDirectory) throws -> [String: String] {
        for name in ["home", "tmp", "get", "put"] {
            try FileManager.default.createDirectory(at: directory.appending(name), withIntermediateDirectories: true)
        }
        return [
            "PATH": "/usr/bin:/bin", "HOME": directory.appending("home").path,
            "TMPDIR": directory.appending("tmp").path, "LC_ALL": "C",
        ]
    }

    func run(_ executable: URL, _ arguments: [String], stdin: String = "", in directory: TemporaryDirectory) throws
        -> ProcessResult
    {
        try runProcess(
            "/usr/bin/timeout", ["-k", "2", "30", executable.path] + arguments, stdin: Data(stdin.utf8),
            environment: try environment(directory), currentDirectory: directory.url)
    }

    @Test("a link's name picks the command", arguments: calls)
    func linkNamePicksTheCommand(_ call: Call) throws {
        let link = try builtProduct(call.command)
        #expect(link.lastPathComponent == call.command)
        #expect(
            (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == "../slipway",
            "a link to the one binary")
        try withTemporaryDirectory(prefix: "slipway-names") { directory in
            let result = try run(link, call.arguments, stdin: call.stdin, in: directory)
            #expect(result.status == call.status, "\(result.stderrString)")
            if call.status == 0 {
                #expect(result.stdoutString.contains(call.says), "\(result.stdoutString)")
            } else {
                #expect(result.stderrString.contains(call.says), "\(result.stderrString)")
            }
            let output = result.stdoutString + result.stderrString
            #expect(
                !output.contains("slipway:") && !output.lowercased().contains("usage: slipway"),
                "the command names itself, not the binary")
            if call.status == 1 {  // a resource command's failure: one line on stderr, nothing on stdout
                #expect(result.stdout.isEmpty)
                #expect(
                    result.stderrString.hasPrefix(call.command + ": ")
                        && result.stderrString.filter(\.isNewline).count == 1,
                    "\(result.stderrString)")
            }
        }
    }

    @Test("`slipway <command>` answers as the link does", arguments: calls)
    func subcommandAnswersAsTheLink(_ call: Call) throws {
        let slipway = try builtProduct("slipway")
        try withTemporaryDirectory(prefix: "slipway-names") { directory in
            let linked = try run(try builtProduct(call.command), call.arguments, stdin: call.stdin, in: directory)
            let called = try run(slipway, [call.command] + call.arguments, stdin: call.stdin, in: directory)
            #expect(called.status == linked.status)
            #expect(called.stdoutString == linked.stdoutString)
            #expect(called.stderrString == linked.stderrString)
        }
    }

    @Test func anUnknownNameOrCommandIsOneLineAndStatus2() throws {
        try withTemporaryDirectory(prefix: "slipway-names") { directory in
            let foo = directory.appending("foo")
            try FileManager.default.createSymbolicLink(at: foo, withDestinationURL: try builtProduct("slipway"))
            let byName = try run(foo, ["x"], stdin: "{}", in: directory)
            #expect(byName.status == 2)
            #expect(byName.stdout.isEmpty)
            #expect(
                byName.stderrString.hasPrefix("slipway: called as foo,")
                    && byName.stderrString.filter(\.isNewline).count == 1,
                "\(byName.stderrString)")
            #expect(byName.stderrString.contains("check, in, out, build-task"))

            let byCommand = try run(try builtProduct("slipway"), ["foo"], stdin: "{}", in: directory)
            #expect(byCommand.status == 2)
            #expect(byCommand.stdout.isEmpty)
            #expect(
                byCommand.stderrString.hasPrefix("slipway: unknown command foo;")
                    && byCommand.stderrString.filter(\.isNewline).count == 1,
                "\(byCommand.stderrString)")

            // A name with a line break still makes one line.
            let broken = directory.appending("che\nck")
            try FileManager.default.createSymbolicLink(at: broken, withDestinationURL: try builtProduct("slipway"))
            let odd = try run(broken, [], in: directory)
            #expect(odd.status == 2)
            #expect(odd.stderrString.filter(\.isNewline).count == 1, "\(odd.stderrString)")
        }
    }

    @Test func helpNamesTheFourCommands() throws {
        let slipway = try builtProduct("slipway")
        try withTemporaryDirectory(prefix: "slipway-names") { directory in
            for flag in ["--help", "-h", "help"] {
                let help = try run(slipway, [flag], in: directory)
                #expect(help.status == 0)
                #expect(help.stderr.isEmpty)
                #expect(help.stdoutString.hasPrefix("usage: slipway <command>"))
                for name in slipwayCommandNames {
                    #expect(help.stdoutString.contains("\n  \(name) "), "\(flag) names \(name)")
                }
            }
            // Alone it did nothing asked of it: the same usage, on stderr, status 2.
            let alone = try run(slipway, [], in: directory)
            #expect(alone.status == 2)
            #expect(alone.stdout.isEmpty)
            #expect(alone.stderrString == (try run(slipway, ["--help"], in: directory)).stdoutString)
        }
    }

    /// Tests in several tasks (and processes) ask for the links at once: each gets a link.
    @Test func linksAreMadeSafelyByConcurrentCallers() async throws {
        try await withThrowingTaskGroup(of: URL.self) { group in
            for _ in 0..<8 { for name in slipwayCommandNames { group.addTask { try builtProduct(name) } } }
            for try await link in group {
                #expect(FileManager.default.isExecutableFile(atPath: link.path))
            }
        }
    }
}
