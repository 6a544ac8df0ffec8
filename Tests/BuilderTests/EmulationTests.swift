import BuildContext
import Builder
import Foundation
import OCI
import TestSupport
import Testing

/// Whether a build's RUN steps need qemu on this worker, decided from the Dockerfile alone.
@Suite("emulation: which RUN steps need qemu")
struct EmulationTests {
    let amd64 = Platform(os: "linux", architecture: "amd64")
    let arm64 = Platform(os: "linux", architecture: "arm64")

    /// The Dockerfile as build-task parses it for each target.
    func problem(_ text: String, targets: [Platform], host: Platform? = nil, emulators: Set<String> = []) throws
        -> String?
    {
        let host = host ?? amd64
        let builds = try targets.map { target in
            Emulation.TargetBuild(
                target: target, stages: try DockerfileStages(text, platforms: .init(build: host, target: target)).stages
            )
        }
        return Emulation.problem(builds: builds, host: host, emulators: emulators)
    }

    /// The cross-build the end-to-end tests build (CrossBuildTests).
    static let crossBuild = ImageBuildTests.crossBuildDockerfile

    @Test func aCrossBuildRunsEverythingOnTheBuildPlatform() throws {
        #expect(try problem(Self.crossBuild, targets: [amd64, arm64]) == nil)
        #expect(
            try problem(
                Self.crossBuild.replacingOccurrences(of: "$BUILDPLATFORM", with: "${BUILDPLATFORM}"), targets: [arm64])
                == nil)
        // A stage built FROM a build-platform stage runs the build platform's programs too.
        #expect(
            try problem(Self.crossBuild + "\nFROM build AS more\nRUN [\"/bin/busybox\", \"true\"]\n", targets: [arm64])
                == nil)
    }

    @Test func aRunForAForeignArchitectureWithoutAHandlerIsOneLineNamingTheStageAndBothFixes() throws {
        let text = Self.crossBuild.replacingOccurrences(of: "--platform=$BUILDPLATFORM ", with: "")
        let line = try #require(try problem(text, targets: [amd64, arm64]))
        #expect(!line.contains("\n"))
        #expect(
            line.hasPrefix(
                "stage \"build\" (line 1, FROM scratch) has RUN steps for linux/arm64, but this worker is linux/amd64"),
            "\(line)")
        for part in ["qemu-aarch64", "binfmt_misc", "qemu-user-static", "FROM --platform=$BUILDPLATFORM", "tags:"] {
            #expect(line.contains(part), "\(part): \(line)")
        }
        // The handler registered: nothing to say. The host's own platform: nothing either.
        #expect(try problem(text, targets: [amd64, arm64], emulators: ["arm64"]) == nil)
        #expect(try problem(text, targets: [amd64]) == nil)
        // An arm64 worker building for amd64 needs qemu-x86_64; an unnamed stage is named by its number.
        let reverse = try #require(try problem("FROM scratch\nRUN true\n", targets: [amd64], host: arm64))
        #expect(
            reverse.hasPrefix("stage 1 (line 1, FROM scratch) has RUN steps for linux/amd64")
                && reverse.contains("qemu-x86_64"), "\(reverse)")
    }

    @Test func stagesWithoutRunAndNativePlatformsNeedNothing() throws {
        #expect(
            try problem("FROM scratch\nARG TARGETARCH\nCOPY file-${TARGETARCH} /arch\n", targets: [amd64, arm64]) == nil
        )
        #expect(
            try problem("FROM scratch\nRUN true\n", targets: [Platform(os: "linux", architecture: "386")]) == nil,
            "x86-64 runs i386")
        #expect(
            try problem("FROM scratch\nRUN true\n", targets: [Platform(os: "linux", architecture: "x86_64")]) == nil,
            "aliases fold")
        // An explicit foreign --platform counts even when the target is the host; $TARGETPLATFORM is the target.
        let explicit = try #require(
            try problem("FROM --platform=linux/arm64 scratch AS tools\nRUN true\nFROM scratch\n", targets: [amd64]))
        #expect(
            explicit.hasPrefix("stage \"tools\" (line 1, FROM scratch) has RUN steps for linux/arm64"), "\(explicit)")
        #expect(
            try problem("FROM --platform=$TARGETPLATFORM scratch\nRUN true\n", targets: [arm64], emulators: ["arm64"])
                == nil)
    }

    @Test func theProbeReadsEnabledHandlersAndNothingWhenBinfmtMiscIsNotMounted() throws {
        try withTemporaryDirectory { directory in
            let root = directory.url
            #expect(BinfmtProbe(directory: root).emulators().isEmpty, "not mounted: no status file")
            for (name, text) in [
                ("status", "enabled\n"), ("register", ""),
                ("qemu-aarch64", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n"),
                ("qemu-arm", "disabled\ninterpreter /usr/bin/qemu-arm-static\n"), ("qemu-s390x", "enabled\n"),
                ("python3.11", "enabled\n"),
            ] {
                try Data(text.utf8).write(to: root.appendingPathComponent(name))
            }
            #expect(BinfmtProbe(directory: root).emulators() == ["arm64", "s390x"])
            try Data("disabled\n".utf8).write(to: root.appendingPathComponent("status"))
            #expect(BinfmtProbe(directory: root).emulators().isEmpty, "binfmt_misc switched off")
        }
    }
}
