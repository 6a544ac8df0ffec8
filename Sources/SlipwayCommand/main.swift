// `slipway`: wiring only. One executable, four names: Concourse runs /opt/resource/check,
// /opt/resource/in and /opt/resource/out, and a task runs build-task, each a link to this
// binary, so an image carries one copy of the Swift runtime and Foundation instead of four.
// The name it is called by (argv[0]'s last component) picks the command; called as `slipway`,
// the first argument does (`slipway in DIR`). What each command does is ResourceMain's and
// BuildTaskCommandLine's; here is only the choice.
import CArguments
import Console
import Foundation
import Resource

/// The commands, by the names they are linked and called as.
enum Command: String, CaseIterable {
    case check, `in`, out
    case buildTask = "build-task"
}

let usage = """
    usage: slipway <command> [arguments], or a link named after the command
      check              Concourse check: {"source","version"} on stdin, the versions on stdout
      in <directory>     Concourse get into <directory>
      out <directory>    Concourse put of the build's <directory>
      build-task         builds an image with buildah (build-task --help)
    Concourse runs /opt/resource/check, in and out: links to slipway, as build-task is.

    """

func run(_ command: Command, _ arguments: ArraySlice<String>) -> Never {
    switch command {
    case .check:
        ResourceMain.run("check") { input in
            try Check(log: .standardError()).run(input: input)
        }
    case .in:
        ResourceMain.run("in") { input in
            guard let directory = arguments.first else { throw InputError("usage: in <destination directory>") }
            return try In(log: .standardError()).run(input: input, directory: URL(fileURLWithPath: directory))
        }
    case .out:
        ResourceMain.run("out") { input in
            guard let directory = arguments.first else { throw InputError("usage: out <build directory>") }
            return try Out(log: .standardError()).run(input: input, directory: URL(fileURLWithPath: directory))
        }
    case .buildTask:
        buildTask(Array(arguments))
    }
}

/// A usage error: one line on stderr, exit status 2.
func refuse(_ message: String) -> Never {
    FileHandle.standardError.write(Data("slipway: \(message)\n".utf8))
    exit(2)
}

/// A name as it may appear in that one line: a link's name can hold a line break.
func printable(_ name: String) -> String {
    String(name.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
}

/// The arguments as the C library passed them: CommandLine.arguments finds them on Linux
/// through /proc/self/maps, and is empty without /proc (a bare chroot), where `check` used
/// to work, needing no arguments.
let arguments =
    slipway_argc() > 0
    ? (0..<Int(slipway_argc())).compactMap { slipway_argv()[$0].map { String(cString: $0) } }
    : CommandLine.arguments
let calledAs = arguments.first.flatMap { $0.split(separator: "/").last.map(String.init) } ?? "slipway"
let names = Command.allCases.map(\.rawValue).joined(separator: ", ")

if let command = Command(rawValue: calledAs) {
    run(command, arguments.dropFirst())
}
guard calledAs == "slipway" else {
    refuse(
        "called as \(printable(calledAs)), which is none of its names (\(names)); link it by one of them or run `slipway <command>`"
    )
}
switch arguments.dropFirst().first {
case nil:
    FileHandle.standardError.write(Data(usage.utf8))
    exit(2)
case "-h", "--help", "help":
    FileHandle.standardOutput.write(Data(usage.utf8))
    exit(0)
case let word?:
    guard let command = Command(rawValue: word) else {
        refuse("unknown command \(printable(word)); the commands are \(names) (slipway --help)")
    }
    run(command, arguments.dropFirst(2))
}
