import Foundation

/// The names the one built executable, `slipway`, is called by: Concourse runs
/// `/opt/resource/check`, `in` and `out`; a task runs `build-task`.
public let slipwayCommandNames = ["check", "in", "out", "build-task"]

/// The path of an executable this package built, for black-box tests that run it as
/// Concourse does. `check`, `in`, `out` and `build-task` are links of those names to the
/// built `slipway` (in `slipway-links/` beside it), as in the resource image, so every test
/// runs the binary by a link, exactly as Concourse does. `slipway` is the binary itself.
public func builtProduct(_ name: String) throws -> URL {
    if slipwayCommandNames.contains(name) { return try slipwayLink(name) }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw TestSupportError("the built product \(name) is not beside the tests; run `swift build` first")
}

/// `slipway-links/<name>` → `../slipway`, made once. Tests call this concurrently, from one
/// process or several: the link is made under a temporary name and renamed into place
/// (atomic, and a rename over an equal link is harmless), the directory's EEXIST accepted.
private func slipwayLink(_ name: String) throws -> URL {
    let links = try builtProduct("slipway").deletingLastPathComponent().appendingPathComponent("slipway-links")
    let link = links.appendingPathComponent(name)
    let target = "../slipway"  // relative, so the build directory may move
    if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) == target { return link }
    if mkdir(links.path, 0o755) != 0 && errno != EEXIST {
        throw TestSupportError("cannot make \(links.path): \(String(cString: strerror(errno)))")
    }
    let temporary = links.appendingPathComponent(".\(name).\(UUID().uuidString)")
    try FileManager.default.createSymbolicLink(atPath: temporary.path, withDestinationPath: target)
    if rename(temporary.path, link.path) != 0 {
        let reason = String(cString: strerror(errno))
        unlink(temporary.path)
        throw TestSupportError("cannot link \(link.path) to \(target): \(reason)")
    }
    return link
}
