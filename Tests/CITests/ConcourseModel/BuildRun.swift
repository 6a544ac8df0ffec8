import Foundation
import TestSupport
import Testing
import Yams

/// One job build being played: a directory whose subdirectories are the build's artifacts,
/// named as Concourse names them (a get's or put's name, a task output after
/// `output_mapping`).
final class BuildRun {
    typealias Version = ConcourseModel.Version

    struct StepFailure: Error, CustomStringConvertible {
        let description: String
    }

    let model: ConcourseModel
    let pipeline: ConcourseModel.Pipeline
    let job: PipelineConfig.Job
    let inputs: [String: ConcourseModel.Input]
    let id: Int
    let number: Int
    let directory: URL
    private(set) var outputs: [(resource: String, version: Version)] = []
    private var tasks = 0

    init(
        model: ConcourseModel, pipeline: ConcourseModel.Pipeline, job: PipelineConfig.Job,
        inputs: [ConcourseModel.Input], id: Int, number: Int
    ) {
        self.model = model
        self.pipeline = pipeline
        self.job = job
        self.inputs = Dictionary(inputs.map { ($0.name, $0) }) { first, _ in first }
        self.id = id
        self.number = number
        self.directory = model.root.appendingPathComponent("builds/\(id)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Concourse's build metadata, given to get, put and task (never to check).
    var buildEnvironment: [String: String] {
        [
            "BUILD_ID": "\(id)", "BUILD_NAME": "\(number)", "BUILD_JOB_NAME": job.name,
            "BUILD_PIPELINE_NAME": pipeline.name,
            "BUILD_TEAM_NAME": "main", "ATC_EXTERNAL_URL": "http://concourse.example",
        ]
    }

    func artifact(_ name: String) -> URL { directory.appendingPathComponent(name) }

    // MARK: Steps

    func run(_ step: PipelineConfig.Step) throws {
        var lastError: Error?
        for _ in 0..<max(step.attempts, 1) {
            do {
                try perform(step.action)
                lastError = nil
                break
            } catch {
                lastError = error
            }
        }
        if let lastError {
            if let hook = step.onFailure { try run(hook) }
            if let hook = step.ensure { try run(hook) }
            throw lastError
        }
        if let hook = step.onSuccess { try run(hook) }
        if let hook = step.ensure { try run(hook) }
    }

    private func perform(_ action: PipelineConfig.Action) throws {
        switch action {
        case .get(let get): try self.get(get)
        case .put(let put): try self.put(put)
        case .task(let task): try self.task(task)
        case .inParallel(let steps):
            // Every branch runs; the step fails if any did (fail_fast not modelled).
            var failure: Error?
            for step in steps {
                do { try run(step) } catch { failure = failure ?? error }
            }
            if let failure { throw failure }
        case .sequence(let steps):
            for step in steps { try run(step) }
        case .attempt(let step):
            do { try run(step) } catch { model.note("try: \(error)") }
        }
    }

    private func resource(_ name: String) throws -> PipelineConfig.Resource {
        guard let resource = pipeline.config.resources[name] else {
            throw StepFailure(description: "no resource \(name)")
        }
        return resource
    }

    private func get(_ get: PipelineConfig.Get) throws {
        guard let input = inputs[get.name] else {
            throw StepFailure(description: "get \(get.name) has no resolved version")
        }
        let resource = try resource(get.resource)
        try fetch(resource, version: input.version, into: get.name, params: get.params)
    }

    /// `in` (or the `time` type's nothing) into a fresh artifact directory.
    private func fetch(_ resource: PipelineConfig.Resource, version: Version, into name: String, params: [String: Any])
        throws
    {
        let destination = artifact(name)
        try? FileManager.default.removeItem(at: destination)
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        guard resource.type == "slipway" else {
            try model.json(version).write(to: destination.appendingPathComponent("version.json"))
            return
        }
        let request: [String: Any] = ["source": resource.source, "version": version, "params": params]
        _ = try invoke("in", [destination.path], request: request)
    }

    private func put(_ put: PipelineConfig.Put) throws {
        let resource = try resource(put.resource)
        guard resource.type == "slipway" else {
            throw StepFailure(description: "put to a \(resource.type) resource is not modelled")
        }
        // out runs in a directory holding the build's artifacts (all, or `inputs:`).
        var workDirectory = directory
        if let names = put.inputs {
            workDirectory = model.root.appendingPathComponent("puts/\(id)-\(put.name)")
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
            for name in names where FileManager.default.fileExists(atPath: artifact(name).path) {
                try Self.copy(artifact(name), to: workDirectory.appendingPathComponent(name))
            }
        }
        let response = try invoke(
            "out", [workDirectory.path], request: ["source": resource.source, "params": put.params])
        guard let version = response["version"] as? [String: String] else {
            throw StepFailure(description: "out returned no version")
        }
        if model.replayPuts {
            // A put run again (a retried step, a re-run build) must succeed with the same version.
            let again = try invoke(
                "out", [workDirectory.path], request: ["source": resource.source, "params": put.params])
            guard again["version"] as? [String: String] == version else {
                throw StepFailure(
                    description: "put \(put.name) run again returned \(again["version"] ?? "nothing"), not \(version)")
            }
        }
        outputs.append((put.resource, version))
        // The output is saved before the implicit get, as the exec engine does.
        model.saveOutput(version, in: pipeline, resource: put.resource)
        if !put.noGet { try fetch(resource, version: version, into: put.name, params: put.getParams) }
    }

    private func invoke(_ product: String, _ arguments: [String], request: [String: Any]) throws -> [String: Any] {
        let input = try model.json(request)
        let result = try model.run(
            [product] + arguments, stdin: input, environment: buildEnvironment, directory: directory)
        model.note(
            "\(pipeline.name)/\(job.name) #\(number): \(product) \(String(decoding: input, as: UTF8.self).prefix(600))\n\(result.stderrString)>>> \(result.stdoutString)"
        )
        guard result.succeeded else {
            throw StepFailure(
                description: "\(product) failed: \(result.stderrString.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        guard let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] else {
            throw StepFailure(description: "\(product) printed no JSON object")
        }
        return object
    }

    // MARK: Tasks

    private func task(_ task: PipelineConfig.Task) throws {
        tasks += 1
        let config = try taskConfig(task)
        let work = model.root.appendingPathComponent("tasks/\(id)-\(tasks)-\(task.name)")
        try? FileManager.default.removeItem(at: work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)

        // Inputs: a copy of each artifact (Concourse mounts a copy-on-write volume).
        for case let input as [String: Any] in config["inputs"] as? [Any] ?? [] {
            guard let name = input["name"] as? String else {
                throw StepFailure(description: "task \(task.name): an input without a name")
            }
            let source = artifact(task.inputMapping[name] ?? name)
            guard FileManager.default.fileExists(atPath: source.path) else {
                if input["optional"] as? Bool == true { continue }
                throw StepFailure(description: "task \(task.name): missing input \(task.inputMapping[name] ?? name)")
            }
            try Self.copy(source, to: work.appendingPathComponent(input["path"] as? String ?? name))
        }
        var outputPaths: [(artifact: String, path: String)] = []
        for case let output as [String: Any] in config["outputs"] as? [Any] ?? [] {
            guard let name = output["name"] as? String else {
                throw StepFailure(description: "task \(task.name): an output without a name")
            }
            let path = output["path"] as? String ?? name
            try FileManager.default.createDirectory(
                at: work.appendingPathComponent(path), withIntermediateDirectories: true)
            outputPaths.append((task.outputMapping[name] ?? name, path))
        }
        // Caches live per pipeline, job and step; moved in and out around the run.
        var caches: [(kept: URL, mounted: URL)] = []
        for case let cache as [String: Any] in config["caches"] as? [Any] ?? [] {
            guard let path = cache["path"] as? String else { continue }
            let kept = model.root.appendingPathComponent("caches/\(pipeline.name)/\(job.name)/\(task.name)/\(path)")
            try FileManager.default.createDirectory(at: kept, withIntermediateDirectories: true)
            let mounted = work.appendingPathComponent(path)
            try? FileManager.default.removeItem(at: mounted)
            try FileManager.default.createDirectory(
                at: mounted.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.moveItem(at: kept, to: mounted)
            caches.append((kept, mounted))
        }
        defer { for cache in caches { try? FileManager.default.moveItem(at: cache.mounted, to: cache.kept) } }

        var environment = buildEnvironment
        let params = (config["params"] as? [String: Any] ?? [:]).merging(task.params) { $1 }
        for (key, value) in params {
            if value is NSNull { continue }
            environment[key] = try (value as? String) ?? String(decoding: model.json(value), as: UTF8.self)
        }
        guard let run = config["run"] as? [String: Any], let path = run["path"] as? String else {
            throw StepFailure(description: "task \(task.name): no run.path")
        }
        let arguments = (run["args"] as? [Any] ?? []).map { "\($0)" }
        let result: ProcessResult
        if let image = task.image {
            result = try runInImage(
                artifact(image), work: work, command: [path] + arguments, environment: environment,
                dir: run["dir"] as? String)
        } else {
            let cwd = (run["dir"] as? String).map { work.appendingPathComponent($0) } ?? work
            result = try model.run([path] + arguments, environment: environment, directory: cwd)
        }
        model.note(
            "\(pipeline.name)/\(job.name) #\(number): task \(task.name) \(params.keys.sorted())\n\(result.stderrString.suffix(3000))"
        )
        guard result.succeeded else {
            throw StepFailure(
                description: "task \(task.name) failed (\(result.status)): \(result.stderrString.suffix(800))")
        }
        for (name, path) in outputPaths {
            try? FileManager.default.removeItem(at: artifact(name))
            try FileManager.default.moveItem(at: work.appendingPathComponent(path), to: artifact(name))
        }
    }

    /// The task's config: inline, or read from an artifact (`file:`), with `vars:`.
    private func taskConfig(_ task: PipelineConfig.Task) throws -> [String: Any] {
        if let config = task.config { return config }
        guard let file = task.file else {
            throw StepFailure(description: "task \(task.name) has neither config nor file")
        }
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        guard let loaded = try Yams.load(yaml: text) else {
            throw StepFailure(description: "task file \(file) is empty")
        }
        guard
            let config = try PipelineConfig.interpolate(loaded, vars: pipeline.vars.merging(task.vars) { $1 })
                as? [String: Any]
        else {
            throw StepFailure(description: "task file \(file) is not a map")
        }
        return config
    }

    /// `image: <artifact>`: the task runs with the artifact's `rootfs/` as its root and the
    /// `env` of its `metadata.json`, its inputs under the working directory.
    private func runInImage(_ image: URL, work: URL, command: [String], environment: [String: String], dir: String?)
        throws -> ProcessResult
    {
        let rootfs = image.appendingPathComponent("rootfs")
        let metadata =
            try JSONSerialization.jsonObject(with: Data(contentsOf: image.appendingPathComponent("metadata.json")))
            as? [String: Any] ?? [:]
        var env: [String: String] = [:]
        for case let pair as String in metadata["env"] as? [Any] ?? [] {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            env[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        env.merge(environment) { $1 }
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        let inside = "/tmp/build/\(id)"
        let mounted = rootfs.appendingPathComponent(String(inside.dropFirst()))
        try? FileManager.default.removeItem(at: mounted)
        try FileManager.default.createDirectory(
            at: mounted.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Self.copy(work, to: mounted)
        defer { try? FileManager.default.removeItem(at: mounted) }
        let cwd = dir.map { "\(inside)/\($0)" } ?? inside
        return try runProcess("/usr/bin/unshare", ["--root=\(rootfs.path)", "--wd=\(cwd)"] + command, environment: env)
    }

    /// A copy of an artifact, as Concourse mounts a copy-on-write volume of it.
    static func copy(_ source: URL, to destination: URL) throws {
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let result = try runProcess("/bin/cp", ["-a", "--reflink=auto", source.path, destination.path])
        guard result.succeeded else { throw StepFailure(description: "cp \(source.path): \(result.stderrString)") }
    }
}
