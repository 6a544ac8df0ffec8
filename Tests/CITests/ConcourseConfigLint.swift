import Foundation
import Yams

/// Concourse's own rules for pipeline and task configurations, as the `atc` package of
/// concourse/concourse applies them (the file each rule comes from is named beside it), plus
/// the few places where Concourse is silent but wrong YAML would still break a pipeline:
/// duplicate keys and unknown top-level or nested keys, which Concourse drops without a word.
///
/// Pure: YAML text in, one-line problems out ("line N: where: what"); an empty list is a pass.
struct ConcourseConfigLint {
    // MARK: - The YAML, with merges resolved and every node's line

    /// A YAML node with `<<:` merges applied (a mapping's own keys override merged ones, an
    /// earlier merge source overrides a later one, as the YAML merge type says) and the line
    /// it was written on, so a problem can point into the file.
    indirect enum Value {
        case map([Entry], line: Int)
        case seq([Value], line: Int)
        case scalar(String, line: Int)

        struct Entry {
            let key: String
            let line: Int
            let value: Value
        }

        var line: Int {
            switch self {
            case .map(_, let line), .seq(_, let line), .scalar(_, let line): return line
            }
        }
        var entries: [Entry]? { if case .map(let entries, _) = self { return entries } else { return nil } }
        var items: [Value]? { if case .seq(let items, _) = self { return items } else { return nil } }
        var string: String? { if case .scalar(let text, _) = self { return text } else { return nil } }
        var keys: [String] { entries?.map(\.key) ?? [] }
        subscript(key: String) -> Value? { entries?.first { $0.key == key }?.value }
        func has(_ key: String) -> Bool { entries?.contains { $0.key == key } ?? false }
        /// A list of strings (`[a, b]`), or nil for anything else.
        var strings: [String]? { items?.compactMap(\.string) }
        var isTrue: Bool { ["true", "yes", "on"].contains(string?.lowercased() ?? "") }
    }

    /// Composes the text (Yams.compose keeps every key, where Yams.load keeps one of a
    /// duplicate) and reports every key written twice in one mapping. Keys that come in
    /// through a merge may be overridden; literal duplicates, `<<:` twice included, may not.
    static func parse(_ yaml: String, problems: inout [String]) -> Value? {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch {
            problems.append("not YAML: \(error)")
            return nil
        }
        guard let node else {
            problems.append("empty document")
            return nil
        }
        var reported: Set<String> = []
        return convert(node, problems: &problems, reported: &reported)
    }

    private static func convert(_ node: Node, problems: inout [String], reported: inout Set<String>) -> Value {
        let line = node.mark?.line ?? 0
        switch node {
        case .scalar(let scalar):
            return .scalar(scalar.string, line: line)
        case .sequence(let sequence):
            return .seq(sequence.map { convert($0, problems: &problems, reported: &reported) }, line: line)
        case .mapping(let mapping):
            var own: [Value.Entry] = []
            var merged: [Value.Entry] = []
            var firstLine: [String: Int] = [:]
            for (keyNode, valueNode) in mapping {
                let key = keyNode.scalar?.string ?? "\(keyNode)"
                let keyLine = keyNode.mark?.line ?? line
                if let first = firstLine[key] {
                    // An alias repeats its anchor's nodes, marks included: report each place once.
                    if reported.insert("\(keyLine):\(first):\(key)").inserted {
                        problems.append(
                            "line \(keyLine): duplicate key '\(key)' (first at line \(first)); YAML loaders keep only one of them"
                        )
                    }
                    continue
                }
                firstLine[key] = keyLine
                if keyNode.tag.description == "tag:yaml.org,2002:merge" {  // `<<`, resolved as Yams resolves it
                    let sources = valueNode.sequence.map(Array.init) ?? [valueNode]
                    for source in sources {
                        guard case .map(let entries, _) = convert(source, problems: &problems, reported: &reported)
                        else {
                            problems.append("line \(keyLine): '<<' merges something that is not a mapping")
                            continue
                        }
                        for entry in entries where !merged.contains(where: { $0.key == entry.key }) {
                            merged.append(entry)
                        }
                    }
                } else {
                    own.append(
                        Value.Entry(
                            key: key, line: keyLine, value: convert(valueNode, problems: &problems, reported: &reported)
                        ))
                }
            }
            let ownKeys = Set(own.map(\.key))
            return .map(merged.filter { !ownKeys.contains($0.key) } + own, line: line)
        }
    }

    // MARK: - Concourse's key lists (struct json tags)

    /// atc/config.go `Config` (UnmarshalConfig keeps only these and silently drops the rest).
    static let topLevelKeys: Set<String> = [
        "groups", "var_sources", "resources", "resource_types", "prototypes", "jobs", "display", "user_data",
    ]
    /// atc/config.go `GroupConfig`, `VarSourceConfig`, `DisplayConfig`.
    static let groupKeys: Set<String> = ["name", "jobs", "resources"]
    static let varSourceKeys: Set<String> = ["name", "type", "config"]
    static let displayKeys: Set<String> = ["background_image", "background_filter"]
    /// atc/config.go `ResourceConfig` (yaml.UnmarshalStrict rejects any other key).
    static let resourceKeys: Set<String> = [
        "name", "old_name", "public", "webhook_token", "type", "source", "check_every",
        "check_timeout", "tags", "version", "icon", "expose_build_created_by",
    ]
    /// atc/config.go `ResourceType` and `Prototype`.
    static let resourceTypeKeys: Set<String> = [
        "name", "type", "source", "defaults", "privileged", "check_every", "tags", "params",
    ]
    /// atc/job_config.go `JobConfig` and `BuildLogRetention`.
    static let jobKeys: Set<String> = [
        "name", "old_name", "public", "disable_manual_trigger", "disable_reruns", "serial", "interruptible",
        "serial_groups", "max_in_flight", "tags", "build_logs_to_retain", "build_log_retention",
        "on_success", "on_failure", "on_abort", "on_error", "ensure", "plan",
    ]
    static let buildLogRetentionKeys: Set<String> = ["builds", "minimum_succeeded_builds", "days"]

    /// atc/steps.go `StepPrecedence`: the order Step.UnmarshalJSON tries each kind, with the
    /// json keys of its struct. Modifiers (not core) wrap the next kind found; parsing stops
    /// at the first core kind, and every key left over is an unknown field.
    static let stepPrecedence: [(key: String, fields: Set<String>, core: Bool)] = [
        ("ensure", ["ensure"], false),
        ("on_error", ["on_error"], false),
        ("on_abort", ["on_abort"], false),
        ("on_failure", ["on_failure"], false),
        ("on_success", ["on_success"], false),
        ("across", ["across", "fail_fast"], false),  // AcrossStep
        ("attempts", ["attempts"], false),  // RetryStep
        ("run", ["run", "type", "params", "privileged", "tags", "container_limits", "timeout"], true),  // RunStep
        (
            "task",
            [
                "task", "privileged", "hermetic", "file", "container_limits", "config", "params", "vars", "tags",
                "input_mapping", "output_mapping", "image", "timeout",
            ], true
        ),  // TaskStep
        ("put", ["put", "resource", "params", "inputs", "tags", "get_params", "timeout", "no_get"], true),  // PutStep
        ("get", ["get", "resource", "version", "params", "passed", "trigger", "tags", "timeout"], true),  // GetStep
        ("timeout", ["timeout"], false),  // TimeoutStep
        ("set_pipeline", ["set_pipeline", "file", "team", "vars", "var_files", "instance_vars"], true),
        ("load_var", ["load_var", "file", "format", "reveal"], true),
        ("try", ["try"], true),
        ("do", ["do", "tags"], true),
        ("in_parallel", ["in_parallel", "tags"], true),
    ]
    static let coreStepKinds: Set<String> = Set(stepPrecedence.filter(\.core).map(\.key))
    static let hooks = ["on_success", "on_failure", "on_abort", "on_error", "ensure"]
    /// atc/steps.go `InParallelConfig`, `AcrossVarConfig` (unmarshalStrict).
    static let inParallelKeys: Set<String> = ["steps", "limit", "fail_fast"]
    static let acrossVarKeys: Set<String> = ["var", "values", "max_in_flight"]

    /// atc/task.go `TaskConfig` (unknown fields: step_validator.go VisitTask, task.go NewTaskConfig),
    /// and the types inside it, which Concourse decodes leniently (a typo there vanishes).
    static let taskConfigKeys: Set<String> = [
        "platform", "rootfs_uri", "image_resource", "container_limits", "params", "run",
        "inputs", "outputs", "caches",
    ]
    // Concourse's task.go, ImageResource.
    static let imageResourceKeys: Set<String> = ["name", "type", "source", "version", "params", "tags"]
    static let taskRunKeys: Set<String> = ["path", "args", "dir", "user"]  // task.go TaskRunConfig
    static let taskInputKeys: Set<String> = ["name", "path", "optional"]  // task.go TaskInputConfig
    static let taskOutputKeys: Set<String> = ["name", "path"]  // task.go TaskOutputConfig
    static let taskCacheKeys: Set<String> = ["path", "ttl"]  // task.go TaskCacheConfig
    static let containerLimitsKeys: Set<String> = ["cpu", "memory"]  // container_limits.go

    /// The resource types a Concourse worker ships (.github/ISSUE_TEMPLATE/release-major-minor.md,
    /// "Resource Types"); any other type must be declared in resource_types
    /// (atc/config.go ResourceTypes.ImageForType: a type not declared is taken as a base type).
    static let baseResourceTypes: Set<String> = [
        "git", "registry-image", "time", "s3", "github-release", "pool", "semver",
        "docker-image", "mock", "hg", "bosh-io-release", "bosh-io-stemcell",
    ]

    // MARK: - Entry points

    /// Every problem with a pipeline. `taskFile` returns the text of a task file a `file:`
    /// step names (or nil when it is not in this repository), for the artifacts it uses and makes.
    static func pipeline(_ yaml: String, taskFile: @escaping (String) -> String? = { _ in nil }) -> [String] {
        var problems: [String] = []
        guard let root = parse(yaml, problems: &problems) else { return problems }
        var checker = Checker(taskFile: taskFile)
        checker.problems = problems
        checker.pipeline(root)
        return checker.problems
    }

    /// Every problem with a task file (ci/tasks/*.yml): atc/task.go NewTaskConfig.
    static func task(_ yaml: String) -> [String] {
        var problems: [String] = []
        guard let root = parse(yaml, problems: &problems) else { return problems }
        var checker = Checker(taskFile: { _ in nil })
        checker.problems = problems
        checker.taskConfig(root, at: "task", types: baseResourceTypes)
        return checker.problems
    }

    // MARK: - The checks

    struct Checker {
        let taskFile: (String) -> String?
        var problems: [String] = []
        var resources: Set<String> = []
        var types: Set<String> = baseResourceTypes
        var prototypes: Set<String> = []
        var jobNames: [String] = []
        /// Each job's resources, through get and put (configvalidate's usedResources).
        var interactions: [String: Set<String>] = [:]
        var usedResources: Set<String> = []
        /// Get names seen in the current job (step_validator.go seenGetName).
        var seenGets: Set<String> = []

        init(taskFile: @escaping (String) -> String?) { self.taskFile = taskFile }

        mutating func report(_ line: Int, _ at: String, _ message: String) {
            problems.append("line \(line): \(at): \(message)")
        }

        mutating func keys(_ value: Value, _ allowed: Set<String>, at: String, why: String) {
            for entry in value.entries ?? [] where !allowed.contains(entry.key) {
                report(entry.line, at, "unknown key '\(entry.key)' (\(why))")
            }
        }

        /// A list of mappings, or a problem.
        mutating func list(_ value: Value?, at: String) -> [Value] {
            guard let value else { return [] }
            guard let items = value.items else {
                report(value.line, at, "is not a list")
                return []
            }
            for item in items where item.entries == nil { report(item.line, at, "an entry is not a mapping") }
            return items.filter { $0.entries != nil }
        }

        mutating func pipeline(_ root: Value) {
            guard root.entries != nil else {
                report(root.line, "pipeline", "is not a mapping")
                return
            }
            // atc/config.go UnmarshalConfig: any other top-level key is silently dropped.
            keys(root, topLevelKeys, at: "pipeline", why: "atc/config.go Config; Concourse silently drops it")

            // configvalidate validateResourceTypes/validatePrototypes: names set, unique (one namespace), type set.
            var typeNames: [String: Int] = [:]
            let typeItems = list(root["resource_types"], at: "resource_types")
            for section in ["resource_types", "prototypes"] {
                let items = section == "resource_types" ? typeItems : list(root[section], at: section)
                for (index, item) in items.enumerated() {
                    let name = item["name"]?.string ?? ""
                    let at = name.isEmpty ? "\(section)[\(index)]" : "\(section).\(name)"
                    keys(
                        item, resourceTypeKeys, at: at,
                        why: "atc/config.go \(section == "prototypes" ? "Prototype" : "ResourceType")")
                    if name.isEmpty { report(item.line, at, "has no name (configvalidate/validate.go)") }
                    if (item["type"]?.string ?? "").isEmpty {
                        report(item.line, at, "has no type (configvalidate/validate.go)")
                    }
                    if let first = typeNames[name] {
                        report(
                            item.line, at,
                            "same name as the resource type at line \(first) (configvalidate/validate.go)")
                    } else if !name.isEmpty {
                        typeNames[name] = item.line
                    }
                    if section == "resource_types" { types.insert(name) } else { prototypes.insert(name) }
                }
            }
            for (index, item) in typeItems.enumerated() {
                // A custom type is fetched with a type of its own: another declared type, or a base type
                // (atc/config.go ImageForType looks it up among types.Without(its own name), so a type
                // named after a base type, of that base type, overrides the base type).
                let name = item["name"]?.string ?? "\(index)"
                if let type = item["type"]?.string, !type.isEmpty,
                    !baseResourceTypes.contains(type) && (type == name || !types.contains(type))
                {
                    report(
                        item["type"]?.line ?? item.line, "resource_types.\(name)",
                        "type '\(type)' is neither declared in resource_types nor a base resource type")
                }
            }

            // configvalidate validateResources: names set and unique, type set.
            var resourceLines: [String: Int] = [:]
            let resourceItems = list(root["resources"], at: "resources")
            for (index, item) in resourceItems.enumerated() {
                let name = item["name"]?.string ?? ""
                let at = name.isEmpty ? "resources[\(index)]" : "resources.\(name)"
                keys(item, resourceKeys, at: at, why: "atc/config.go ResourceConfig")
                if name.isEmpty { report(item.line, at, "has no name (configvalidate/validate.go)") }
                if let first = resourceLines[name] {
                    report(item.line, at, "same name as the resource at line \(first) (configvalidate/validate.go)")
                } else if !name.isEmpty {
                    resourceLines[name] = item.line
                }
                let type = item["type"]?.string ?? ""
                if type.isEmpty {
                    report(item.line, at, "has no type (configvalidate/validate.go)")
                } else if !types.contains(type) {
                    report(
                        item["type"]?.line ?? item.line, at,
                        "type '\(type)' is neither declared in resource_types nor a base resource type")
                }
            }
            resources = Set(resourceLines.keys)

            for (index, item) in list(root["var_sources"], at: "var_sources").enumerated() {
                keys(item, varSourceKeys, at: "var_sources[\(index)]", why: "atc/config.go VarSourceConfig")
            }
            if let display = root["display"] {
                keys(display, displayKeys, at: "display", why: "atc/config.go DisplayConfig")
            }

            // configvalidate validateJobs: at least one job, names set and unique.
            let jobs = list(root["jobs"], at: "jobs")
            if jobs.isEmpty {
                report(root.line, "jobs", "pipeline must contain at least one job (configvalidate/validate.go)")
            }
            var jobLines: [String: Int] = [:]
            for (index, job) in jobs.enumerated() {
                let name = job["name"]?.string ?? ""
                let at = name.isEmpty ? "jobs[\(index)]" : "jobs.\(name)"
                if name.isEmpty { report(job.line, at, "has no name (configvalidate/validate.go)") }
                if let first = jobLines[name] {
                    report(job.line, at, "same name as the job at line \(first) (configvalidate/validate.go)")
                } else if !name.isEmpty {
                    jobLines[name] = job.line
                }
                jobNames.append(name)
                var touched: Set<String> = []
                Self.walk(jobPlan(job)) { step in
                    if let get = step["get"]?.string { touched.insert(step["resource"]?.string ?? get) }
                    if let put = step["put"]?.string { touched.insert(step["resource"]?.string ?? put) }
                }
                interactions[name, default: []].formUnion(touched)
                usedResources.formUnion(touched)
            }

            groups(root)

            for (index, job) in jobs.enumerated() {
                let name = job["name"]?.string ?? ""
                self.job(job, at: name.isEmpty ? "jobs[\(index)]" : "jobs.\(name)")
            }

            // configvalidate validateResourcesUnused: "resource '%s' is not used".
            for (index, item) in resourceItems.enumerated() {
                if let name = item["name"]?.string, !usedResources.contains(name) {
                    report(
                        item.line, "resources.\(name.isEmpty ? "\(index)" : name)",
                        "is not used by any job's get or put (configvalidate/validate.go validateResourcesUnused)")
                }
            }
        }

        /// configvalidate validateGroups: every job glob matches, every resource exists, every job is in a group.
        mutating func groups(_ root: Value) {
            let groups = list(root["groups"], at: "groups")
            var grouped: Set<String> = []
            var names: Set<String> = []
            for (index, group) in groups.enumerated() {
                let name = group["name"]?.string ?? "\(index)"
                keys(group, groupKeys, at: "groups.\(name)", why: "atc/config.go GroupConfig")
                if !names.insert(name).inserted {
                    report(group.line, "groups.\(name)", "duplicate group name (configvalidate/validate.go)")
                }
                for glob in group["jobs"]?.strings ?? [] {
                    let matched = jobNames.filter { Self.globMatch(glob, $0) }
                    if matched.isEmpty {
                        report(group.line, "groups.\(name)", "no jobs match '\(glob)' (configvalidate/validate.go)")
                    }
                    grouped.formUnion(matched)
                }
                for resource in group["resources"]?.strings ?? [] where !resources.contains(resource) {
                    report(group.line, "groups.\(name)", "unknown resource '\(resource)' (configvalidate/validate.go)")
                }
            }
            if !groups.isEmpty {
                for job in jobNames where !grouped.contains(job) {
                    report(
                        root["groups"]?.line ?? 0, "groups",
                        "job '\(job)' belongs to no group (configvalidate/validate.go)")
                }
            }
        }

        func jobPlan(_ job: Value) -> [Value] {
            (job["plan"]?.items ?? []) + hooks.compactMap { job[$0] }
        }

        mutating func job(_ job: Value, at: String) {
            keys(job, jobKeys, at: at, why: "atc/job_config.go JobConfig; yaml.UnmarshalStrict rejects it")
            if let retention = job["build_log_retention"] {
                keys(
                    retention, buildLogRetentionKeys, at: "\(at).build_log_retention",
                    why: "atc/job_config.go BuildLogRetention")
            }
            seenGets = []
            var artifacts = Artifacts()
            if let plan = job["plan"] {
                if let items = plan.items {
                    for (index, step) in items.enumerated() {
                        self.step(step, at: "\(at).plan[\(index)]", artifacts: &artifacts)
                    }
                } else {
                    report(plan.line, "\(at).plan", "is not a list of steps")
                }
            } else {
                report(job.line, at, "has no plan")
            }
            // atc/job_config.go StepConfig: job hooks wrap the whole plan.
            for hook in hooks {
                if let step = job[hook] {
                    var after = artifacts
                    self.step(step, at: "\(at).\(hook)", artifacts: &after)
                }
            }
        }

        /// The artifacts a build holds at one point of its plan (atc/exec/build/repository.go).
        /// `open` once a step's outputs cannot be known (a task file outside this repository).
        struct Artifacts {
            var names: Set<String> = []
            var open = false
            func has(_ name: String) -> Bool { open || names.contains(name) }
            mutating func merge(_ other: Artifacts) {
                names.formUnion(other.names)
                open = open || other.open
            }
        }

        mutating func needArtifact(
            _ name: String, line: Int, at: String, what: String, artifacts: Artifacts, source: String
        ) {
            guard !name.contains("(("), !artifacts.has(name) else { return }
            let known = artifacts.names.sorted().joined(separator: ", ")
            report(
                line, at,
                "\(what) '\(name)' is no artifact at this point of the plan (has: \(known.isEmpty ? "none" : known)) (\(source))"
            )
        }

        /// `artifact/path`: the first segment names an artifact (atc/exec/task_config_source.go FetchConfig,
        /// set_pipeline_step.go, load_var_step.go).
        mutating func needArtifactPath(_ path: String, line: Int, at: String, what: String, artifacts: Artifacts) {
            let segments = path.split(separator: "/", maxSplits: 1).map(String.init)
            guard segments.count == 2 else {
                report(
                    line, at,
                    "\(what) '\(path)' does not start with an artifact name (atc/exec/task_config_source.go UnspecifiedArtifactSourceError)"
                )
                return
            }
            needArtifact(
                segments[0], line: line, at: at, what: "\(what) '\(path)': artifact", artifacts: artifacts,
                source: "atc/exec/task_config_source.go UnknownArtifactSourceError")
        }

        /// One step: its kind as atc/steps.go Step.UnmarshalJSON finds it, its keys, then what it needs and makes.
        mutating func step(_ step: Value, at: String, artifacts: inout Artifacts) {
            guard step.entries != nil else {
                report(step.line, at, "a step is not a mapping")
                return
            }
            let present = Set(step.keys)
            var remaining = present
            var core: String?
            var matched = false
            for detector in stepPrecedence where present.contains(detector.key) {
                matched = true
                remaining.subtract(detector.fields)
                if detector.core {
                    core = detector.key
                    break
                }
            }
            guard matched else {
                report(
                    step.line, at,
                    "no step configured: none of \(stepPrecedence.map(\.key).joined(separator: ", ")) (atc/steps.go ErrNoStepConfigured)"
                )
                return
            }
            guard let core else {
                report(
                    step.line, at,
                    "no core step type declared (get, put, task, ...) (atc/steps.go ErrNoCoreStepDeclared)")
                return
            }
            let otherKinds = remaining.intersection(coreStepKinds)
            if !otherKinds.isEmpty {
                report(
                    step.line, at,
                    "more than one step kind: \(([core] + otherKinds.sorted()).joined(separator: ", ")) (atc/steps.go Step.UnmarshalJSON)"
                )
            }
            for entry in step.entries ?? [] where remaining.contains(entry.key) && !otherKinds.contains(entry.key) {
                report(
                    entry.line, at,
                    "unknown key '\(entry.key)' for a \(core) step (atc/steps.go; step_validator.go \"unknown fields\")"
                )
            }
            let name = step[core]?.string ?? ""
            let here = "\(at).\(core)(\(name))"

            // Modifiers: step_validator.go VisitRetry, VisitTimeout, VisitAcross.
            if let attempts = step["attempts"], (Int(attempts.string ?? "") ?? 0) <= 0 {
                report(attempts.line, here, "attempts must be greater than 0 (atc/step_validator.go VisitRetry)")
            }
            if let timeout = step["timeout"], let text = timeout.string, !Self.isDuration(text) {
                report(timeout.line, here, "invalid duration '\(text)' (atc/step_validator.go VisitTimeout)")
            }
            var inner = artifacts
            if let across = step["across"] {
                let vars = list(across, at: "\(here).across")
                if vars.isEmpty {
                    report(across.line, "\(here).across", "no vars specified (atc/step_validator.go VisitAcross)")
                }
                for variable in vars {
                    keys(variable, acrossVarKeys, at: "\(here).across", why: "atc/steps.go AcrossVarConfig")
                    if (variable["var"]?.string ?? "").isEmpty {
                        report(variable.line, "\(here).across", "a var has no name")
                    }
                }
            }

            switch core {
            case "get": get(step, name: name, at: here, artifacts: &inner)
            case "put": put(step, name: name, at: here, artifacts: &inner)
            case "task": task(step, at: here, artifacts: &inner)
            case "run":
                if let type = step["type"]?.string, !prototypes.contains(type) {
                    report(step.line, here, "unknown prototype '\(type)' (atc/step_validator.go VisitRun)")
                }
            case "set_pipeline", "load_var":
                if let file = step["file"]?.string {
                    needArtifactPath(
                        file, line: step["file"]?.line ?? step.line, at: here, what: "file", artifacts: inner)
                } else {
                    report(
                        step.line, here,
                        "no file specified (atc/step_validator.go Visit\(core == "load_var" ? "LoadVar" : "SetPipeline"))"
                    )
                }
                for file in step["var_files"]?.strings ?? [] {
                    needArtifactPath(
                        file, line: step["var_files"]?.line ?? step.line, at: here, what: "var_files entry",
                        artifacts: inner)
                }
            case "try":
                if let sub = step["try"] { self.step(sub, at: "\(at).try", artifacts: &inner) }
            case "do":
                if let items = step["do"]?.items {
                    for (index, sub) in items.enumerated() {
                        self.step(sub, at: "\(at).do[\(index)]", artifacts: &inner)
                    }
                } else {
                    report(step.line, here, "do: is not a list of steps (atc/steps.go DoStep)")
                }
            case "in_parallel":
                inParallel(step["in_parallel"]!, at: "\(at).in_parallel", artifacts: &inner)
            default: break
            }

            // An across step runs its step in a local scope: nothing it makes escapes (atc/exec/across_step.go NewLocalScope).
            if !step.has("across") { artifacts = inner }

            // Hooks run after the step, with what it made; later steps run only after on_success and ensure.
            for hook in hooks {
                guard let sub = step[hook] else { continue }
                var after = inner
                self.step(sub, at: "\(at).\(hook)", artifacts: &after)
                if hook == "on_success" || hook == "ensure", !step.has("across") { artifacts.merge(after) }
            }
        }

        /// atc/steps.go InParallelConfig.UnmarshalJSON: a list of steps, or {steps, limit, fail_fast}.
        /// Branches run at once, so each sees only what was there before; all they make is there after.
        mutating func inParallel(_ value: Value, at: String, artifacts: inout Artifacts) {
            let steps: [Value]
            if let items = value.items {
                steps = items
            } else if value.entries != nil {
                keys(value, inParallelKeys, at: at, why: "atc/steps.go InParallelConfig")
                if let limit = value["limit"], (Int(limit.string ?? "") ?? -1) < 0 {
                    report(limit.line, at, "limit is not a number")
                }
                guard let items = value["steps"]?.items else {
                    report(value.line, at, "has no steps: list")
                    return
                }
                steps = items
            } else {
                report(
                    value.line, at,
                    "wrong type for parallel config: a list of steps or {steps, limit, fail_fast} (atc/steps.go)")
                return
            }
            var after = artifacts
            for (index, sub) in steps.enumerated() {
                var branch = artifacts
                self.step(sub, at: "\(at).steps[\(index)]", artifacts: &branch)
                after.merge(branch)
            }
            artifacts = after
        }

        /// atc/step_validator.go VisitGet: the resource exists, the name is not repeated in the job,
        /// every passed: glob matches a job and every matched job gets or puts that resource.
        mutating func get(_ step: Value, name: String, at: String, artifacts: inout Artifacts) {
            let resource = step["resource"]?.string ?? name
            if !resources.contains(resource) {
                report(step.line, at, "unknown resource '\(resource)' (atc/step_validator.go VisitGet)")
            }
            if !seenGets.insert(name).inserted {
                report(step.line, at, "repeated name: a job gets '\(name)' twice (atc/step_validator.go VisitGet)")
            }
            artifacts.names.insert(name)
            if let passed = step["passed"] {
                guard let globs = passed.strings, globs.count == passed.items?.count else {
                    report(passed.line, at, "passed: is not a list of job names")
                    return
                }
                for glob in globs {
                    let matched = jobNames.filter { Self.globMatch(glob, $0) }
                    if matched.isEmpty {
                        report(
                            passed.line, "\(at).passed",
                            "no matching job(s) for '\(glob)' (atc/step_validator.go VisitGet)")
                    }
                    for job in matched where !(interactions[job] ?? []).contains(resource) {
                        report(
                            passed.line, "\(at).passed",
                            "job '\(job)' does not interact with resource '\(resource)' (atc/step_validator.go VisitGet)"
                        )
                    }
                }
            }
        }

        /// atc/step_validator.go VisitPut: the resource exists; atc/exec/put_inputs.go: listed inputs
        /// are artifacts; atc/builds/planner.go VisitPut: the implicit get makes an artifact of the
        /// step's name unless no_get.
        mutating func put(_ step: Value, name: String, at: String, artifacts: inout Artifacts) {
            let resource = step["resource"]?.string ?? name
            if !resources.contains(resource) {
                report(step.line, at, "unknown resource '\(resource)' (atc/step_validator.go VisitPut)")
            }
            if let inputs = step["inputs"] {
                if let names = inputs.strings, names.count == inputs.items?.count {
                    for input in names {
                        needArtifact(
                            input, line: inputs.line, at: at, what: "put input", artifacts: artifacts,
                            source: "atc/exec/put_inputs.go PutInputNotFoundError")
                    }
                } else if !["all", "detect"].contains(inputs.string ?? "") {
                    report(
                        inputs.line, at,
                        "inputs: is neither all, detect nor a list of names (atc/steps.go InputsConfig)")
                }
            }
            if !(step["no_get"]?.isTrue ?? false) { artifacts.names.insert(name) }
        }

        /// atc/step_validator.go VisitTask (file: or config:, one of them; the config's own rules),
        /// atc/exec/task_step.go (inputs after input_mapping, image:, outputs after output_mapping).
        mutating func task(_ step: Value, at: String, artifacts: inout Artifacts) {
            let config = step["config"]
            let file = step["file"]?.string
            if config == nil && file == nil {
                report(step.line, at, "must specify either `file:` or `config:` (atc/step_validator.go VisitTask)")
            }
            if config != nil && file != nil {
                report(
                    step.line, at,
                    "must specify one of `file:` or `config:`, not both (atc/step_validator.go VisitTask)")
            }
            if let image = step["image"]?.string {
                needArtifact(
                    image, line: step["image"]?.line ?? step.line, at: at, what: "image", artifacts: artifacts,
                    source: "atc/exec/task_step.go MissingTaskImageSourceError")
            }
            var taskConfig = config
            if let config {
                self.taskConfig(config, at: "\(at).config", types: types)
            } else if let file {
                needArtifactPath(
                    file, line: step["file"]?.line ?? step.line, at: at, what: "file", artifacts: artifacts)
                var ignored: [String] = []
                taskConfig = taskFile(file).flatMap { ConcourseConfigLint.parse($0, problems: &ignored) }
            }
            guard let taskConfig else {
                artifacts.open = true  // its inputs and outputs are unknown here
                return
            }
            let inputMapping = Dictionary(
                (step["input_mapping"]?.entries ?? []).map { ($0.key, $0.value.string ?? "") }
            ) { first, _ in first }
            let outputMapping = Dictionary(
                (step["output_mapping"]?.entries ?? []).map { ($0.key, $0.value.string ?? "") }
            ) { first, _ in first }
            let inputs = taskConfig["inputs"]?.items ?? []
            for input in inputs {
                guard let name = input["name"]?.string, !(input["optional"]?.isTrue ?? false) else { continue }
                let source = inputMapping[name] ?? name
                needArtifact(
                    source, line: input.line, at: at,
                    what: source == name ? "input" : "input \(name) (input_mapping)", artifacts: artifacts,
                    source: "atc/exec/task_step.go MissingInputsError")
            }
            let inputNames = Set(inputs.compactMap { $0["name"]?.string })
            for entry in step["input_mapping"]?.entries ?? [] where !inputNames.contains(entry.key) {
                report(
                    entry.line, at,
                    "input_mapping maps '\(entry.key)', which is no input of the task (atc/exec/task_step.go uses only the config's inputs)"
                )
            }
            for output in taskConfig["outputs"]?.items ?? [] {
                guard let name = output["name"]?.string else { continue }
                artifacts.names.insert(outputMapping[name] ?? name)
            }
        }

        /// atc/task.go TaskConfig: its keys, `platform` set, every input and output named; the
        /// image_resource's type declared or a base type.
        mutating func taskConfig(_ config: Value, at: String, types: Set<String>) {
            guard config.entries != nil else {
                report(config.line, at, "is not a mapping")
                return
            }
            keys(config, taskConfigKeys, at: at, why: "atc/task.go TaskConfig; step_validator.go \"unknown fields\"")
            if (config["platform"]?.string ?? "").isEmpty {
                report(config.line, at, "missing 'platform' (atc/task.go Validate)")
            }
            if let image = config["image_resource"] {
                keys(image, imageResourceKeys, at: "\(at).image_resource", why: "atc/task.go ImageResource")
                let type = image["type"]?.string ?? ""
                if !types.contains(type) {
                    report(
                        image.line, "\(at).image_resource",
                        "type '\(type)' is neither declared in resource_types nor a base resource type")
                }
            }
            if let run = config["run"] { keys(run, taskRunKeys, at: "\(at).run", why: "atc/task.go TaskRunConfig") }
            if let limits = config["container_limits"] {
                keys(limits, containerLimitsKeys, at: "\(at).container_limits", why: "atc/container_limits.go")
            }
            for (section, allowed, named) in [
                ("inputs", taskInputKeys, true), ("outputs", taskOutputKeys, true), ("caches", taskCacheKeys, false),
            ] {
                for (index, item) in list(config[section], at: "\(at).\(section)").enumerated() {
                    keys(item, allowed, at: "\(at).\(section)[\(index)]", why: "atc/task.go")
                    if named && (item["name"]?.string ?? "").isEmpty {
                        report(item.line, "\(at).\(section)[\(index)]", "is missing a name (atc/task.go Validate)")
                    }
                }
            }
        }

        /// Every step of a plan, through every kind that holds steps.
        static func walk(_ steps: [Value], _ visit: (Value) -> Void) {
            for step in steps where step.entries != nil {
                visit(step)
                var children: [Value] = []
                if let parallel = step["in_parallel"] { children += parallel.items ?? parallel["steps"]?.items ?? [] }
                children += step["do"]?.items ?? []
                if let sub = step["try"] { children.append(sub) }
                children += hooks.compactMap { step[$0] }
                walk(children, visit)
            }
        }

        /// Go's path.Match, for passed: and group globs: `*`, `?` and `[...]` within a name.
        static func globMatch(_ pattern: String, _ name: String) -> Bool {
            var regex = "^"
            for character in pattern {
                switch character {
                case "*": regex += "[^/]*"
                case "?": regex += "[^/]"
                case "[", "]": regex.append(character)
                default: regex += NSRegularExpression.escapedPattern(for: String(character))
                }
            }
            regex += "$"
            return name.range(of: regex, options: .regularExpression) != nil
        }

        /// Go's time.ParseDuration, for what a config holds (`1h30m`, `90s`, `1.5h`).
        static func isDuration(_ text: String) -> Bool {
            text == "0"
                || text.range(of: #"^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$"#, options: .regularExpression)
                    != nil
        }
    }
}
