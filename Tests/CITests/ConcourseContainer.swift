import Foundation
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A container made as Concourse's worker makes one, by `Tests/Fixtures/concourse/container.c`
/// (which says what it models and what it leaves out; docs/concourse-model.md sums it up).
struct ConcourseContainer {
    /// The host id container root is mapped to in a container that is not privileged; the
    /// files such a container's root owns belong to it on the host.
    static let rootID = "4294967294"

    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/concourse/container.c")

    /// The harness, compiled with libseccomp-dev by `cc`, else the Swift toolchain's clang.
    static func compile(into directory: URL) throws -> String {
        let binary = directory.appendingPathComponent("container").path
        _ = try runProcess(
            "/bin/sh",
            [
                "-c", #""$(command -v cc || command -v clang)" -O -o "$1" "$2" -lseccomp"#, "sh",
                binary, source.path,
            ]
        ).checked()
        return binary
    }

    /// Gives `directory` (and all in it) to container root of a container that is not
    /// privileged, as Concourse's volumes for such containers are ("namespaced"): files of
    /// host root become the mapped root's, the rest keep their ids.
    static func shiftOwnership(_ directory: URL) throws {
        try chown(directory, from: "0", to: rootID)
    }

    /// The reverse, for a privileged container: Concourse gives it a copy of a namespaced
    /// volume owned by host root again (git refuses a checkout its user does not own).
    static func unshiftOwnership(_ directory: URL) throws {
        try chown(directory, from: rootID, to: "0")
    }

    private static func chown(_ directory: URL, from: String, to: String) throws {
        _ = try runProcess("chown", ["-hR", "--from=\(from)", to, directory.path]).checked()
        _ = try runProcess("chown", ["-hR", "--from=:\(from)", ":" + to, directory.path]).checked()
    }

    /// The compiled harness.
    var harness: String
    /// The image's unpacked root filesystem (for a container that is not privileged, one
    /// whose files belong to ``rootID``).
    var rootfs: URL
    /// Where each run's overlay upper directory is made, and the step's volumes live: made
    /// traversable (0755) at each run, since the root of a container that is not privileged
    /// is not the host's root and must reach both.
    var scratch: URL
    /// A privileged container (`privileged: true`): real root, every capability, no seccomp.
    var privileged = false
    /// The environment, exactly: the image's `Env`, then what Concourse adds.
    var environment: [String] = []
    /// Host directory → where Concourse mounts it in the container.
    var mounts: [(host: URL, container: String)] = []
    /// The working directory in the container.
    var workingDirectory = "/"

    /// Runs `command` in a fresh container (a new overlay over the image) and returns what it
    /// did. The mounted directories are first given to the container's root, as Concourse
    /// gives a volume to each container that mounts it.
    func run(_ command: [String], stdin: Data? = nil) throws -> ProcessResult {
        for mount in mounts {
            try privileged ? Self.unshiftOwnership(mount.host) : Self.shiftOwnership(mount.host)
        }
        guard chmod(scratch.path, 0o755) == 0 else {
            throw TestSupportError("chmod 755 \(scratch.path): errno \(errno)")
        }
        let upper = scratch.appendingPathComponent("container-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: upper) }
        var arguments = privileged ? ["--privileged"] : []
        arguments += ["--upper", upper.path, "--cwd", workingDirectory]
        for mount in mounts { arguments += ["--bind", "\(mount.host.path):\(mount.container)"] }
        for variable in environment { arguments += ["--env", variable] }
        return try runProcess(harness, arguments + [rootfs.path] + command, stdin: stdin, environment: [:])
    }

    /// `base` with each of `additions` set, a later value replacing an earlier one of the same
    /// name (a process sees the first of two, so there must be one).
    static func environment(_ base: [String], _ additions: [String: String]) -> [String] {
        var result = base.filter { entry in !additions.keys.contains(String(entry.prefix { $0 != "=" })) }
        result += additions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return result
    }

    /// What Concourse adds to a get's and a put's environment (atc/exec/step_metadata.go).
    static let buildMetadata: [String: String] = [
        "BUILD_ID": "4242", "BUILD_NAME": "7", "BUILD_JOB_NAME": "build", "BUILD_PIPELINE_NAME": "app-main",
        "BUILD_TEAM_NAME": "main", "BUILD_TEAM_ID": "1", "BUILD_JOB_ID": "12", "BUILD_PIPELINE_ID": "3",
        "ATC_EXTERNAL_URL": "https://ci.example.com",
        "BUILD_URL": "https://ci.example.com/teams/main/pipelines/app-main/jobs/build/builds/7",
        "BUILD_URL_SHORT": "https://ci.example.com/builds/4242",
    ]
}

/// True when the ELF file at `url` is dynamically linked (it has a PT_DYNAMIC program
/// header): the loader can list its libraries. A static program (busybox) has none.
func isDynamicELF(_ url: URL) -> Bool {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
    defer { try? handle.close() }
    guard let header = try? handle.read(upToCount: 64), header.count == 64,
        header.prefix(4) == Data([0x7F, 0x45, 0x4C, 0x46]), header[4] == 2
    else { return false }  // ELF, 64-bit
    func integer(_ data: Data, _ offset: Int, _ size: Int) -> Int {
        (0..<size).reduce(0) { $0 | Int(data[data.startIndex + offset + $1]) << (8 * $1) }  // little-endian
    }
    let tableOffset = integer(header, 32, 8)
    let entrySize = integer(header, 54, 2)
    let count = integer(header, 56, 2)
    guard (try? handle.seek(toOffset: UInt64(tableOffset))) != nil,
        let table = try? handle.read(upToCount: entrySize * count), table.count == entrySize * count
    else { return false }
    return (0..<count).contains { integer(table, $0 * entrySize, 4) == 2 }  // PT_DYNAMIC
}

/// True when the file at `url` starts with the ELF magic.
func isELF(_ url: URL) -> Bool {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
    defer { try? handle.close() }
    return (try? handle.read(upToCount: 4)) == Data([0x7F, 0x45, 0x4C, 0x46])
}
