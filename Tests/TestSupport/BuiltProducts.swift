import Foundation

/// The path of an executable this package built (`check`, `in`, `out`, `build-task`), for
/// black-box tests that run it as Concourse does. It sits beside the test bundle.
public func builtProduct(_ name: String) throws -> URL {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw TestSupportError("the built product \(name) is not beside the tests; run `swift build` first")
}
