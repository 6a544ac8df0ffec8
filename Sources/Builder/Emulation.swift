import BuildContext
import Foundation
import OCI

/// Whether a build's `RUN` steps can run on this worker (finding 7 of the multi-arch review).
///
/// A `RUN` executes the stage's own programs. For a stage built for another architecture the
/// kernel can only do that through a qemu handler registered in binfmt_misc; many Concourse
/// workers (and this project's machines) have none, and buildah then fails deep inside with
/// an `exec format error`. ``problem(builds:host:emulators:)`` decides before buildah runs,
/// from the parsed Dockerfile alone; ``BinfmtProbe`` is the thin seam that reads the kernel.
public enum Emulation {
    /// The Dockerfile as parsed for one target platform (automatic args set for it).
    public struct TargetBuild: Sendable {
        public var target: Platform
        public var stages: [DockerfileStages.Stage]
        public init(target: Platform, stages: [DockerfileStages.Stage]) {
            self.target = target
            self.stages = stages
        }
    }

    /// The one line build-task fails with when a stage that runs `RUN` is built for an
    /// architecture the host cannot run, else nil.
    ///
    /// A stage's programs are of its `--platform` when it has one (`$BUILDPLATFORM`: the
    /// host's), else of the stage it is built `FROM` (an earlier stage), else of the target.
    /// Stages without `RUN` need nothing: `COPY` and `ADD` only move files.
    ///
    /// - Parameters:
    ///   - builds: per target platform, the stages buildah builds for it (up to `TARGET`).
    ///   - host: the platform build-task runs on (buildah's `BUILDPLATFORM`).
    ///   - emulators: architectures (OCI spelling) with an enabled binfmt_misc handler.
    public static func problem(builds: [TargetBuild], host: Platform, emulators: Set<String>) -> String? {
        for build in builds {
            var effective: [Platform] = []
            for (index, stage) in build.stages.enumerated() {
                let platform: Platform
                if stage.onBuildPlatform {
                    platform = host
                } else if let text = stage.platform, !text.isEmpty, let explicit = try? Platform(text) {
                    platform = explicit
                } else if let earlier = build.stages[..<index].lastIndex(where: {
                    $0.name != nil && $0.name == stage.base.lowercased()
                }) {
                    platform = effective[earlier]
                } else {
                    platform = build.target
                }
                effective.append(platform)
                let architecture = platform.normalized.architecture
                guard stage.runs, !runsNatively(architecture, on: host), !emulators.contains(architecture) else {
                    continue
                }
                let name = stage.name.map { "stage \"\($0)\"" } ?? "stage \(index + 1)"
                let handler = "qemu-" + qemuName(architecture)
                return "\(name) (line \(stage.line), FROM \(stage.base)) has RUN steps for \(platform), "
                    + "but this worker is \(host) and cannot run \(architecture) programs "
                    + "(no \(handler) handler registered in /proc/sys/fs/binfmt_misc); either register qemu-user-static with binfmt_misc on the worker, "
                    + "or cross-build: run that stage on the build platform with FROM --platform=$BUILDPLATFORM and use ARG TARGETARCH in its RUN, "
                    + "or build each platform on a worker of that architecture (Concourse tags:) and assemble the index"
            }
        }
        return nil
    }

    /// Architectures a kernel runs without emulation: its own, and 32-bit x86 on x86-64.
    static func runsNatively(_ architecture: String, on host: Platform) -> Bool {
        let own = host.normalized.architecture
        return architecture == own || (own == "amd64" && architecture == "386")
    }

    /// OCI architecture → the name qemu and binfmt_misc use (`qemu-aarch64`).
    static let qemuNames: [String: String] = [
        "amd64": "x86_64", "arm64": "aarch64", "386": "i386", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
        "riscv64": "riscv64", "mips64le": "mips64el", "mips64": "mips64", "loong64": "loongarch64",
    ]

    static func qemuName(_ architecture: String) -> String { qemuNames[architecture] ?? architecture }

    /// The OCI architecture of a binfmt_misc entry's name (`qemu-aarch64` → `arm64`), or nil.
    static func architecture(ofHandler name: String) -> String? {
        let bare = name.hasPrefix("qemu-") ? String(name.dropFirst(5)) : name
        if let found = qemuNames.first(where: { $0.value == bare }) { return found.key }
        return nil
    }
}

/// What the kernel can run: the host's architecture and the binfmt_misc handlers.
public struct BinfmtProbe: Sendable {
    public var directory: URL

    public init(directory: URL = URL(fileURLWithPath: "/proc/sys/fs/binfmt_misc")) {
        self.directory = directory
    }

    /// Architectures (OCI spelling) with an enabled handler; empty when binfmt_misc is not
    /// mounted (no `status` file) or is disabled.
    public func emulators() -> Set<String> {
        func firstLine(_ name: String) -> String? {
            (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))?
                .split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        guard firstLine("status") == "enabled" else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return Set(
            names.filter { $0 != "status" && $0 != "register" && firstLine($0) == "enabled" }.compactMap(
                Emulation.architecture(ofHandler:)))
    }
}
