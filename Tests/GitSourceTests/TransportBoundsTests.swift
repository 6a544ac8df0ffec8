import Foundation
import GitSource
import Spawn
import TestSupport
import Testing

/// Which transports git may use, and the time bounds every git command carries.
@Suite struct TransportBoundsTests {
    @Test(arguments: [
        "fd::3", "ext::sh -c touch% /tmp/pwned", "svn::https://example.com/repo", "FD::3",
        "ftp://example.com/repo.git", "rsync://example.com/repo.git", "foo://example.com/repo.git",
    ])
    func remoteHelpersAndUnknownSchemesAreRefusedAtParsing(_ uri: String) {
        let error = #expect(throws: GitSourceError.self) { try GitSourceConfiguration(uri: uri).validate() }
        #expect(error?.kind == .invalidConfiguration)
        #expect(
            error?.message.contains("git.uri") == true && error?.message.contains(where: \.isNewline) == false,
            "\(String(describing: error))")
    }

    @Test(arguments: [
        "https://example.com/r.git", "http://example.com/r.git", "ssh://git@example.com/r.git",
        "git+ssh://example.com/r.git",
        "git://example.com/r.git", "file:///srv/r.git", "git@github.com:team/r.git", "/srv/r.git", "./r.git",
        "HTTPS://example.com/r.git",
    ])
    func theTransportsUsersUseAreAccepted(_ uri: String) throws {
        try GitSourceConfiguration(uri: uri).validate()
    }

    @Test func everyGitCommandCarriesTheAllowedProtocolsAndTimeouts() async throws {
        try await withGitFixture { f in
            try f.work.change("one", ["a": "1"])
            try f.push()
            let recorder = RecordingRunner(SpawnCommandRunner(baseEnvironment: f.environment))
            _ = try f.detector(f.configuration { _ in }, runner: recorder).changes(since: nil)
            let commands = recorder.commands.filter { $0.executable == "git" }
            try #require(!commands.isEmpty)
            for command in commands {
                #expect(
                    command.environment["GIT_ALLOW_PROTOCOL"] == .some("https:http:ssh:git:file"),
                    "\(command.displayString)")
                let ssh = command.environment["GIT_SSH_COMMAND"] ?? nil
                #expect(
                    ssh?.contains("ConnectTimeout=") == true && ssh?.contains("ServerAliveInterval=") == true,
                    "\(command.displayString)")
                #expect(command.arguments.contains("http.lowSpeedLimit=1"), "\(command.displayString)")
            }
            let network = commands.filter {
                $0.arguments.contains("fetch") || $0.arguments.contains("ls-remote") || $0.arguments.contains("clone")
            }
            try #require(!network.isEmpty)
            for command in network { #expect(command.idleTimeout != nil, "\(command.displayString)") }
        }
    }

    @Test func theRunnerEndsAChildThatMakesNoProgress() throws {
        var command = Command("/bin/sh", ["-c", "sleep 30 & wait"])
        command.idleTimeout = .seconds(1)
        let clock = ContinuousClock()
        let started = clock.now
        let result = try SpawnCommandRunner().run(command)
        #expect(result.timedOut && !result.succeeded)
        #expect(clock.now - started < .seconds(10), "ended within the bound: \(clock.now - started)")
    }

    @Test func aChildThatKeepsWritingIsNotEnded() throws {
        var command = Command("/bin/sh", ["-c", "for i in 1 2 3 4; do echo $i; sleep 0.5; done"])
        command.idleTimeout = .seconds(1)
        let result = try SpawnCommandRunner().run(command)
        #expect(result.succeeded && !result.timedOut, "\(result.errorText)")
        #expect(result.outputText == "1\n2\n3\n4\n")
    }
}
