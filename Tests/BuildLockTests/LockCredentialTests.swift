import Console
import Foundation
import GitSource
import Spawn
import Synchronization
import TestSupport
import Testing

@testable import BuildLock

/// Runs commands through a real runner and keeps each, to check what git was given.
final class RecordingLockRunner: CommandRunner, Sendable {
    private let base = SpawnCommandRunner()
    private let recorded = Mutex<[Command]>([])
    var commands: [Command] { recorded.withLock { $0 } }

    func run(_ command: Command) throws -> CommandResult {
        recorded.withLock { $0.append(command) }
        return try base.run(command)
    }
}

@Suite("Build locks in a lock repository that needs credentials")
struct LockCredentialTests {
    static let password = "s3cret-lock-token"

    func spec(_ uri: String, credentials: GitCredentials) throws -> LockSpec {
        LockSpec(
            backend: .git(uri), key: try LockKey("app:1234"), timeout: .seconds(5), ttl: .seconds(600),
            pollInterval: .milliseconds(100), credentials: credentials)
    }

    /// LOCK=git:http://… behind Basic auth (git http-backend): LOCK_USERNAME/LOCK_PASSWORD
    /// take and release the lock; the password never reaches an argument; a wrong password
    /// is one line without it.
    @Test func httpsLockRepositoryTakesAndReleasesWithTheRightPassword() async throws {
        try await withTemporaryDirectory { directory in
            let work = try TestGitRepository.create(at: directory.appending("work"))
            try work.commit("locks", files: ["README": "locks\n"])
            _ = try work.bareClone(at: directory.appending("served/locks.git"))
            let ref = "refs/slipway-locks/" + (try LockKey("app:1234").safeName)
            try await withAuthenticatedGitServer(
                root: directory.appending("served"), username: "robot", password: Self.password
            ) { server in
                let uri = "\(server.baseURL)/locks.git"
                let recorder = RecordingLockRunner()
                let held = try withBuildLock(
                    try spec(uri, credentials: GitCredentials(username: "robot", password: Self.password)),
                    log: .silent, runner: recorder
                ) {
                    try work.git("ls-remote", "origin", ref)
                }
                #expect(held.contains(ref), "the lock ref exists while the body runs: \(held)")
                #expect(try work.git("ls-remote", "origin", ref) == "", "released afterwards")
                #expect(try server.authenticatedUsers().contains("robot"))
                #expect(recorder.commands.contains { $0.arguments.contains("push") })
                for command in recorder.commands {
                    #expect(!command.arguments.contains { $0.contains(Self.password) }, "\(command.displayString)")
                }

                let lines = Mutex<[String]>([])
                let log = Log { line in lines.withLock { $0.append(line) } }
                let wrong = try spec(
                    uri, credentials: GitCredentials(username: "robot", password: "wrong-lock-password"))
                let error = #expect(throws: LockError.self) { try withBuildLock(wrong, log: log) {} }
                let message = try #require(error?.message)
                #expect(!message.contains("wrong-lock-password") && !message.contains(Self.password), "\(message)")
                #expect(!message.contains("\n"), "one line: \(message)")
                #expect(message.contains("cannot take lock app:1234") && message.contains("credentials"), "\(message)")
                #expect(!lines.withLock { $0 }.joined().contains("wrong-lock-password"))
                #expect(try work.git("ls-remote", "origin", ref) == "", "nothing was taken")

                let anonymous = #expect(throws: LockError.self) {
                    try withBuildLock(try spec(uri, credentials: GitCredentials()), log: .silent) {}
                }
                #expect(
                    anonymous?.message.contains("cannot take lock app:1234") == true, "\(String(describing: anonymous))"
                )
            }
        }
    }

    @Test func aFileLockTakesNoCredentials() throws {
        let error = #expect(throws: LockError.self) {
            try LockSpec(
                parsing: "file:/tmp/locks", key: "k", timeout: .seconds(1), ttl: .seconds(2),
                credentials: GitCredentials(
                    privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretkeymaterial0123456789\n"))
        }
        #expect(
            error?.message.contains("LOCK_PRIVATE_KEY") == true
                && error?.message.contains("secretkeymaterial") == false, "\(String(describing: error))")
        let git = try LockSpec(
            parsing: "git:https://git.example.com/locks.git", key: "k", timeout: .seconds(1), ttl: .seconds(2),
            credentials: GitCredentials(username: "u", password: "p"))
        #expect(git.credentials == GitCredentials(username: "u", password: "p"))
    }
}
