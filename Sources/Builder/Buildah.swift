import Console
import Errors
import Foundation
import Spawn

/// buildah, run as a rootless-friendly builder with its storage under a directory a
/// Concourse task can keep in `caches:`.
///
/// Measured here: the default OCI isolation fails
/// on cgroup-v1/hybrid hosts, `--isolation chroot` works; a vfs store is relocatable, so a
/// cache whose absolute path changes between builds still hits.
public struct Buildah: Sendable {
    public struct Failure: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Buildah.Failure>
        public var kind: Kind { .buildahFailed }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    let runner: any CommandRunner
    let storage: URL
    let log: Log
    let progress: StatusLine
    /// Set for every buildah command: `CONTAINERS_REGISTRIES_CONF` for registry mirrors.
    var environment: [String: String?] = [:]
    /// `DEBUG`: log each `buildah bud` command line (secrets are file paths there, never values).
    var debug = false

    public init(
        storage: URL, log: Log, runner: any CommandRunner = SpawnCommandRunner(),
        progress: StatusLine = StatusLine(enabled: false)
    ) {
        self.runner = runner
        self.storage = storage
        self.log = log
        self.progress = progress
    }

    func command(_ arguments: [String]) -> Command {
        Command("buildah", arguments, environment: environment)
    }

    var global: [String] {
        [
            "--root", storage.appendingPathComponent("storage").path, "--runroot",
            storage.appendingPathComponent("runroot").path,
            "--storage-driver", "vfs",
        ]
    }

    /// Fails early, with what to do, when buildah is missing or cannot use its storage.
    public func check() throws {
        let version: CommandResult
        do { version = try runner.run(Command("buildah", ["--version"])) } catch {
            throw Failure("buildah is not installed (apt-get install buildah), or not on PATH")
        }
        guard version.succeeded else {
            throw Failure("buildah --version failed: \(Self.lastLine(version))")
        }
        try FileManager.default.createDirectory(at: storage, withIntermediateDirectories: true)
        let info = try runner.run(command(global + ["images", "--quiet"]))
        guard info.succeeded else {
            // Refused a user namespace (a non-privileged Concourse task): the cause and the fix, not buildah's "(Unable to determine exit status)".
            if let problem = Namespaces.problem(buildahOutput: info.errorText + "\n" + info.outputText) {
                throw Failure(problem)
            }
            throw Failure(
                "buildah cannot use its storage in \(storage.path) (does it run as root or with user namespaces?): \(Self.lastLine(info))"
            )
        }
    }

    /// `buildah bud`; returns buildah's image ID (the config digest) for one platform.
    ///
    /// With several platforms the images go into the manifest list `name` instead
    /// (`--manifest`); a list of that name is removed first, since buildah would append to it.
    public func build(
        context: URL, dockerfile: URL, name: String, target: String?, buildArgs: [String: String],
        labels: [String: String], timestamp: Int?, platforms: [String], options: [String] = []
    ) throws -> String {
        var arguments =
            global + ["bud", "--isolation", "chroot", "--layers", "--quiet=false", "-f", dockerfile.path] + options
        if platforms.count > 1 {
            _ = try? runner.run(command(global + ["manifest", "rm", name]))
            arguments += ["--manifest", name, "--platform", platforms.joined(separator: ",")]
        } else {
            arguments += ["-t", name]
            if let platform = platforms.first { arguments += ["--platform", platform] }
        }
        if let target { arguments += ["--target", target] }
        if let timestamp { arguments += ["--timestamp", String(timestamp)] }
        for (key, value) in buildArgs.sorted(by: { $0.key < $1.key }) {
            arguments += ["--build-arg", "\(key)=\(value)"]
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) { arguments += ["--label", "\(key)=\(value)"] }
        let iidfile = storage.appendingPathComponent("iid-\(UUID().uuidString.prefix(8))")
        defer { unlink(iidfile.path) }
        // --iidfile holds one image ID; a multi-platform build has one per platform.
        arguments += (platforms.count > 1 ? [] : ["--iidfile", iidfile.path]) + [context.path]
        let started = Date()
        // One concise line per step, as it starts, for the Concourse log: "STEP 2/4: COPY …"
        // or, in a multi-stage build, "[1/2] STEP 2/4: COPY …". In a terminal, every other
        // line buildah writes passes through the status line, with the time so far.
        if debug { log.info("buildah " + arguments.joined(separator: " ")) }
        let result = try runner.run(command(arguments)) { line in
            if line.hasPrefix("STEP ") || (line.hasPrefix("[") && line.contains("] STEP ")) || Self.isCacheHit(line) {
                progress.clear()
                log.info(line)
            } else if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                progress.show(String(format: "%5.1fs ", Date().timeIntervalSince(started)) + line)
            }
        }
        progress.clear()
        guard result.succeeded else {
            // buildah's own message is what the user needs: a bad Dockerfile, a failing RUN.
            let last = Self.lastLine(result)
            if last.contains("failed pushing cache to") {
                // buildah 1.28 fails the build when a --cache-to push fails.
                throw Failure(
                    "buildah bud failed to push a step to CACHE_REPOSITORY (check that it is reachable and the credentials may push there, or unset it): \(last)"
                )
            }
            throw Failure("buildah bud failed: \(last)")
        }
        log.info("built \(name) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        return ((try? String(contentsOf: iidfile, encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// `buildah push` to a transport destination (`oci:<dir>:<name>`, `docker-archive:<file>:<ref>`).
    public func push(_ name: String, to destination: String) throws {
        let result = try runner.run(command(global + ["push", "--quiet", name, destination]))
        guard result.succeeded else { throw Failure("buildah push to \(destination) failed: \(Self.lastLine(result))") }
    }

    /// `buildah manifest push --all --format oci`: a manifest list as an OCI index.
    public func pushList(_ name: String, to destination: String) throws {
        let result = try runner.run(
            command(global + ["manifest", "push", "--all", "--format", "oci", "--quiet", name, destination]))
        guard result.succeeded else {
            throw Failure("buildah manifest push to \(destination) failed: \(Self.lastLine(result))")
        }
    }

    /// Removes the name, an image or a manifest list (layers stay cached).
    public func remove(_ name: String) {
        if (try? runner.run(command(global + ["manifest", "rm", name])))?.succeeded == true { return }
        _ = try? runner.run(command(global + ["rmi", name]))
    }

    /// buildah's "--> Using cache <id>" and "--> Cache pulled from remote <repo>:<key>": the
    /// log says which steps did not run, and which came from `CACHE_REPOSITORY`.
    static func isCacheHit(_ line: String) -> Bool {
        line.hasPrefix("--> Using cache ") || line.hasPrefix("--> Cache pulled from remote ")
    }

    static func lastLine(_ result: CommandResult) -> String {
        let text = (result.errorText + "\n" + result.outputText).split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        return text.last(where: { $0.lowercased().contains("error") }) ?? text.last(where: { !$0.isEmpty })
            ?? "exit \(result.status)"
    }
}

extension ErrorKind where Owner == Buildah.Failure {
    /// buildah could not be run, or failed.
    public static var buildahFailed: Self { Self("buildah failed") }
}
