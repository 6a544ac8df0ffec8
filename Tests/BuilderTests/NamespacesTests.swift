import BuildContext
import Builder
import Foundation
import OCI
import TestSupport
import Testing

/// Whether buildah can create its namespaces here (a non-privileged Concourse task cannot),
/// decided from who we are, what the kernel allowed a child, and the Dockerfile.
@Suite("namespaces: what a build needs that a non-privileged task lacks")
struct NamespacesTests {
    /// Concourse's capabilities for a task that is not privileged (worker/runtime/spec/capabilities.go): no CAP_SYS_ADMIN.
    static let concourseUnprivileged: UInt64 = 0xa804_25fb
    static let everything: UInt64 = 0x1ff_ffff_ffff
    static let refused = Namespaces.Attempt.refused(call: "unshare(CLONE_NEWUSER)", errno: EPERM)
    static let fix =
        "Concourse runs tasks without privileges by default; set privileged: true on the task that runs build-task"

    @Test func buildahNeedsAUserNamespaceUnlessItIsRootWithSysAdmin() {
        #expect(Namespaces.need(effectiveUID: 0, effectiveCapabilities: Self.everything) == .mountForRun)
        #expect(
            Namespaces.need(effectiveUID: 0, effectiveCapabilities: Self.concourseUnprivileged) == .userForEverything)
        #expect(Namespaces.need(effectiveUID: 1000, effectiveCapabilities: Self.everything) == .userForEverything)
        #expect(
            Namespaces.need(effectiveUID: 0, effectiveCapabilities: nil) == .mountForRun, "no /proc: root's usual set")
        let status =
            "Name:\tbuild-task\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n"
        #expect(Namespaces.effectiveCapabilities(status: status) == Self.concourseUnprivileged)
        #expect(Namespaces.effectiveCapabilities(status: "Name:\tx\n") == nil)
    }

    @Test func aRefusedNamespaceIsOneLineNamingTheCauseAndTheFix() {
        #expect(
            Namespaces.problem(need: .userForEverything, attempt: Self.refused, runs: true)
                == "this container cannot create the namespaces buildah needs to RUN (unshare(CLONE_NEWUSER): Operation not permitted): "
                + Self.fix)
        // Without RUN, buildah still needs the user namespace to open its storage: the same cause, said honestly.
        #expect(
            Namespaces.problem(need: .userForEverything, attempt: Self.refused, runs: false)
                == "this container cannot create the user namespace buildah needs to open its storage, even for a build without RUN (unshare(CLONE_NEWUSER): Operation not permitted): "
                + Self.fix)
        // Root with CAP_SYS_ADMIN but a filter refusing unshare: RUN cannot work, COPY can.
        let mount = Namespaces.Attempt.refused(call: "unshare(CLONE_NEWNS)", errno: EPERM)
        #expect(
            Namespaces.problem(need: .mountForRun, attempt: mount, runs: true)
                == "this container cannot create the namespaces buildah needs to RUN (unshare(CLONE_NEWNS): Operation not permitted): "
                + Self.fix)
        #expect(Namespaces.problem(need: .mountForRun, attempt: mount, runs: false) == nil)
        // Allowed, or the probe could not tell: never in the way.
        for need in [Namespaces.Need.mountForRun, .userForEverything] {
            for runs in [true, false] {
                #expect(Namespaces.problem(need: need, attempt: .created, runs: runs) == nil)
                #expect(Namespaces.problem(need: need, attempt: .unknown, runs: runs) == nil)
            }
        }
    }

    /// buildah 1.28's own output when its storage check runs in such a container (measured through Tests/Fixtures/concourse/unprivileged.c).
    @Test func buildahsObscureStorageFailureBecomesTheSameLine() {
        let buildah = """
            Error during unshare(CLONE_NEWUSER): Operation not permitted
            time="2026-12-06T08:44:42Z" level=error msg="parsing PID \\"\\": strconv.Atoi: parsing \\"\\": invalid syntax"
            time="2026-12-06T08:44:42Z" level=error msg="(Unable to determine exit status)"
            """
        #expect(
            Namespaces.problem(buildahOutput: buildah)
                == Namespaces.problem(need: .userForEverything, attempt: Self.refused, runs: false))
        #expect(Namespaces.problem(buildahOutput: "Error: mkdir /cache/storage: permission denied") == nil)
    }

    @Test func runStepsCountInAnyStageThatIsBuilt() throws {
        let amd64 = Platform(os: "linux", architecture: "amd64")
        func builds(_ text: String) throws -> [Emulation.TargetBuild] {
            [
                Emulation.TargetBuild(
                    target: amd64,
                    stages: try DockerfileStages(text, platforms: .init(build: amd64, target: amd64)).stages)
            ]
        }
        #expect(!Namespaces.runs(try builds("FROM scratch\nCOPY busybox /bin/busybox\n")))
        #expect(
            Namespaces.runs(
                try builds("FROM scratch AS tools\nRUN [\"/bin/true\"]\nFROM scratch\nCOPY --from=tools /a /a\n")))
    }

    @Test func theProbeReadsOurCapabilitiesAndTriesUnshareInAChild() throws {
        try withTemporaryDirectory { directory in
            let status = directory.url.appendingPathComponent("status")
            try Data("CapEff:\t00000000a80425fb\n".utf8).write(to: status)
            if geteuid() == 0 { #expect(NamespaceProbe(statusFile: status).need() == .userForEverything) }
        }
        // This machine runs the suite privileged (root, CAP_SYS_ADMIN, no seccomp filter), as build-task's own builds need.
        let probe = NamespaceProbe()
        #expect(probe.attempt(probe.need()) == .created)
        #expect(probe.attempt(.userForEverything) == .created)
    }
}
