import Foundation
import Testing
import Yams

/// A pipeline file as Concourse reads it after `fly set-pipeline`: YAML (anchors and merge
/// keys resolved), `((vars))` interpolated structurally as Concourse's `vars` package does
/// (a whole-value `((name))` takes the variable's value of any type; inside a string it is
/// replaced by the value's text), then the parts the model plays: resources, jobs, steps.
///
/// Shapes that the model cannot play (`across`, `set_pipeline`, `load_var`,
/// `version: every`) are refused with a one-line error instead of being skipped.
struct PipelineConfig {
    struct ConfigError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Resource {
        let name: String
        let type: String
        let source: [String: Any]
    }

    struct Get {
        let name: String
        let resource: String
        let params: [String: Any]
        let passed: [String]
        let trigger: Bool
        /// A pinned version (`version: {ref: …}`), or nil for `latest`.
        let pinned: [String: String]?
    }

    struct Put {
        let name: String
        let resource: String
        let params: [String: Any]
        let getParams: [String: Any]
        let noGet: Bool
        /// `inputs:` as a list of artifact names; nil means every artifact (`all`).
        let inputs: [String]?
    }

    struct Task {
        let name: String
        let config: [String: Any]?
        let file: String?
        let params: [String: Any]
        let vars: [String: Any]
        let image: String?
        let privileged: Bool
        let inputMapping: [String: String]
        let outputMapping: [String: String]
    }

    indirect enum Action {
        case get(Get)
        case put(Put)
        case task(Task)
        case inParallel([Step])
        case sequence([Step])
        case attempt(Step)
    }

    final class Step {
        let action: Action
        var onSuccess: Step?
        var onFailure: Step?
        var onAbort: Step?
        var onError: Step?
        var ensure: Step?
        var attempts: Int = 1

        init(action: Action) { self.action = action }

        /// Every get step in this step and the steps inside it, hooks included: a job's inputs.
        var gets: [Get] {
            var result: [Get] = []
            switch action {
            case .get(let get): result.append(get)
            case .put, .task: break
            case .inParallel(let steps), .sequence(let steps): result += steps.flatMap(\.gets)
            case .attempt(let step): result += step.gets
            }
            for hook in [onSuccess, onFailure, onAbort, onError, ensure] { result += hook?.gets ?? [] }
            return result
        }
    }

    struct Job {
        let name: String
        let plan: [Step]
        var inputs: [Get] { plan.flatMap(\.gets) }
    }

    let resources: [String: Resource]
    let resourceOrder: [String]
    let jobs: [Job]

    /// Loads `file` with `vars` as `fly set-pipeline -c file -v …` and `-l …` supply them.
    static func load(_ file: URL, vars: [String: Any]) throws -> PipelineConfig {
        let text = try String(contentsOf: file, encoding: .utf8)
        guard let raw = try Yams.load(yaml: text) as? [String: Any] else {
            throw ConfigError("\(file.lastPathComponent) is not a YAML map")
        }
        guard let document = try interpolate(raw, vars: vars) as? [String: Any] else {
            throw ConfigError("\(file.lastPathComponent) is not a YAML map after interpolation")
        }
        return try PipelineConfig(document)
    }

    init(_ document: [String: Any]) throws {
        var resources: [String: Resource] = [:]
        var order: [String] = []
        for case let resource as [String: Any] in document["resources"] as? [Any] ?? [] {
            guard let name = resource["name"] as? String, let type = resource["type"] as? String else {
                throw ConfigError("a resource without a name or type")
            }
            guard resources[name] == nil else { throw ConfigError("resource \(name) is declared twice") }
            resources[name] = Resource(name: name, type: type, source: resource["source"] as? [String: Any] ?? [:])
            order.append(name)
        }
        self.resources = resources
        self.resourceOrder = order
        var jobs: [Job] = []
        for case let job as [String: Any] in document["jobs"] as? [Any] ?? [] {
            guard let name = job["name"] as? String else { throw ConfigError("a job without a name") }
            let plan = try (job["plan"] as? [Any] ?? []).map { try Self.step($0, job: name) }
            jobs.append(Job(name: name, plan: plan))
        }
        self.jobs = jobs
    }

    static func step(_ value: Any, job: String) throws -> Step {
        guard let map = value as? [String: Any] else { throw ConfigError("job \(job): a step is not a map") }
        let action: Action
        if let name = map["get"] as? String {
            if map["version"] as? String == "every" {
                throw ConfigError("job \(job): get \(name): version: every is not modelled")
            }
            action = .get(
                Get(
                    name: name, resource: map["resource"] as? String ?? name,
                    params: map["params"] as? [String: Any] ?? [:],
                    passed: map["passed"] as? [String] ?? [], trigger: map["trigger"] as? Bool ?? false,
                    pinned: map["version"] as? [String: String]))
        } else if let name = map["put"] as? String {
            let inputs: [String]?
            switch map["inputs"] {
            case nil, "all" as String: inputs = nil
            case let list as [String]: inputs = list
            case "detect" as String:
                // The first path segment of every string in params, as atc/exec's put step detects them.
                inputs = Array(
                    Set(strings(in: map["params"]).compactMap { $0.split(separator: "/").first.map(String.init) }))
            default: throw ConfigError("job \(job): put \(name): inputs must be all, detect or a list")
            }
            action = .put(
                Put(
                    name: name, resource: map["resource"] as? String ?? name,
                    params: map["params"] as? [String: Any] ?? [:],
                    getParams: map["get_params"] as? [String: Any] ?? [:], noGet: map["no_get"] as? Bool ?? false,
                    inputs: inputs))
        } else if let name = map["task"] as? String {
            action = .task(
                Task(
                    name: name, config: map["config"] as? [String: Any], file: map["file"] as? String,
                    params: map["params"] as? [String: Any] ?? [:], vars: map["vars"] as? [String: Any] ?? [:],
                    image: map["image"] as? String, privileged: map["privileged"] as? Bool ?? false,
                    inputMapping: map["input_mapping"] as? [String: String] ?? [:],
                    outputMapping: map["output_mapping"] as? [String: String] ?? [:]))
        } else if let parallel = map["in_parallel"] {
            let steps = (parallel as? [Any]) ?? ((parallel as? [String: Any])?["steps"] as? [Any]) ?? []
            action = .inParallel(try steps.map { try step($0, job: job) })
        } else if let steps = map["do"] as? [Any] {
            action = .sequence(try steps.map { try step($0, job: job) })
        } else if let inner = map["try"] {
            action = .attempt(try step(inner, job: job))
        } else {
            throw ConfigError("job \(job): a step the model does not play: \(map.keys.sorted())")
        }
        let result = Step(action: action)
        result.onSuccess = try map["on_success"].map { try step($0, job: job) }
        result.onFailure = try map["on_failure"].map { try step($0, job: job) }
        result.onAbort = try map["on_abort"].map { try step($0, job: job) }
        result.onError = try map["on_error"].map { try step($0, job: job) }
        result.ensure = try map["ensure"].map { try step($0, job: job) }
        result.attempts = map["attempts"] as? Int ?? 1
        return result
    }

    static func strings(in value: Any?) -> [String] {
        switch value {
        case let string as String: [string]
        case let list as [Any]: list.flatMap { strings(in: $0) }
        case let map as [String: Any]: map.values.flatMap { strings(in: $0) }
        default: []
        }
    }

    /// `((name))` replaced as Concourse's vars package does; an undefined variable is an
    /// error, as it is when a build step meets it.
    static func interpolate(_ value: Any, vars: [String: Any]) throws -> Any {
        switch value {
        case let string as String:
            let trimmed = string.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("(("), trimmed.hasSuffix("))"), trimmed.dropFirst(2).dropLast(2).range(of: "((") == nil
            {
                let name = String(trimmed.dropFirst(2).dropLast(2)).trimmingCharacters(in: .whitespaces)
                guard let replacement = vars[name] else { throw ConfigError("undefined var: \(name)") }
                return replacement
            }
            var result = string
            while let open = result.range(of: "(("),
                let close = result.range(of: "))", range: open.upperBound..<result.endIndex)
            {
                let name = result[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
                guard let replacement = vars[name] else { throw ConfigError("undefined var: \(name)") }
                result.replaceSubrange(open.lowerBound..<close.upperBound, with: "\(replacement)")
            }
            return result
        case let list as [Any]:
            return try list.map { try interpolate($0, vars: vars) }
        case let map as [String: Any]:
            return try map.mapValues { try interpolate($0, vars: vars) }
        default:
            return value
        }
    }
}
