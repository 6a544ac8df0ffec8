import Foundation
import TestSupport
import Testing

/// `ci/set-pipeline` in real git checkouts: a clone whose `origin` is a bare repository.
/// fly is not installed, so most tests read the command `--dry-run` prints; one puts a
/// stand-in `fly` on PATH to see the arguments the real run passes.
@Suite("ci/set-pipeline")
struct SetPipelineTests {
    static let script = CIPaths.ci.appendingPathComponent("set-pipeline").path

    /// A checkout on `main` with `ci/pipeline.yml`, whose bare `origin` has `main` and
    /// `branches` (created at main's commit and pushed).
    func withCheckout(branches: [String] = [], _ body: (TestGitRepository) throws -> Void) async throws {
        try await withTestGitRepository(branch: "main") { repository in
            try repository.commit("a pipeline", files: ["ci/pipeline.yml": "jobs: []\n"])
            _ = try repository.bareClone()
            for branch in branches { try repository.branch(branch) }
            try repository.push()
            try body(repository)
        }
    }

    /// Runs the script in the checkout with git isolated from the host and no FLY_TARGET.
    func setPipeline(_ arguments: [String], in repository: TestGitRepository, environment extra: [String: String] = [:])
        throws -> ProcessResult
    {
        var environment = TestGitRepository.environment(
            home: repository.path.deletingLastPathComponent().appendingPathComponent(".home"))
        environment["FLY_TARGET"] = nil
        environment.merge(extra) { $1 }
        return try runProcess(Self.script, arguments, environment: environment, currentDirectory: repository.path)
    }

    /// The one line a dry run prints, after requiring success.
    func dryRun(_ arguments: [String], in repository: TestGitRepository, environment: [String: String] = [:]) throws
        -> String
    {
        let result = try setPipeline(["--dry-run"] + arguments, in: repository, environment: environment)
        #expect(result.succeeded, "\(result.stderrString)")
        #expect(result.stderrString.isEmpty)
        return result.stdoutString
    }

    /// Requires a dry run to print exactly `line`.
    func expectDryRun(
        _ arguments: [String], in repository: TestGitRepository, environment: [String: String] = [:],
        prints line: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let printed = try dryRun(arguments, in: repository, environment: environment)
        #expect(printed == line, sourceLocation: sourceLocation)
    }

    /// Requires a refusal: non-zero status, nothing on stdout, one line on stderr that
    /// names the problem. Returns that line.
    @discardableResult
    func refused(_ arguments: [String], in repository: TestGitRepository, mentioning words: [String]) throws -> String {
        let result = try setPipeline(arguments, in: repository)
        #expect(!result.succeeded, "expected a refusal of \(arguments), got: \(result.stdoutString)")
        #expect(result.stdoutString.isEmpty)
        let lines = result.stderrString.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 1, "one line on stderr: \(result.stderrString)")
        let line = result.stderrString.trimmingCharacters(in: .newlines)
        #expect(line.hasPrefix("set-pipeline: "), "\(line)")
        for word in words {
            #expect(line.contains(word), "\"\(line)\" names \(word)")
        }
        return line
    }

    @Test func setsThePipelineOfTheCurrentBranch() async throws {
        try await withCheckout { repository in
            try expectDryRun(
                ["banana", "ci/pipeline.yml"], in: repository,
                prints: "fly -t main set-pipeline -p banana-main -c ci/pipeline.yml -v branch=main\n")
            // The target: FLY_TARGET, and --target over it.
            try expectDryRun(
                ["banana", "ci/pipeline.yml"], in: repository, environment: ["FLY_TARGET": "vm"],
                prints: "fly -t vm set-pipeline -p banana-main -c ci/pipeline.yml -v branch=main\n")
            try expectDryRun(
                ["--target", "ci", "banana", "ci/pipeline.yml"], in: repository, environment: ["FLY_TARGET": "vm"],
                prints: "fly -t ci set-pipeline -p banana-main -c ci/pipeline.yml -v branch=main\n")
        }
    }

    @Test func sanitisesTheBranchForThePipelineNameAndKeepsItForTheVariable() async throws {
        try await withCheckout(branches: ["Feature/JIRA-12_Login.Page", "fix/_Double--Dash.-"]) { repository in
            try repository.checkout("Feature/JIRA-12_Login.Page")
            try expectDryRun(
                ["banana", "ci/pipeline.yml"], in: repository,
                prints:
                    "fly -t main set-pipeline -p banana-feature-jira-12_login-page -c ci/pipeline.yml -v branch=Feature/JIRA-12_Login.Page\n"
            )
            // Runs of dashes collapse and outer ones go.
            try repository.checkout("fix/_Double--Dash.-")
            try expectDryRun(
                ["banana", "ci/pipeline.yml"], in: repository,
                prints:
                    "fly -t main set-pipeline -p banana-fix-_double-dash -c ci/pipeline.yml -v branch=fix/_Double--Dash.-\n"
            )
        }
    }

    @Test func passesExtraFlyArgumentsShellQuoted() async throws {
        try await withCheckout { repository in
            let line = try dryRun(
                ["banana", "ci/pipeline.yml", "-l", "vars file.yml", "-v", "greeting=it's"], in: repository)
            #expect(
                line
                    == #"fly -t main set-pipeline -p banana-main -c ci/pipeline.yml -v branch=main -l 'vars file.yml' -v 'greeting=it'\''s'"#
                    + "\n")
            // The dry run's line is valid shell: it reads back as the same words.
            let words = try runProcess("/bin/sh", ["-c", "printf '%s\\n' " + line.dropFirst("fly ".count)]).checked()
                .stdoutString
            #expect(
                words
                    == [
                        "-t", "main", "set-pipeline", "-p", "banana-main", "-c", "ci/pipeline.yml", "-v", "branch=main",
                        "-l", "vars file.yml", "-v", "greeting=it's",
                    ].map { $0 + "\n" }.joined())
        }
    }

    @Test func runsFlyWithTheSameArguments() async throws {
        try await withCheckout(branches: ["feat/x"]) { repository in
            try withTemporaryDirectory { bin in
                // A stand-in for fly that prints its arguments, one per line.
                let fly = bin.appending("fly")
                try Data("#!/bin/sh\nprintf '%s\\n' \"$@\"\n".utf8).write(to: fly)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fly.path)
                let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
                let set = try setPipeline(
                    ["--branch", "feat/x", "banana", "ci/pipeline.yml", "-l", "a b.yml"], in: repository,
                    environment: ["PATH": path])
                #expect(set.succeeded, "\(set.stderrString)")
                #expect(
                    set.stdoutString
                        == "-t\nmain\nset-pipeline\n-p\nbanana-feat-x\n-c\nci/pipeline.yml\n-v\nbranch=feat/x\n-l\na b.yml\n"
                )
            }
        }
    }

    @Test func refusesADetachedHead() async throws {
        try await withCheckout { repository in
            try repository.git("checkout", "--quiet", "--detach")
            try refused(
                ["--dry-run", "banana", "ci/pipeline.yml"], in: repository, mentioning: ["detached", "--branch"])
            // --branch names the branch when the checkout cannot.
            try expectDryRun(
                ["--branch", "main", "banana", "ci/pipeline.yml"], in: repository,
                prints: "fly -t main set-pipeline -p banana-main -c ci/pipeline.yml -v branch=main\n")
        }
    }

    @Test func refusesABranchThatIsNotOnTheRemote() async throws {
        try await withCheckout(branches: ["feature/master"]) { repository in
            try repository.branch("local-only", checkout: true)
            try refused(
                ["--dry-run", "banana", "ci/pipeline.yml"], in: repository, mentioning: ["local-only", "origin"])
            // Also without --dry-run: nothing is run.
            try refused(["banana", "ci/pipeline.yml"], in: repository, mentioning: ["local-only", "origin"])
            // The exact branch: refs/heads/feature/master on origin is not "master".
            try refused(
                ["--dry-run", "--branch", "master", "banana", "ci/pipeline.yml"], in: repository,
                mentioning: ["master", "origin"])
        }
    }

    @Test(arguments: ["Banana", "banana pie", "-banana", "", "bä", "banana/app", "_banana"])
    func refusesANameThatCannotBeAPipelineName(name: String) async throws {
        try await withCheckout { repository in
            let result = try setPipeline(["--dry-run", name, "ci/pipeline.yml"], in: repository)
            #expect(!result.succeeded)
            #expect(result.stdoutString.isEmpty)
            #expect(
                result.stderrString.hasPrefix("set-pipeline: ") && result.stderrString.filter { $0 == "\n" }.count == 1,
                "\(result.stderrString)")
        }
    }

    @Test func refusesMissingArgumentsAndAMissingConfig() async throws {
        try await withCheckout { repository in
            try refused(["--dry-run", "banana"], in: repository, mentioning: ["<pipeline.yml>"])
            try refused(["--dry-run", "banana", "ci/missing.yml"], in: repository, mentioning: ["ci/missing.yml"])
            try refused(["--dry-run", "--bogus", "banana", "ci/pipeline.yml"], in: repository, mentioning: ["--bogus"])
            try refused(
                ["--dry-run", "--branch", "bad..name", "banana", "ci/pipeline.yml"], in: repository,
                mentioning: ["bad..name"])
        }
    }

    @Test func destroysThePipelineOfADeletedBranch() async throws {
        try await withCheckout(branches: ["Feat/Gone"]) { repository in
            try repository.git("push", "--quiet", "origin", "--delete", "Feat/Gone")
            try expectDryRun(
                ["--destroy", "--branch", "Feat/Gone", "banana"], in: repository,
                prints: "fly -t main destroy-pipeline -p banana-feat-gone --non-interactive\n")
            // The set-pipeline command line with --destroy added works too: the config is not needed.
            try repository.checkout("Feat/Gone")
            try expectDryRun(
                ["--destroy", "banana", "ci/pipeline.yml"], in: repository,
                prints: "fly -t main destroy-pipeline -p banana-feat-gone --non-interactive\n")
        }
    }

    @Test func refusesToDestroyTheLiveBranchsPipeline() async throws {
        try await withCheckout(branches: ["feat-live"]) { repository in
            try refused(
                ["--dry-run", "--destroy", "--branch", "feat-live", "banana"], in: repository,
                mentioning: ["feat-live", "still exists", "banana-feat-live"])
            try refused(["--dry-run", "--destroy", "banana"], in: repository, mentioning: ["main", "still exists"])
        }
    }

    @Test func branchOverrideNamesAnotherRemoteBranch() async throws {
        try await withCheckout(branches: ["feat/Other"]) { repository in
            let current = try repository.currentBranch()
            #expect(current == "main")
            try expectDryRun(
                ["--branch", "feat/Other", "banana", "ci/pipeline.yml"], in: repository,
                prints: "fly -t main set-pipeline -p banana-feat-other -c ci/pipeline.yml -v branch=feat/Other\n")
        }
    }

    @Test func helpDescribesTheUsage() throws {
        let result = try runProcess(Self.script, ["--help"])
        #expect(result.succeeded)
        #expect(result.stdoutString.hasPrefix("Usage: ci/set-pipeline"))
        #expect(result.stdoutString.contains("--destroy") && result.stdoutString.contains("--dry-run"))
    }

    @Test func refusesOutsideAGitCheckout() throws {
        try withTemporaryDirectory { directory in
            try Data("jobs: []\n".utf8).write(to: directory.appending("pipeline.yml"))
            let result = try runProcess(
                Self.script, ["--dry-run", "banana", "pipeline.yml"], currentDirectory: directory.url)
            #expect(!result.succeeded)
            #expect(result.stderrString.contains("not in a git checkout"), "\(result.stderrString)")
        }
    }

    /// `--once`: a pipeline that exists once per repository (a reaper, a release) is named as
    /// given and set for origin's default branch, whichever branch is checked out.
    @Test func aOncePerRepositoryPipelineIsSetForTheDefaultBranch() async throws {
        try await withCheckout(branches: ["feat/x"]) { repository in
            try repository.checkout("feat/x")
            try expectDryRun(
                ["--once", "banana-reaper", "ci/pipeline.yml"], in: repository,
                prints: "fly -t main set-pipeline -p banana-reaper -c ci/pipeline.yml -v branch=main\n")
            try expectDryRun(
                ["--once", "--branch", "release/2", "banana-reaper", "ci/pipeline.yml", "-l", "vars.yml"],
                in: repository,
                prints: "fly -t main set-pipeline -p banana-reaper -c ci/pipeline.yml -v branch=release/2 -l vars.yml\n"
            )
            try expectDryRun(
                ["--once", "--destroy", "banana-reaper"], in: repository,
                prints: "fly -t main destroy-pipeline -p banana-reaper --non-interactive\n")
            _ = try repository.git("remote", "set-url", "origin", "/nonexistent/origin.git")
            try refused(
                ["--once", "banana-reaper", "ci/pipeline.yml"], in: repository,
                mentioning: ["default branch", "/nonexistent/origin.git"])
        }
    }
}
