import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `git daemon` serving every repository under `root` at `git://127.0.0.1:PORT/<name>`,
/// read-only, under the watchdog (it cannot outlive the test process).
public struct TestGitDaemon: Sendable {
    /// `git://127.0.0.1:PORT`, without a trailing slash.
    public let baseURL: String
}

/// Runs `body` with a `git daemon` over `root` (its repositories exported as they are) and
/// stops it afterwards.
public func withTestGitDaemon<R>(root: URL, _ body: (TestGitDaemon) async throws -> R) async throws -> R {
    let directory = try TemporaryDirectory(prefix: "slipway-git-daemon")
    defer { directory.remove() }
    var lastLog = ""
    for _ in 0..<4 {  // the free port may be taken before the daemon binds it
        let port = try freeLoopbackPort()
        let process = try SupervisedProcess(
            executable: try resolveExecutable("git"),
            arguments: [
                "daemon", "--reuseaddr", "--listen=127.0.0.1", "--port=\(port)", "--export-all",
                "--base-path=\(root.path)", "--informative-errors", root.path,
            ],
            environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory.path],
            logFile: directory.appending("daemon.log"), pidFile: directory.appending("daemon.pid"))
        if try await waitUntilListening(port: port, process: process) {
            let daemon = TestGitDaemon(baseURL: "git://127.0.0.1:\(port)")
            do {
                let result = try await body(daemon)
                await process.stop()
                return result
            } catch {
                await process.stop()
                throw error
            }
        }
        lastLog = process.logTail()
        await process.stop()
    }
    throw TestSupportError("git daemon did not start on a loopback port: \(lastLog)")
}

/// An OpenSSH server on a loopback port with its own host key, letting in one client key as
/// root: `ssh://root@127.0.0.1:PORT/<absolute path>` clones any repository on this machine,
/// through the server's `git-upload-pack`, as a git host over ssh does.
public struct TestSSHServer: Sendable {
    /// The port sshd listens on.
    public let port: Int
    /// The client's private key (OpenSSH format), the one `authorized_keys` lets in.
    public let clientPrivateKey: String
    /// The log sshd writes (`-E`): accepted and refused keys.
    public let logFile: URL

    /// `ssh://root@127.0.0.1:PORT<path>` for a repository at `path`.
    public func url(_ path: URL) -> String { "ssh://root@127.0.0.1:\(port)\(path.path)" }

    /// True when the log shows a login with the client key.
    public func acceptedPublicKey() -> Bool {
        ((try? String(contentsOf: logFile, encoding: .utf8)) ?? "").contains("Accepted publickey for root")
    }
}

/// Runs `body` with sshd (`/usr/sbin/sshd`, Debian's openssh-server) on a free loopback port
/// and stops it afterwards. Public-key login only, for one generated client key; no PAM, no
/// other host configuration read. Needs root (sshd switches to the user it lets in).
public func withTestSSHServer<R>(_ body: (TestSSHServer) async throws -> R) async throws -> R {
    let sshd = URL(fileURLWithPath: "/usr/sbin/sshd")
    guard FileManager.default.isExecutableFile(atPath: sshd.path) else {
        throw TestSupportError("/usr/sbin/sshd is missing: apt-get install openssh-server (.ci/run installs it)")
    }
    let directory = try TemporaryDirectory(prefix: "slipway-sshd")
    defer { directory.remove() }
    for name in ["host_key", "client_key"] {
        _ = try runProcess(
            "ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", directory.appending(name).path]
        ).checked()
    }
    try FileManager.default.copyItem(
        at: directory.appending("client_key.pub"), to: directory.appending("authorized_keys"))
    // sshd refuses to start without its privilege-separation directory.
    try FileManager.default.createDirectory(
        atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    let clientKey = try String(contentsOf: directory.appending("client_key"), encoding: .utf8)
    let log = directory.appending("sshd.log")
    var lastLog = ""
    for _ in 0..<4 {
        let port = try freeLoopbackPort()
        let configuration = """
            ListenAddress 127.0.0.1
            Port \(port)
            HostKey \(directory.appending("host_key").path)
            PidFile \(directory.appending("sshd.pid").path)
            AuthorizedKeysFile \(directory.appending("authorized_keys").path)
            PermitRootLogin prohibit-password
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            LogLevel VERBOSE

            """
        let configurationFile = directory.appending("sshd_config")
        try Data(configuration.utf8).write(to: configurationFile)
        let process = try SupervisedProcess(
            executable: sshd, arguments: ["-D", "-f", configurationFile.path, "-E", log.path],
            environment: ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            logFile: directory.appending("supervisor.log"), pidFile: directory.appending("child.pid"))
        if try await waitUntilListening(port: port, process: process) {
            let server = TestSSHServer(port: port, clientPrivateKey: clientKey, logFile: log)
            do {
                let result = try await body(server)
                await process.stop()
                return result
            } catch {
                await process.stop()
                throw error
            }
        }
        lastLog = ((try? String(contentsOf: log, encoding: .utf8)) ?? "") + process.logTail()
        await process.stop()
    }
    throw TestSupportError("sshd did not start on a loopback port: \(lastLog)")
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`; false when `process`
/// ended first (the port was taken) or after 20 s.
private func waitUntilListening(port: Int, process: SupervisedProcess) async throws -> Bool {
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
        if !process.isRunning { return false }
        if canConnect(port: port) { return true }
        usleep(50_000)  // blocking on purpose, as in TestRegistry.waitUntilAnswering
    }
    return false
}

private func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return connected == 0
}
