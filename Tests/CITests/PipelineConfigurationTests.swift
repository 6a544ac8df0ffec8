import Builder
import Foundation
import Testing
import Yams

@testable import Resource

/// Every pipeline in ci/ is read as Concourse would read it, and each resource source, get
/// and put param and build-task param is checked against what the binaries accept, so the
/// examples cannot rot when a key changes.
@Suite("ci/ pipelines match the configuration the binaries accept")
struct PipelineConfigurationTests {
    static let pipelines: [URL] = {
        let directory = CIPaths.ci.appendingPathComponent("pipelines")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yml") }.sorted().map { directory.appendingPathComponent($0) }
    }()

    /// `((name))` replaced as a credential manager would, with values of the right shape.
    static func interpolated(_ text: String) -> String {
        let values = [
            "registry": "registry.example.com", "git-uri": "https://git.example.com/team/repo.git", "branch": "main",
            "slipway-image": "registry.example.com/slipway/slipway",
            "lock-repository": "https://git.example.com/team/locks.git",
            "custom-tag": "my-experiment",
            "git-private-key": "\"-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----\\n\"",
        ]
        var result = text
        while let open = result.range(of: "(("),
            let close = result.range(of: "))", range: open.upperBound..<result.endIndex)
        {
            let name = String(result[open.upperBound..<close.lowerBound])
            result.replaceSubrange(open.lowerBound..<close.upperBound, with: values[name] ?? "secret-\(name)")
        }
        return result
    }

    static func load(_ file: URL) throws -> [String: Any] {
        let text = interpolated(try String(contentsOf: file, encoding: .utf8))
        return try #require(try Yams.load(yaml: text) as? [String: Any], "\(file.lastPathComponent) is not a YAML map")
    }

    static func json(_ value: Any?) throws -> Data {
        try JSONSerialization.data(withJSONObject: value ?? [String: Any](), options: [.fragmentsAllowed])
    }

    /// Every step of a plan, through in_parallel, do, try and hooks.
    static func steps(_ plan: [Any]) -> [[String: Any]] {
        var result: [[String: Any]] = []
        for case let step as [String: Any] in plan {
            result.append(step)
            if let parallel = step["in_parallel"] {
                let inner = (parallel as? [Any]) ?? ((parallel as? [String: Any])?["steps"] as? [Any]) ?? []
                result += steps(inner)
            }
            if let inner = step["do"] as? [Any] { result += steps(inner) }
            for hook in ["try", "on_success", "on_failure", "on_abort", "on_error", "ensure"] {
                if let inner = step[hook] as? [String: Any] { result += steps([inner]) }
            }
        }
        return result
    }

    @Test func thereIsOnePipelinePerSeedWorkflow() {
        let names = Self.pipelines.map { $0.lastPathComponent }
        for seed in ["000", "001", "002", "003", "004"] {
            #expect(names.contains { $0.hasPrefix(seed + "-") }, "no pipeline for seed \(seed): \(names)")
        }
    }

    @Test(arguments: pipelines)
    func everySourceAndParamIsAccepted(_ file: URL) throws {
        let pipeline = try Self.load(file)
        let name = file.lastPathComponent
        let types = Set(((pipeline["resource_types"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
        var sources: [String: Source] = [:]
        var resources: Set<String> = []
        for resource in (pipeline["resources"] as? [[String: Any]]) ?? [] {
            let resourceName = try #require(resource["name"] as? String)
            resources.insert(resourceName)
            guard resource["type"] as? String == "slipway" else { continue }
            #expect(types.contains("slipway"), "\(name): resource type slipway is not declared")
            do { sources[resourceName] = try Source(JSONValue.parse(Self.json(resource["source"]))) } catch {
                Issue.record("\(name): resource \(resourceName): \(error)")
            }
        }
        #expect(!sources.isEmpty, "\(name) uses no slipway resource")

        let jobs = (pipeline["jobs"] as? [[String: Any]]) ?? []
        let jobNames = Set(jobs.compactMap { $0["name"] as? String })
        var builds = 0
        var pushes = 0
        for job in jobs {
            let jobName = job["name"] as? String ?? "?"
            for step in Self.steps(job["plan"] as? [Any] ?? []) {
                let at = "\(name): job \(jobName)"
                if let get = step["get"] as? String {
                    let resource = step["resource"] as? String ?? get
                    #expect(resources.contains(resource), "\(at): get of an undeclared resource \(resource)")
                    for passed in (step["passed"] as? [String]) ?? [] {
                        #expect(jobNames.contains(passed), "\(at): passed: \(passed) is no job")
                    }
                    if let source = sources[resource] {
                        do { _ = try In.params(JSONValue.parse(Self.json(step["params"])), source: source) } catch {
                            Issue.record("\(at): get \(get): \(error)")
                        }
                    }
                }
                if let put = step["put"] as? String {
                    if (step["params"] as? [String: Any])?["image"] != nil { pushes += 1 }
                    let resource = step["resource"] as? String ?? put
                    #expect(resources.contains(resource), "\(at): put to an undeclared resource \(resource)")
                    if let source = sources[resource] {
                        do { _ = try Out.params(JSONValue.parse(Self.json(step["params"])), source: source) } catch {
                            Issue.record("\(at): put \(put): \(error)")
                        }
                        do { _ = try In.params(JSONValue.parse(Self.json(step["get_params"])), source: source) } catch {
                            Issue.record("\(at): put \(put) get_params: \(error)")
                        }
                    }
                }
                if step["task"] != nil, let config = step["config"] as? [String: Any], Self.runsBuildTask(config) {
                    builds += 1
                    Self.checkBuildTaskParams(
                        config["params"] as? [String: Any] ?? [:], at: "\(at): task \(step["task"] ?? "")")
                    Self.checkBuildTaskParams(
                        step["params"] as? [String: Any] ?? [:], at: "\(at): task \(step["task"] ?? "") step params")
                }
            }
        }
        // A pipeline that pushes images builds them with build-task; one that only manages
        // published images (a reaper, a release: prune, promote, bump) builds nothing.
        #expect(builds > 0 || pushes == 0, "\(name) pushes images it does not build with build-task")
    }

    /// Concourse's own rules for a pipeline (ConcourseConfigLint: atc/configvalidate, atc/steps.go,
    /// atc/task.go, the artifacts atc/exec resolves), duplicate YAML keys included.
    @Test(arguments: pipelines)
    func followsConcoursesOwnRules(_ file: URL) throws {
        let text = Self.interpolated(try String(contentsOf: file, encoding: .utf8))
        for problem in ConcourseConfigLint.pipeline(text, taskFile: Self.taskFile) {
            Issue.record("\(file.lastPathComponent) \(problem)")
        }
    }

    /// The rules reach into the real files: a typo in a step and in a task config is caught in each.
    @Test(arguments: pipelines)
    func theConcourseRulesSeeIntoEveryPipeline(_ file: URL) throws {
        let text = Self.interpolated(try String(contentsOf: file, encoding: .utf8))
        try #require(text.contains("trigger: true"), "\(file.lastPathComponent) has no trigger: true")
        for (key, typo) in [("trigger: true", "triger: true"), ("platform: linux", "platfrom: linux")]
        where text.contains(key) {
            let problems = ConcourseConfigLint.pipeline(
                text.replacingOccurrences(of: key, with: typo), taskFile: Self.taskFile)
            #expect(
                problems.contains { $0.contains("unknown key '\(typo.prefix { $0 != ":" })'") },
                "\(file.lastPathComponent): \(problems)")
        }
    }

    static let taskFiles: [URL] = {
        let directory = CIPaths.ci.appendingPathComponent("tasks")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yml") }.sorted().map { directory.appendingPathComponent($0) }
    }()

    /// A task file's shape as atc/task.go NewTaskConfig reads it.
    @Test(arguments: taskFiles)
    func everyTaskFileFollowsConcoursesOwnRules(_ file: URL) throws {
        let text = Self.interpolated(try String(contentsOf: file, encoding: .utf8))
        for problem in ConcourseConfigLint.task(text) {
            Issue.record("ci/tasks/\(file.lastPathComponent) \(problem)")
        }
    }

    /// A `file:` step's task file, when it is one of this repository's (`<artifact>/…/ci/tasks/<name>.yml`).
    static func taskFile(_ path: String) -> String? {
        guard let range = path.range(of: "ci/tasks/") else { return nil }
        let file = CIPaths.ci.appendingPathComponent("tasks").appendingPathComponent(String(path[range.upperBound...]))
        return (try? String(contentsOf: file, encoding: .utf8)).map(interpolated)
    }

    /// A put's implicit get fetches the image and the checkout unless `get_params` says
    /// otherwise: a put whose artifact no later step of its job uses must skip both (or set
    /// `no_get`), or every build downloads what it just pushed.
    @Test(arguments: pipelines)
    func noPutDownloadsWhatNothingUses(_ file: URL) throws {
        let pipeline = try Self.load(file)
        let slipway = Set(
            ((pipeline["resources"] as? [[String: Any]]) ?? []).filter { $0["type"] as? String == "slipway" }.compactMap
            { $0["name"] as? String })
        for job in (pipeline["jobs"] as? [[String: Any]]) ?? [] {
            let steps = Self.steps(job["plan"] as? [Any] ?? [])
            for (index, step) in steps.enumerated() {
                guard let put = step["put"] as? String, slipway.contains(step["resource"] as? String ?? put),
                    step["no_get"] as? Bool != true
                else { continue }
                let used = steps[(index + 1)...].contains { Self.uses($0, artifact: put) }
                let getParams = step["get_params"] as? [String: Any] ?? [:]
                let skipsImage = getParams["image"] as? String == "skip" || getParams["skip_download"] as? Bool == true
                #expect(
                    used || skipsImage,
                    "\(file.lastPathComponent): job \(job["name"] ?? ""): put \(put) downloads its image though nothing after it uses \(put); set get_params: {image: skip, source: false}"
                )
            }
        }
    }

    /// Whether a step reads an artifact: a task input (after input_mapping), `image:`, `file:`,
    /// or a param path starting with it.
    static func uses(_ step: [String: Any], artifact: String) -> Bool {
        if step["image"] as? String == artifact { return true }
        if (step["file"] as? String)?.hasPrefix(artifact + "/") == true { return true }
        let mapping = step["input_mapping"] as? [String: String] ?? [:]
        if mapping.values.contains(artifact) { return true }
        if let config = step["config"] as? [String: Any] {
            for case let input as [String: Any] in config["inputs"] as? [Any] ?? []
            where input["name"] as? String == artifact && mapping[artifact] == nil {
                return true
            }
        }
        return PipelineConfig.strings(in: step["params"]).contains { $0 == artifact || $0.hasPrefix(artifact + "/") }
    }

    @Test func aPutWhoseImageNothingUsesIsCaught() throws {
        let used: [String: Any] = ["task": "t", "config": ["inputs": [["name": "app"]]]]
        #expect(Self.uses(used, artifact: "app"))
        #expect(Self.uses(["task": "t", "image": "app"], artifact: "app"))
        #expect(Self.uses(["put": "other", "params": ["promote": ["from": "app"]]], artifact: "app"))
        #expect(!Self.uses(["task": "t", "config": ["inputs": [["name": "source"]]]], artifact: "app"))
        #expect(
            !Self.uses(
                ["task": "t", "input_mapping": ["app": "other"], "config": ["inputs": [["name": "app"]]]],
                artifact: "app"))
    }

    @Test func theBuildTaskFileSetsOnlyKnownParams() throws {
        let task = try Self.load(CIPaths.ci.appendingPathComponent("tasks/build-task.yml"))
        #expect(Self.runsBuildTask(task))
        Self.checkBuildTaskParams(task["params"] as? [String: Any] ?? [:], at: "ci/tasks/build-task.yml")
    }

    @Test func anUnknownKeyIsCaughtWithTheBinariesMessage() throws {
        #expect(throws: InputError.self) {
            try Source(JSONValue.parse(Data(#"{"repository":"r.example/a","tagg":"x"}"#.utf8)))
        }
        let source = try Source(
            JSONValue.parse(Data(#"{"repository":"r.example/a","git":{"uri":"https://g.example/r.git"}}"#.utf8)))
        do {
            _ = try Out.params(JSONValue.parse(Data(#"{"imag":"image/oci"}"#.utf8)), source: source)
            Issue.record("an unknown put param passed")
        } catch {
            #expect("\(error)".contains("did you mean \"image\""), "\(error)")
        }
        #expect(throws: InputError.self) {
            _ = try In.params(JSONValue.parse(Data(#"{"format":"tarball"}"#.utf8)), source: source)
        }
        #expect(throws: InputError.self) {
            _ = try Out.params(JSONValue.parse(Data(#"{"prune":{"keep_latest":3}}"#.utf8)), source: source)
        }
    }

    static func runsBuildTask(_ config: [String: Any]) -> Bool {
        guard let run = config["run"] as? [String: Any] else { return false }
        let words = [run["path"] as? String ?? ""] + ((run["args"] as? [String]) ?? [])
        return words.contains { $0 == "build-task" || $0.contains("exec build-task") || $0.hasSuffix("/build-task") }
    }

    static func checkBuildTaskParams(_ params: [String: Any], at: String) {
        for key in params.keys {
            let known =
                BuildConfiguration.variables.contains(key)
                || BuildConfiguration.variablePrefixes.contains { key.hasPrefix($0) && key.count > $0.count }
            #expect(known, "\(at): build-task does not read \(key)")
        }
    }
}
