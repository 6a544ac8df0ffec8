import Foundation
import GitSource
import Spawn
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Credentials never in a process argument, a logged URL or a message.
///
/// ssh: a fake `ssh` on the PATH (there is no ssh server here) records how it was called and
/// what the key file looked like while git ran, then runs `git-upload-pack` locally, so the
/// whole ssh transport path of git is exercised. https: a real `git http-backend` behind a
/// small Basic-auth HTTP server (plain HTTP on loopback; git's credential path is the same).
@Suite struct CredentialTests {
    static let key = """
        -----BEGIN OPENSSH PRIVATE KEY-----
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
        QyNTUxOQAAACBzbGlwd2F5LXRlc3Qta2V5LW5vdC1yZWFsLW1hdGVyaWFsAAAAAAAAAAAA
        -----END OPENSSH PRIVATE KEY-----
        """
    static let keyLine = "QyNTUxOQAAACBzbGlwd2F5LXRlc3Qta2V5LW5vdC1yZWFsLW1hdGVyaWFsAAAAAAAAAAAA"

    @Test(arguments: ["ssh://fakehost", "fakehost:"])
    func anSSHKeyIsAPrivateTemporaryFileThatIsGoneAfterwards(prefix: String) async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1", "VERSION": "1"])
            try f.push()
            let bin = f.directory.appending("fake-bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let record = f.directory.appending("ssh-record.txt")
            let fakeSSH = bin.appendingPathComponent("ssh")
            try Data(Self.fakeSSHScript.utf8).write(to: fakeSSH)
            chmod(fakeSSH.path, 0o755)
            var environment = f.environment
            environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["FAKE_SSH_RECORD"] = record.path
            let recorder = RecordingRunner(SpawnCommandRunner(baseEnvironment: environment))
            let configuration = f.configuration {
                $0.uri = prefix + f.remote.path.path
                $0.privateKey = Self.key
                $0.tagFile = TagFileSpec(path: "VERSION")
            }
            let changes = try f.detector(configuration, runner: recorder).changes(since: nil)
            #expect(commits(changes) == [c1])
            #expect(changes.map(\.tagFileValue) == ["1"])

            let lines = try String(contentsOf: record, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(lines.contains("host fakehost"))
            #expect(lines.contains("mode 600"))
            #expect(lines.contains("directory-mode 700"))
            #expect(lines.contains("option IdentitiesOnly=yes"))
            #expect(lines.contains("option StrictHostKeyChecking=no"))
            // Written with the final newline OpenSSH needs, though the variable had none.
            let content = lines.drop { $0 != "content-begin" }.dropFirst().prefix { $0 != "content-end" }
            #expect(content.joined(separator: "\n") + "\n" == Self.key + "\n")
            let keyPath = try #require(lines.first { $0.hasPrefix("key ") }).dropFirst(4)
            #expect(!FileManager.default.fileExists(atPath: String(keyPath)), "the key file outlived the check")
            #expect(
                !FileManager.default.fileExists(
                    atPath: URL(fileURLWithPath: String(keyPath)).deletingLastPathComponent().path))
            for command in recorder.commands {
                #expect(!command.arguments.joined(separator: " ").contains(Self.keyLine))
                #expect(!command.environment.values.contains { $0?.contains(Self.keyLine) == true })
            }

            // A key left behind by a check that was killed outright is removed by the next one.
            let scratch = f.cacheRoot.appendingPathComponent("slipway-git")
            let abandoned = scratch.appendingPathComponent("slipway-key.999999.AbCdEf")
            try FileManager.default.createDirectory(at: abandoned, withIntermediateDirectories: true)
            try Data(Self.key.utf8).write(to: abandoned.appendingPathComponent("key"))
            _ = try f.detector(configuration, runner: recorder).changes(since: nil)
            #expect(!FileManager.default.fileExists(atPath: abandoned.path))
        }
    }

    @Test func anSSHFailureNamesNoKeyMaterial() async throws {
        try await withGitFixture { f in
            try f.work.change("one", ["a": "1"])
            try f.push()
            var environment = f.environment
            let bin = f.directory.appending("fake-bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            // An ssh that prints the key it was given and fails, as a misbehaving one might.
            try Data(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -i ] && cat \"$2\" >&2; shift; done\nexit 255\n".utf8
            )
            .write(to: bin.appendingPathComponent("ssh"))
            chmod(bin.appendingPathComponent("ssh").path, 0o755)
            environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            let configuration = f.configuration {
                $0.uri = "ssh://fakehost" + f.remote.path.path
                $0.privateKey = Self.key
            }
            let detector = f.detector(configuration, runner: SpawnCommandRunner(baseEnvironment: environment))
            let error = try #require(throws: GitSourceError.self) { try detector.changes(since: nil) }
            #expect(error.kind == .unreadableRemote)
            #expect(!error.message.contains(Self.keyLine))
            #expect(error.message.contains("***"))
        }
    }

    @Test func httpsUsernameAndPasswordReachGitOnlyThroughTheCredentialHelper() async throws {
        try await withGitFixture { f in
            let c1 = try f.work.change("one", ["a": "1", "VERSION": "7"])
            try f.push()
            try await withAuthenticatedGitServer(root: f.directory.url, username: "robot", password: "s3cret-token") {
                server in
                let url = "\(server.baseURL)/remote.git"
                let recorder = RecordingRunner(SpawnCommandRunner(baseEnvironment: f.environment))
                let configuration = f.configuration {
                    $0.uri = url
                    $0.username = "robot"
                    $0.password = "s3cret-token"
                    $0.tagFile = TagFileSpec(path: "VERSION")
                }
                let changes = try f.detector(configuration, runner: recorder).changes(since: nil)
                #expect(commits(changes) == [c1])
                #expect(changes.map(\.tagFileValue) == ["7"])  // a lazy blob fetch, authenticated too
                #expect(recorder.commands.count > 3)
                for command in recorder.commands {
                    #expect(!command.arguments.contains { $0.contains("s3cret-token") })
                }
                #expect(try server.authenticatedUsers().contains("robot"))

                // The same, with the credentials in the URL: the URL git gets has none.
                let inURL = RecordingRunner(SpawnCommandRunner(baseEnvironment: f.environment))
                let fromURL = f.configuration {
                    $0.uri = url.replacingOccurrences(of: "http://", with: "http://robot:s3cret-token@")
                }
                #expect(
                    commits(
                        try f.detector(fromURL, cacheRoot: f.directory.appending("cache-url"), runner: inURL).changes(
                            since: nil)) == [c1])
                for command in inURL.commands {
                    #expect(!command.arguments.contains { $0.contains("s3cret-token") || $0.contains("robot@") })
                }

                // A wrong password: a remote error that names the URL but not the password.
                let wrong = f.configuration {
                    $0.uri = url
                    $0.username = "robot"
                    $0.password = "wrong-password"
                }
                let error = try #require(throws: GitSourceError.self) {
                    try f.detector(wrong, cacheRoot: f.directory.appending("cache-wrong")).changes(since: nil)
                }
                #expect(error.kind == .unreadableRemote)
                #expect(!error.message.contains("wrong-password"))
                #expect(error.message.contains(url) || error.message.contains("127.0.0.1"))
            }
        }
    }

    static let fakeSSHScript = #"""
        #!/bin/sh
        # A stand-in for ssh: records its options and the key file, then runs the remote
        # command (git-upload-pack '<path>') locally.
        record="$FAKE_SSH_RECORD"
        key=""
        while [ $# -gt 0 ]; do
          case "$1" in
            -i) key="$2"; shift 2 ;;
            -o|-p|-l) echo "option $2" >> "$record"; shift 2 ;;
            -*) shift ;;
            *) break ;;
          esac
        done
        echo "host $1" >> "$record"
        shift
        echo "key $key" >> "$record"
        echo "mode $(stat -c %a "$key")" >> "$record"
        echo "directory-mode $(stat -c %a "$(dirname "$key")")" >> "$record"
        echo "content-begin" >> "$record"
        cat "$key" >> "$record"
        echo "content-end" >> "$record"
        exec sh -c "$*"
        """#
}

/// A runner that records every command before running it with the real runner.
final class RecordingRunner: CommandRunner {
    private let inner: SpawnCommandRunner
    private let recorded = Mutex<[Command]>([])

    init(_ inner: SpawnCommandRunner) {
        self.inner = inner
    }

    var commands: [Command] { recorded.withLock { $0 } }

    func run(_ command: Command) throws -> CommandResult {
        recorded.withLock { $0.append(command) }
        return try inner.run(command)
    }
}
