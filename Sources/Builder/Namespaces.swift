import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether buildah can create the namespaces it needs in this container.
///
/// A Concourse task that is not `privileged: true` runs in a user namespace with no
/// CAP_SYS_ADMIN and a seccomp profile that refuses `unshare`, `setns`, `mount`,
/// `pivot_root` and `clone` with namespace flags (concourse/concourse
/// `worker/runtime/spec/seccomp.go`, `capabilities.go`). buildah then fails with
/// `Error during unshare(CLONE_NEWUSER): Operation not permitted` and
/// `(Unable to determine exit status)`, which names neither the cause nor the fix.
/// ``problem(need:attempt:runs:)`` decides before buildah runs; ``NamespaceProbe`` is the
/// thin seam that asks the kernel.
///
/// How the decision is made, and why both halves are needed:
/// - **What buildah will create** follows buildah's own rule (containers/storage
///   `pkg/unshare`, `MaybeReexecUsingUserNamespace`): as root with CAP_SYS_ADMIN in its
///   effective set it stays in our namespaces and only a `RUN` (chroot isolation) creates a
///   mount namespace; otherwise (root without CAP_SYS_ADMIN, as in Concourse's default
///   container, or not root) it re-executes itself in a new user namespace before anything
///   else, even to open its storage. CapEff from `/proc/self/status` tells which.
/// - **Whether the kernel allows it** cannot be read from anywhere: seccomp filters are
///   opaque, and a root with CAP_SYS_ADMIN may still be refused `unshare` while a user
///   without it may be allowed a user namespace. So the probe tries the very call buildah
///   makes, `unshare`, in a forked child (it changes the caller's namespaces, and
///   `unshare(CLONE_NEWUSER)` is refused with EINVAL in a multi-threaded process such as
///   ours). A probe that cannot tell (fork failed) never blocks a build.
public enum Namespaces {
    /// The namespaces buildah creates for a build, given who we are.
    public enum Need: Sendable, Equatable {
        /// Root with CAP_SYS_ADMIN: buildah uses our namespaces; only `RUN` needs a new mount namespace.
        case mountForRun
        /// Root without CAP_SYS_ADMIN, or not root: buildah re-executes itself in a new user
        /// namespace (and a mount namespace in it) for everything, its storage included.
        case userForEverything
    }

    /// What the probe's child got from the kernel.
    public enum Attempt: Sendable, Equatable {
        case created
        /// `call` (`unshare(CLONE_NEWUSER)`) failed with `errno`.
        case refused(call: String, errno: Int32)
        /// The probe could not tell (no child could be started).
        case unknown
    }

    /// CAP_SYS_ADMIN's bit in the capability sets.
    static let sysAdmin = 21

    /// buildah's rule: a new user namespace unless we are root with CAP_SYS_ADMIN effective.
    /// Unknown capabilities (no `/proc`) count as root's usual full set.
    public static func need(effectiveUID: UInt32, effectiveCapabilities: UInt64?) -> Need {
        guard effectiveUID == 0 else { return .userForEverything }
        let capabilities = effectiveCapabilities ?? .max
        return capabilities & (1 << UInt64(sysAdmin)) != 0 ? .mountForRun : .userForEverything
    }

    /// The `CapEff` mask of a `/proc/<pid>/status` text, or nil.
    public static func effectiveCapabilities(status text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }

    /// The fix, said once for every refusal.
    static let fix =
        "Concourse runs tasks without privileges by default; set privileged: true on the task that runs build-task"

    /// The one line build-task fails with when buildah cannot create the namespaces this
    /// build needs, else nil.
    ///
    /// - Parameters:
    ///   - need: what buildah will create (``need(effectiveUID:effectiveCapabilities:)``).
    ///   - attempt: what the probe's child got.
    ///   - runs: whether a stage buildah builds has a `RUN` (``Emulation/TargetBuild``).
    public static func problem(need: Need, attempt: Attempt, runs: Bool) -> String? {
        guard case .refused(let call, let error) = attempt else { return nil }
        let cause = "(\(call): \(String(cString: strerror(error))))"
        switch (need, runs) {
        case (_, true):
            return "this container cannot create the namespaces buildah needs to RUN \(cause): \(fix)"
        case (.userForEverything, false):
            return
                "this container cannot create the user namespace buildah needs to open its storage, even for a build without RUN \(cause): \(fix)"
        case (.mountForRun, false):
            return nil  // as root with CAP_SYS_ADMIN, COPY and ADD need no new namespace
        }
    }

    /// The same line for a buildah that already failed for that reason (its storage check), else nil.
    public static func problem(buildahOutput text: String) -> String? {
        for call in ["unshare(CLONE_NEWUSER)", "unshare(CLONE_NEWNS)"] where text.contains("Error during \(call)") {
            let refused: Int32 = text.contains("No space left on device") ? ENOSPC : EPERM
            return problem(need: .userForEverything, attempt: .refused(call: call, errno: refused), runs: false)
        }
        return nil
    }

    /// Whether any stage built for any platform has a `RUN`.
    public static func runs(_ builds: [Emulation.TargetBuild]) -> Bool {
        builds.contains { $0.stages.contains(where: \.runs) }
    }
}

/// The kernel's answer: who we are, and whether a child of ours may `unshare` what buildah will.
public struct NamespaceProbe: Sendable {
    public var statusFile: URL

    public init(statusFile: URL = URL(fileURLWithPath: "/proc/self/status")) {
        self.statusFile = statusFile
    }

    /// <linux/sched.h>
    static let newNS: Int32 = 0x0002_0000, newUser: Int32 = 0x1000_0000

    /// What buildah will create here.
    public func need() -> Namespaces.Need {
        let status = (try? String(contentsOf: statusFile, encoding: .utf8)).flatMap(
            Namespaces.effectiveCapabilities(status:))
        return Namespaces.need(effectiveUID: geteuid(), effectiveCapabilities: status)
    }

    /// Tries, in a forked child that exits at once, the `unshare` buildah will make.
    public func attempt(_ need: Namespaces.Need) -> Namespaces.Attempt {
        // A user namespace first, then a mount namespace inside it (what buildah's re-exec and
        // its RUN do); as root with CAP_SYS_ADMIN, only the mount namespace.
        let steps: [(flags: Int32, call: String)] =
            need == .userForEverything
            ? [(Self.newUser, "unshare(CLONE_NEWUSER)"), (Self.newNS, "unshare(CLONE_NEWNS)")]
            : [(Self.newNS, "unshare(CLONE_NEWNS)")]
        // Glibc's module leaves unshare(2) out (it is _GNU_SOURCE); look it up before forking.
        guard let symbol = dlsym(nil, "unshare") else { return .unknown }  // RTLD_DEFAULT
        let unshare = unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Int32).self)
        let first = steps[0].flags
        let second = steps.count > 1 ? steps[1].flags : 0
        let pid = fork()
        if pid == 0 {
            // The child: only system calls until _exit. Status: 0, errno of the first call, or 64 + errno of the second.
            if unshare(first) != 0 { _exit(min(errno, 63)) }
            if second != 0, unshare(second) != 0 { _exit(64 + min(errno, 63)) }
            _exit(0)
        }
        guard pid > 0 else { return .unknown }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return .unknown }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        guard status & 0x7f == 0 else { return .unknown }
        let code = (status >> 8) & 0xff
        switch code {
        case 0: return .created
        case 1..<64: return .refused(call: steps[0].call, errno: code)
        default: return steps.count > 1 ? .refused(call: steps[1].call, errno: code - 64) : .unknown
        }
    }
}
