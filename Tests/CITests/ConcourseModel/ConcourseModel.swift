import Foundation
import TestSupport
import Testing
import Yams

/// A model of Concourse's scheduling that plays the pipeline files in `ci/pipelines/` as
/// they are, with the built binaries, real git, a real registry and real buildah beneath.
/// What it models, each rule read from Concourse's source (docs/concourse-model.md):
///
/// - **Versions** (`atc/db/resource_config_scope.go`): each pipeline keeps its own version
///   history per resource, oldest first. A check is sent the newest saved version; when it
///   returns at least one version not seen before, every returned version moves to the top in
///   the order returned. A put's version (`SaveOutput`) is added as the newest only if new.
/// - **Inputs** (`atc/scheduler/algorithm`): a job's inputs are its get steps. Without
///   `passed:`, the newest version (or the pinned one). With `passed:`, a version some
///   successful build of every listed job used (as input or output); inputs that share a
///   passed job come from the same build of it; builds are walked newest first, backtracking.
/// - **Triggering** (`atc/scheduler`): a job runs when the resolved set has a `trigger: true`
///   input whose version no earlier build of the job (of any status) used under that name.
/// - **Running**: every job triggered in one round resolves its inputs before any of them
///   runs (builds of different jobs start together), and they run downstream first (the
///   reverse of the files' order), so no job may rely on a sibling of its round having
///   finished; after a round every resource is checked again; rounds go on until nothing
///   triggers.
/// - **Steps** (`atc/exec`): `get` runs `in <build>/<name>`; `put` runs `out <build>` with
///   every artifact (or `inputs:`), saves the version and runs the implicit get with
///   `get_params` (unless `no_get`); `task` (inline or `file:` from an artifact) runs with its
///   params (step over config, non-strings as JSON) as the environment, `input_mapping`,
///   `output_mapping`, fresh outputs, `caches:` kept per pipeline, job and step, and
///   `image: <artifact>` run inside that artifact's `rootfs/` with its `metadata.json` env;
///   `in_parallel`, `do`, `try`, `attempts` and the hooks. With `replayPuts`, every put runs
///   twice and must return the same version (Concourse may run a put again). Get, put and task get Concourse's
///   `BUILD_*` variables; check gets none.
///
/// Not modelled: concurrency inside a round (steps run one after another), `serial_groups`,
/// `max_in_flight`, timers (`time` resources tick when a scenario says so), pausing, worker
/// placement (`tags:`), and the container itself: resource steps and tasks whose
/// `image_resource` is the Slipway image run on this host with the built binaries on `PATH`,
/// in a mount namespace whose CA bundle trusts the test registry (as an operator's image
/// would), so `privileged:` is not enforced here.
final class ConcourseModel: @unchecked Sendable {
    typealias Version = [String: String]

    struct ModelError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    enum Status: String { case succeeded, failed }

    struct Input {
        let name: String
        let resource: String
        let version: Version
    }

    /// One job build, as the database keeps it: what it used and made.
    struct BuildRecord {
        let id: Int
        let pipeline: String
        let job: String
        let inputs: [Input]
        var outputs: [(resource: String, version: Version)] = []
        var status: Status = .succeeded
        var failure: String?

        func used(_ resource: String) -> [Version] {
            inputs.filter { $0.resource == resource }.map(\.version)
                + outputs.filter { $0.resource == resource }.map(\.version)
        }
    }

    final class Pipeline {
        let name: String
        let config: PipelineConfig
        let vars: [String: Any]
        var versions: [String: [Version]] = [:]
        var builds: [BuildRecord] = []
        /// Every failed check, in order: Concourse shows the resource errored until one passes.
        var checkFailures: [(resource: String, error: String)] = []

        init(name: String, config: PipelineConfig, vars: [String: Any]) {
            self.name = name
            self.config = config
            self.vars = vars
        }

        func job(_ name: String) throws -> PipelineConfig.Job {
            guard let job = config.jobs.first(where: { $0.name == name }) else {
                throw ModelError("pipeline \(self.name) has no job \(name)")
            }
            return job
        }
    }

    let root: URL
    /// Variables every pipeline gets, as `fly set-pipeline -l vars.yml` gives them.
    let globalVars: [String: Any]
    /// A CA bundle the resource containers and tasks trust (the system's plus the test CA).
    let caBundle: URL?
    private(set) var pipelines: [String: Pipeline] = [:]
    private(set) var pipelineOrder: [String] = []
    private(set) var transcript: [String] = []
    private var nextBuildID = 1
    /// Whether every put runs twice, as a retried step or a re-run build would, and must give
    /// the same version both times (puts are idempotent).
    var replayPuts = false
    /// Called after every job build, with the pipeline and the build: invariants go here.
    var afterBuild: ((Pipeline, BuildRecord) throws -> Void)?

    init(root: URL, vars: [String: Any], trustedCA: String?) throws {
        self.root = root
        self.globalVars = vars
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("bin"), withIntermediateDirectories: true)
        for product in ["check", "in", "out", "build-task"] {
            let link = root.appendingPathComponent("bin/\(product)")
            try? FileManager.default.removeItem(at: link)
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: try builtProduct(product))
        }
        if let trustedCA {
            let bundle = root.appendingPathComponent("ca-certificates.crt")
            let system = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
            try (system + "\n" + trustedCA).write(to: bundle, atomically: true, encoding: .utf8)
            caBundle = bundle
        } else {
            caBundle = nil
        }
    }

    var log: String { transcript.suffix(60).joined(separator: "\n---\n") }

    func note(_ line: String) { transcript.append(line) }

    // MARK: Pipelines

    /// `fly set-pipeline -p name -c file -v …`: a new pipeline starts with no versions; an
    /// existing one keeps its versions and builds, with the new config.
    func setPipeline(_ name: String, file: URL, vars: [String: Any]) throws {
        let all = globalVars.merging(vars) { $1 }
        let config = try PipelineConfig.load(file, vars: all)
        let pipeline = Pipeline(name: name, config: config, vars: all)
        if let existing = pipelines[name] {
            pipeline.versions = existing.versions
            pipeline.builds = existing.builds
        } else {
            pipelineOrder.append(name)
        }
        pipelines[name] = pipeline
        note("set-pipeline \(name) -c \(file.lastPathComponent) \(vars)")
    }

    /// Runs `ci/set-pipeline --dry-run <arguments>` in `checkout` and plays the fly command it
    /// prints: set-pipeline (with its `-v` variables) or destroy-pipeline.
    func setPipelineWithScript(_ arguments: [String], in checkout: URL) throws {
        let script = CIPaths.ci.appendingPathComponent("set-pipeline").path
        let result = try runProcess(
            script, ["--dry-run"] + arguments, environment: ["PATH": "/usr/bin:/bin", "HOME": root.path],
            currentDirectory: checkout)
        guard result.succeeded else { throw ModelError("ci/set-pipeline failed: \(result.stderrString)") }
        let words = try shellWords(result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines))
        guard words.first == "fly", words.count > 3 else {
            throw ModelError("ci/set-pipeline printed no fly command: \(result.stdoutString)")
        }
        var name: String?
        var file: URL?
        var vars: [String: Any] = [:]
        var index = 3
        while index < words.count {
            let word = words[index]
            let value = index + 1 < words.count ? words[index + 1] : ""
            switch word {
            case "-p":
                name = value
                index += 2
            case "-c":
                file = URL(fileURLWithPath: value, relativeTo: checkout)
                index += 2
            case "-v":
                let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
                vars[parts[0]] = parts.count > 1 ? parts[1] : ""
                index += 2
            default: index += 1
            }
        }
        guard let name else { throw ModelError("no -p in \(words)") }
        switch words[3] {
        case "set-pipeline":
            guard let file else { throw ModelError("no -c in \(words)") }
            try setPipeline(name, file: file, vars: vars)
        case "destroy-pipeline":
            pipelines[name] = nil
            pipelineOrder.removeAll { $0 == name }
            note("destroy-pipeline \(name)")
        default:
            throw ModelError("unexpected fly command \(words)")
        }
    }

    func pipeline(_ name: String) throws -> Pipeline {
        guard let pipeline = pipelines[name] else { throw ModelError("no pipeline \(name); set: \(pipelineOrder)") }
        return pipeline
    }

    // MARK: Checking

    /// Checks every resource of every pipeline once.
    func checkAll() throws {
        for name in pipelineOrder {
            let pipeline = try self.pipeline(name)
            for resource in pipeline.config.resourceOrder { try check(pipeline, resource) }
        }
    }

    /// One check of a resource from its newest saved version, saved as Concourse saves it.
    func check(_ pipeline: Pipeline, _ name: String) throws {
        guard let resource = pipeline.config.resources[name] else { throw ModelError("no resource \(name)") }
        guard resource.type == "slipway" else { return }  // `time` ticks only when a scenario says so
        var request: [String: Any] = ["source": resource.source]
        if let newest = pipeline.versions[name]?.last { request["version"] = newest }
        // Concourse keeps a check container, and its /tmp, per resource config.
        let tmp = root.appendingPathComponent("checks/\(pipeline.name)/\(name)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let result = try run(["check"], stdin: try json(request), environment: ["TMPDIR": tmp.path], directory: tmp)
        note(
            "check \(pipeline.name)/\(name) from \(pipeline.versions[name]?.last ?? [:])\n\(result.stderrString)>>> \(result.stdoutString)"
        )
        guard result.succeeded else {
            pipeline.checkFailures.append((name, result.stderrString.trimmingCharacters(in: .whitespacesAndNewlines)))
            return
        }
        guard let returned = try JSONSerialization.jsonObject(with: result.stdout) as? [[String: String]] else {
            throw ModelError("check \(name) printed no version list: \(result.stdoutString)")
        }
        save(returned, in: pipeline, resource: name)
    }

    func save(_ returned: [Version], in pipeline: Pipeline, resource: String) {
        var versions = pipeline.versions[resource] ?? []
        guard returned.contains(where: { !versions.contains($0) }) else { return }
        for version in returned {
            versions.removeAll { $0 == version }
            versions.append(version)
        }
        pipeline.versions[resource] = versions
    }

    /// A new version of a `time` resource, as its interval passing would make one.
    func tick(_ pipelineName: String, _ resource: String) throws {
        let pipeline = try self.pipeline(pipelineName)
        let count = pipeline.versions[resource]?.count ?? 0
        pipeline.versions[resource, default: []].append(["time": "tick-\(count + 1)"])
    }

    // MARK: Scheduling

    /// Input resolution for one job, or nil when some input has no acceptable version.
    func resolve(_ job: PipelineConfig.Job, in pipeline: Pipeline) -> [Input]? {
        let gets = job.inputs
        var chosenBuild: [String: Int] = [:]
        var chosen: [Input] = []

        func search(_ index: Int) -> Bool {
            if index == gets.count { return true }
            let get = gets[index]
            let history = pipeline.versions[get.resource] ?? []
            if let pinned = get.pinned {
                guard history.contains(pinned) else { return false }
                return attempt(get, pinned, index)
            }
            guard let first = get.passed.first else {
                guard let newest = history.last else { return false }
                return attempt(get, newest, index)
            }
            // Walk the first passed job's successful builds newest first; each version they used
            // must also have been used by a consistent build of every other passed job.
            let candidates = pipeline.builds.reversed().filter { $0.job == first && $0.status == .succeeded }
            for build in candidates where chosenBuild[first] == nil || chosenBuild[first] == build.id {
                var tried: [Version] = []
                for version in build.used(get.resource).reversed() where !tried.contains(version) {
                    tried.append(version)
                    let saved = chosenBuild
                    chosenBuild[first] = build.id
                    if assignOthers(get.passed.dropFirst(), get.resource, version, { attempt(get, version, index) }) {
                        return true
                    }
                    chosenBuild = saved
                }
            }
            return false
        }

        func assignOthers(_ jobs: ArraySlice<String>, _ resource: String, _ version: Version, _ then: () -> Bool)
            -> Bool
        {
            guard let job = jobs.first else { return then() }
            for build in pipeline.builds.reversed()
            where build.job == job && build.status == .succeeded && build.used(resource).contains(version) {
                if let fixed = chosenBuild[job], fixed != build.id { continue }
                let saved = chosenBuild
                chosenBuild[job] = build.id
                if assignOthers(jobs.dropFirst(), resource, version, then) { return true }
                chosenBuild = saved
            }
            return false
        }

        func attempt(_ get: PipelineConfig.Get, _ version: Version, _ index: Int) -> Bool {
            chosen.append(Input(name: get.name, resource: get.resource, version: version))
            if search(index + 1) { return true }
            chosen.removeLast()
            return false
        }

        return search(0) ? chosen : nil
    }

    /// Whether a resolved input set triggers the job: a `trigger: true` input whose version
    /// is a first occurrence for the job under that input name.
    func triggers(_ job: PipelineConfig.Job, _ inputs: [Input], in pipeline: Pipeline) -> Bool {
        let triggering = Set(job.inputs.filter(\.trigger).map(\.name))
        return inputs.contains { input in
            triggering.contains(input.name)
                && !pipeline.builds.contains {
                    $0.job == job.name && $0.inputs.contains { $0.name == input.name && $0.version == input.version }
                }
        }
    }

    /// Checks, schedules and runs until no job triggers; returns the builds it ran.
    @discardableResult
    func runUntilQuiet(maxRounds: Int = 30) throws -> [BuildRecord] {
        var ran: [BuildRecord] = []
        for _ in 0..<maxRounds {
            try checkAll()
            var round: [(Pipeline, PipelineConfig.Job, [Input])] = []
            for name in pipelineOrder {
                let pipeline = try self.pipeline(name)
                for job in pipeline.config.jobs {
                    if let inputs = resolve(job, in: pipeline), triggers(job, inputs, in: pipeline) {
                        round.append((pipeline, job, inputs))
                    }
                }
            }
            if round.isEmpty { return ran }
            // Builds of one round run at once in Concourse, in no set order. The model runs them
            // one after another, downstream first (the reverse of the files' order), so a job
            // that relies on a sibling of its round having finished is caught, not lucky.
            for (pipeline, job, inputs) in round.reversed() where pipelines[pipeline.name] === pipeline {
                ran.append(try runBuild(pipeline, job, inputs))
            }
        }
        throw ModelError("still triggering after \(maxRounds) rounds:\n\(log)")
    }

    /// `fly trigger-job`: one build of the job with its resolved inputs, triggered or not.
    @discardableResult
    func triggerJob(_ pipelineName: String, _ jobName: String) throws -> BuildRecord {
        try checkAll()
        let pipeline = try self.pipeline(pipelineName)
        let job = try pipeline.job(jobName)
        guard let inputs = resolve(job, in: pipeline) else {
            throw ModelError("\(pipelineName)/\(jobName): inputs do not resolve")
        }
        return try runBuild(pipeline, job, inputs)
    }

    /// `fly execute -c <file> -i name=<dir> --privileged`: a one-off build of a task file
    /// with local inputs, each param the file declares overridden by the variable of the same
    /// name in `environment` (fly's OverrideTaskParams). Returns the build's directory, whose
    /// subdirectories are its outputs.
    @discardableResult
    func execute(_ taskFile: URL, inputs: [String: URL], environment: [String: String], vars: [String: Any] = [:])
        throws -> URL
    {
        let text = try String(contentsOf: taskFile, encoding: .utf8)
        let loaded = try PipelineConfig.interpolate(
            try Yams.load(yaml: text) as Any, vars: globalVars.merging(vars) { $1 })
        guard var config = loaded as? [String: Any] else {
            throw ModelError("\(taskFile.lastPathComponent) is not a task config")
        }
        var params = config["params"] as? [String: Any] ?? [:]
        for key in params.keys { if let value = environment[key] { params[key] = value } }
        config["params"] = params
        let pipeline = Pipeline(name: "one-off", config: try PipelineConfig([:]), vars: globalVars)
        let task = PipelineConfig.Task(
            name: "one-off", config: config, file: nil, params: [:], vars: [:], image: nil, privileged: true,
            inputMapping: [:], outputMapping: [:])
        let job = PipelineConfig.Job(name: "one-off", plan: [PipelineConfig.Step(action: .task(task))])
        let id = nextBuildID
        nextBuildID += 1
        let build = BuildRun(model: self, pipeline: pipeline, job: job, inputs: [], id: id, number: 1)
        for (name, directory) in inputs { try BuildRun.copy(directory, to: build.artifact(name)) }
        note("fly execute -c \(taskFile.lastPathComponent) \(inputs.keys.sorted()) with \(environment.keys.sorted())")
        for step in job.plan { try build.run(step) }
        return build.directory
    }

    // MARK: Builds

    private func runBuild(_ pipeline: Pipeline, _ job: PipelineConfig.Job, _ inputs: [Input]) throws -> BuildRecord {
        let id = nextBuildID
        nextBuildID += 1
        var record = BuildRecord(id: id, pipeline: pipeline.name, job: job.name, inputs: inputs)
        let number = pipeline.builds.filter { $0.job == job.name }.count + 1
        let build = BuildRun(model: self, pipeline: pipeline, job: job, inputs: inputs, id: id, number: number)
        note("build \(id): \(pipeline.name)/\(job.name) #\(number) inputs \(inputs.map { "\($0.name)=\($0.version)" })")
        do {
            for step in job.plan { try build.run(step) }
        } catch {
            record.status = .failed
            record.failure = "\(error)"
            note("build \(id) failed: \(error)")
        }
        record.outputs = build.outputs
        pipeline.builds.append(record)
        for (resource, version) in build.outputs { saveOutput(version, in: pipeline, resource: resource) }
        try afterBuild?(pipeline, record)
        return record
    }

    func saveOutput(_ version: Version, in pipeline: Pipeline, resource: String) {
        if !(pipeline.versions[resource] ?? []).contains(version) {
            pipeline.versions[resource, default: []].append(version)
        }
    }

    // MARK: Processes

    /// Runs a command as a container would: this host with the built binaries first on PATH,
    /// in a mount namespace where the system CA bundle also trusts the test registry.
    func run(_ command: [String], stdin: Data? = nil, environment: [String: String], directory: URL) throws
        -> ProcessResult
    {
        var env = [
            "PATH": "\(root.path)/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": root.appendingPathComponent("home").path,
        ]
        env.merge(environment) { $1 }
        guard let caBundle else {
            return try runProcess(
                command[0], Array(command.dropFirst()), stdin: stdin, environment: env, currentDirectory: directory)
        }
        let wrapper = "mount --bind \"$0\" /etc/ssl/certs/ca-certificates.crt && exec \"$@\""
        return try runProcess(
            "/usr/bin/unshare", ["-m", "/bin/sh", "-c", wrapper, caBundle.path] + command, stdin: stdin,
            environment: env,
            currentDirectory: directory)
    }

    func json(_ value: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
    }

    /// Splits a line the way a POSIX shell would split set-pipeline's quoted dry run: words
    /// in single quotes, and `\'` between them (its quote for a `'`).
    func shellWords(_ line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted {
                if character == "'" { quoted = false } else { current.append(character) }
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == "'" {
                quoted = true
                inWord = true
            } else if character == " " {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard !quoted, !escaped else { throw ModelError("unbalanced quote in \(line)") }
        if inWord { words.append(current) }
        return words
    }
}
