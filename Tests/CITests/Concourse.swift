import Foundation
import TestSupport
import Testing

/// Plays a pipeline's steps as Concourse runs them, with the built binaries:
///
/// - `check`: `check` with `{"source","version"}` on stdin, in a check container whose
///   temporary directory survives between checks of one resource (as Concourse keeps it);
/// - a job build: one directory where each step's artifact is a subdirectory named after
///   the step, as Concourse mounts them;
///   - `get`: `in <build>/<name>` with `{"source","version","params"}`;
///   - `task`: build-task run in the build directory, params as its environment, its layer
///     cache shared between builds (a task's `caches:`);
///   - `put`: `out <build>` with `{"source","params"}`, then the implicit get of the version
///     it returned, with `get_params`.
///
/// Every step's JSON and log is kept in `transcript`, for a failing test's message.
final class Concourse: @unchecked Sendable {
    let root: URL
    private(set) var transcript: [String] = []
    private var builds = 0

    init(root: URL) {
        self.root = root
    }

    struct StepFailure: Error, CustomStringConvertible {
        let description: String
    }

    private func environment(tmp: URL? = nil) -> [String: String] {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": root.appendingPathComponent("home").path]
        if let tmp { env["TMPDIR"] = tmp.path }
        return env
    }

    private func run(_ product: String, _ arguments: [String], request: [String: Any], tmp: URL? = nil) throws -> [String: Any] {
        let input = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        let result = try runProcess(try builtProduct(product).path, arguments, stdin: input, environment: environment(tmp: tmp))
        transcript.append("\(product) \(arguments.joined(separator: " ")) <<< \(String(decoding: input, as: UTF8.self))\n\(result.stderrString)>>> \(result.stdoutString)")
        guard result.succeeded else {
            throw StepFailure(description: "\(product) failed: \(result.stderrString.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] ?? nil, "\(product) printed no JSON object")
    }

    /// `check` of a resource; `name` keys its check container.
    func check(_ name: String, source: [String: Any], from version: [String: String]? = nil) throws -> [[String: String]] {
        let tmp = root.appendingPathComponent("check-\(name)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        var request: [String: Any] = ["source": source]
        if let version { request["version"] = version }
        let input = try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys])
        let result = try runProcess(try builtProduct("check").path, [], stdin: input, environment: environment(tmp: tmp))
        transcript.append("check \(name) <<< \(String(decoding: input, as: UTF8.self))\n\(result.stderrString)>>> \(result.stdoutString)")
        guard result.succeeded else { throw StepFailure(description: "check \(name) failed: \(result.stderrString)") }
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [[String: String]], "check printed no version list")
    }

    /// A new job build.
    func build() throws -> Build {
        builds += 1
        let directory = root.appendingPathComponent("build-\(builds)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return Build(concourse: self, directory: directory)
    }

    final class Build {
        let concourse: Concourse
        let directory: URL

        init(concourse: Concourse, directory: URL) {
            self.concourse = concourse
            self.directory = directory
        }

        /// `get: name` of `version`; returns the response (version and metadata).
        @discardableResult
        func get(_ name: String, source: [String: Any], version: [String: String], params: [String: Any] = [:]) throws -> [String: Any] {
            try concourse.run("in", [directory.appendingPathComponent(name).path], request: ["source": source, "version": version, "params": params])
        }

        /// `put: name`, then its implicit get; returns the version.
        @discardableResult
        func put(_ name: String, source: [String: Any], params: [String: Any], getParams: [String: Any] = ["image": "skip", "source": false])
            throws -> [String: String] {
            let response = try concourse.run("out", [directory.path], request: ["source": source, "params": params])
            let version = try #require(response["version"] as? [String: String], "out returned no version")
            try get(name, source: source, version: version, params: getParams)
            return version
        }

        /// A task running build-task, its params as the environment (a Concourse task's
        /// params), `cache` shared between builds as a task's `caches:`.
        @discardableResult
        func buildTask(_ params: [String: String], cache: String = "build-task") throws -> String {
            var env = concourse.environment()
            env["CACHE"] = concourse.root.appendingPathComponent("cache-\(cache)").path
            env.merge(params) { $1 }
            let result = try runProcess(try builtProduct("build-task").path, [], environment: env, currentDirectory: directory)
            concourse.transcript.append("task build-task \(params)\n\(result.stderrString)")
            guard result.succeeded else { throw StepFailure(description: "build-task failed: \(result.stderrString)") }
            return result.stderrString
        }

        /// A file an earlier step wrote, trimmed.
        func read(_ path: String) throws -> String {
            try String(contentsOf: directory.appendingPathComponent(path), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// The transcript, for a failing expectation's message.
    var log: String { transcript.joined(separator: "\n---\n") }
}
