import Builder
import Foundation
import GitSource
import TestSupport
import Testing

@Suite("build-task: credentials for a git: lock repository")
struct LockCredentialConfigurationTests {
    func context(_ directory: TemporaryDirectory) throws -> URL {
        let context = directory.appending("app")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try Data("FROM scratch\n".utf8).write(to: context.appendingPathComponent("Dockerfile"))
        return context
    }

    @Test func variablesAndFlagsGiveTheLockRepositoryItsCredentials() throws {
        try withTemporaryDirectory { directory in
            let context = try context(directory)
            let https = try BuildConfiguration(
                flags: try BuildFlags.parse([]),
                environment: [
                    "CONTEXT": context.path, "LOCK": "git:https://git.example.com/locks.git", "LOCK_USERNAME": "robot",
                    "LOCK_PASSWORD": "token",
                ], directory: directory.url)
            #expect(https.lockCredentials == GitCredentials(username: "robot", password: "token"))
            let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n"
            let ssh = try BuildConfiguration(
                flags: try BuildFlags.parse([]),
                environment: [
                    "CONTEXT": context.path, "LOCK": "git:ssh://git@git.example.com/locks.git", "LOCK_PRIVATE_KEY": key,
                ], directory: directory.url)
            #expect(ssh.lockCredentials == GitCredentials(privateKey: key))
            try Data(key.utf8).write(to: directory.appending("lock-key"))
            let flags = try BuildFlags.parse([
                "--lock", "git:ssh://git@git.example.com/locks.git", "--lock-private-key-file", "lock-key",
            ])
            let fromFile = try BuildConfiguration(
                flags: flags, environment: ["CONTEXT": context.path], directory: directory.url)
            #expect(fromFile.lockCredentials.privateKey == key)
        }
    }

    @Test(arguments: [
        (["LOCK_PASSWORD": "pw-value-1"], "LOCK_PASSWORD (--lock-password) is set, but LOCK is not set"),
        (
            ["LOCK": "file:/tmp/locks", "LOCK_PRIVATE_KEY": "key-value-1"],
            "LOCK_PRIVATE_KEY (--lock-private-key-file) is set, but LOCK is a file: lock"
        ),
        (
            ["LOCK": "git:https://git.example.com/locks.git", "LOCK_USERNAME": "robot"],
            "LOCK_USERNAME and LOCK_PASSWORD go together"
        ),
    ])
    func aLockCredentialWithoutAGitLockIsNamed(environment: [String: String], expected: String) throws {
        try withTemporaryDirectory { directory in
            var environment = environment
            environment["CONTEXT"] = try context(directory).path
            let error = #expect(throws: BuildConfiguration.ValidationError.self) {
                try BuildConfiguration(
                    flags: try BuildFlags.parse([]), environment: environment, directory: directory.url)
            }
            let message = error?.description ?? ""
            #expect(message.contains(expected), "\(message)")
            #expect(!message.contains("-value-1"), "never the value: \(message)")
        }
    }

    @Test func theBinaryRefusesACredentialWithoutAGitLockInOneLine() throws {
        try withTemporaryDirectory { directory in
            let context = try context(directory)
            let result = try runProcess(
                try builtProduct("build-task").path, [],
                environment: [
                    "PATH": "/usr/bin:/bin", "CONTEXT": context.path, "LOCK": "file:/tmp/locks",
                    "LOCK_PASSWORD": "pw-value-2", "LOCK_USERNAME": "robot",
                ])
            #expect(result.status == 1)
            #expect(
                result.stderrString
                    == "build-task: LOCK_USERNAME (--lock-username) is set, but LOCK is a file: lock; lock credentials are only for a git:<uri> lock repository: set LOCK=git:<uri>, or remove it\n"
            )
        }
    }
}
