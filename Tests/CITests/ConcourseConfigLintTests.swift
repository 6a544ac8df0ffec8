import Testing
import Yams

/// Each of Concourse's rules in ConcourseConfigLint catches a violation, so the lint over
/// ci/pipelines cannot pass by checking nothing: a valid pipeline has no problem, and each
/// case breaks it in one place and expects the rule's message.
@Suite("ConcourseConfigLint catches each of Concourse's rules")
struct ConcourseConfigLintTests {
    /// Uses every kind of step and artifact the rules look at, and breaks none of them.
    static let valid = """
        resource_types:
        - name: slipway
          type: registry-image
          source: {repository: r.example/slipway}
        resources:
        - name: code
          type: git
          source: {uri: https://g.example/r.git}
        - name: app
          type: slipway
          source: {repository: r.example/app}
        jobs:
        - name: build
          plan:
          - in_parallel:
              limit: 2
              steps:
              - get: code
                trigger: true
          - task: compile
            privileged: true
            config:
              platform: linux
              image_resource: {type: registry-image, source: {repository: r.example/swift}}
              inputs: [{name: source}, {name: cache, optional: true}]
              outputs: [{name: built}]
              run: {path: make}
            input_mapping: {source: code}
            output_mapping: {built: binary}
            attempts: 2
            timeout: 1h30m
          - try:
              do:
              - load_var: version
                file: binary/version
              - set_pipeline: self
                file: code/ci/pipeline.yml
          - put: app
            params: {image: binary/oci}
            on_failure:
              task: report
              config: {platform: linux, run: {path: "true"}}
        - name: ship
          plan:
          - get: app
            passed: [build]
            trigger: true
          - task: use
            image: app
            config: {platform: linux, inputs: [{name: app}], run: {path: ls}}
          ensure:
            put: app
            inputs: [app]
            no_get: true
        """

    struct Case: Sendable, CustomTestStringConvertible {
        let rule: String
        let replace: String
        let with: String
        let expect: String
        var testDescription: String { rule }
    }

    static let cases: [Case] = [
        Case(
            rule: "unknown top-level key", replace: "jobs:\n", with: "resource_type: []\njobs:\n",
            expect: "unknown key 'resource_type'"),
        Case(
            rule: "unknown resource key", replace: "  type: git\n", with: "  type: git\n  check_evry: 1m\n",
            expect: "resources.code: unknown key 'check_evry'"),
        Case(
            rule: "unknown resource type key", replace: "  type: registry-image\n",
            with: "  type: registry-image\n  privilged: true\n", expect: "unknown key 'privilged'"),
        Case(
            rule: "unknown job key", replace: "- name: ship\n", with: "- name: ship\n  serail: true\n",
            expect: "jobs.ship: unknown key 'serail'"),
        Case(
            rule: "unknown get key", replace: "    passed: [build]\n", with: "    passed: [build]\n    triger: true\n",
            expect: "unknown key 'triger' for a get step"),
        Case(
            rule: "unknown put key", replace: "    inputs: [app]\n", with: "    inputs: [app]\n    get_param: {}\n",
            expect: "unknown key 'get_param' for a put step"),
        Case(
            rule: "unknown task step key", replace: "    privileged: true\n", with: "    privilegd: true\n",
            expect: "unknown key 'privilegd' for a task step"),
        Case(
            rule: "a modifier's key without the modifier", replace: "    attempts: 2\n", with: "    fail_fast: true\n",
            expect: "unknown key 'fail_fast' for a task step"),
        Case(
            rule: "tags on a step kind without tags", replace: "  - try:\n", with: "  - tags: [arm]\n    try:\n",
            expect: "unknown key 'tags' for a try step"),
        Case(
            rule: "unknown task config key", replace: "      outputs: [{name: built}]\n",
            with: "      ouputs: [{name: built}]\n", expect: "unknown key 'ouputs'"),
        Case(
            rule: "unknown image_resource key", replace: "type: registry-image, source: {repository: r.example/swift}",
            with: "type: registry-image, sourc: {}",
            expect: "image_resource: unknown key 'sourc'"),
        Case(
            rule: "unknown task run key", replace: "run: {path: make}", with: "run: {path: make, arg: [x]}",
            expect: "run: unknown key 'arg'"),
        Case(
            rule: "unknown task input key", replace: "{name: cache, optional: true}",
            with: "{name: cache, optinal: true}", expect: "unknown key 'optinal'"),
        Case(
            rule: "task config without platform", replace: "      platform: linux\n      image_resource",
            with: "      image_resource", expect: "missing 'platform'"),
        Case(
            rule: "task with neither file nor config",
            replace: "      config: {platform: linux, run: {path: \"true\"}}\n", with: "",
            expect: "either `file:` or `config:`"),
        Case(
            rule: "two step kinds in one step", replace: "  - get: app\n", with: "  - get: app\n    put: app\n",
            expect: "more than one step kind: put, get"),
        Case(
            rule: "no core step", replace: "  - try:\n", with: "  - timeout: 1h\n  - try:\n",
            expect: "no core step type declared"),
        Case(
            rule: "no step at all", replace: "  - try:\n", with: "  - trigger: true\n  - try:\n",
            expect: "no step configured"),
        Case(
            rule: "in_parallel of the wrong type",
            replace: "  - in_parallel:\n      limit: 2\n      steps:\n      - get: code\n        trigger: true\n",
            with: "  - in_parallel: code\n  - get: code\n", expect: "wrong type for parallel config"),
        Case(
            rule: "unknown in_parallel key", replace: "      limit: 2\n", with: "      limt: 2\n",
            expect: "in_parallel: unknown key 'limt'"),
        Case(
            rule: "attempts not above 0", replace: "attempts: 2", with: "attempts: 0",
            expect: "attempts must be greater than 0"),
        Case(
            rule: "an invalid duration", replace: "timeout: 1h30m", with: "timeout: 90 minutes",
            expect: "invalid duration"),
        Case(
            rule: "passed: a job that does not exist", replace: "passed: [build]", with: "passed: [bild]",
            expect: "no matching job(s) for 'bild'"),
        Case(
            rule: "passed: a job that does not use the resource", replace: "    params: {image: binary/oci}\n",
            with: "    params: {image: binary/oci}\n    resource: code\n",
            expect: "job 'build' does not interact with resource 'app'"),
        Case(
            rule: "get of an unknown resource", replace: "  - get: code\n", with: "  - get: cod\n",
            expect: "unknown resource 'cod'"),
        Case(
            rule: "the same get twice in a job", replace: "    trigger: true\n  - task: use\n",
            with: "    trigger: true\n  - get: app\n  - task: use\n",
            expect: "repeated name"),
        Case(
            rule: "a task input no step made", replace: "input_mapping: {source: code}",
            with: "input_mapping: {source: coda}", expect: "input source (input_mapping) 'coda' is no artifact"),
        Case(
            rule: "an input_mapping of no input", replace: "input_mapping: {source: code}",
            with: "input_mapping: {source: code, extra: code}", expect: "maps 'extra'"),
        Case(
            rule: "an output is known only by its mapped name", replace: "file: binary/version",
            with: "file: built/version", expect: "artifact 'built' is no artifact"),
        Case(
            rule: "image: of no artifact", replace: "image: app", with: "image: ap", expect: "image 'ap' is no artifact"
        ),
        Case(
            rule: "file: of no artifact", replace: "file: code/ci/pipeline.yml", with: "file: ci/pipeline.yml",
            expect: "artifact 'ci' is no artifact"),
        Case(
            rule: "file: without an artifact", replace: "file: code/ci/pipeline.yml", with: "file: pipeline.yml",
            expect: "does not start with an artifact name"),
        Case(
            rule: "a put's listed input no step made", replace: "inputs: [app]", with: "inputs: [binary]",
            expect: "put input 'binary' is no artifact"),
        Case(
            rule: "a put with no_get makes no artifact", replace: "    passed: [build]\n",
            with: "    passed: [build]\n  - put: code\n    no_get: true\n  - task: x\n    file: code/x.yml\n",
            expect: "artifact 'code' is no artifact"),
        Case(
            rule: "a parallel branch cannot use its sibling's artifact",
            replace: "      - get: code\n        trigger: true\n",
            with: "      - get: code\n        trigger: true\n      - task: x\n        file: code/x.yml\n",
            expect: "artifact 'code' is no artifact"),
        Case(
            rule: "an unused resource", replace: "resources:\n",
            with: "resources:\n- name: spare\n  type: time\n  source: {interval: 1h}\n",
            expect: "resources.spare: is not used"),
        Case(
            rule: "a resource of an undeclared type", replace: "  type: slipway\n", with: "  type: slipwy\n",
            expect: "type 'slipwy' is neither declared"),
        Case(
            rule: "an image_resource of an undeclared type",
            replace: "type: registry-image, source: {repository: r.example/swift}",
            with: "type: docker-img, source: {}",
            expect: "type 'docker-img' is neither declared"),
        Case(
            rule: "two jobs of one name", replace: "- name: ship\n", with: "- name: build\n",
            expect: "same name as the job"),
        Case(
            rule: "two resources of one name", replace: "- name: code\n", with: "- name: app\n",
            expect: "same name as the resource"),
        Case(
            rule: "a key written twice", replace: "    trigger: true\n  - task: use\n",
            with: "    trigger: true\n    trigger: false\n  - task: use\n",
            expect: "duplicate key 'trigger'"),
    ]

    @Test func theValidPipelineHasNoProblem() {
        #expect(ConcourseConfigLint.pipeline(Self.valid) == [])
    }

    @Test(arguments: cases)
    func eachRuleCatchesItsViolation(_ rule: Case) {
        #expect(Self.valid.contains(rule.replace), "the case does not apply: \(rule.replace)")
        let broken = Self.valid.replacingOccurrences(of: rule.replace, with: rule.with)
        let problems = ConcourseConfigLint.pipeline(broken)
        #expect(
            problems.contains { $0.contains(rule.expect) },
            "expected '\(rule.expect)' in:\n\(problems.joined(separator: "\n"))")
    }

    @Test func aResourceTypeMayOverrideABaseTypeButNotStandOnItself() {
        let pipeline = """
            resource_types:
            - {name: git, type: git, source: {}}
            - {name: loop, type: loop, source: {}}
            - {name: chained, type: loop, source: {}}
            resources:
            - {name: code, type: git, source: {}}
            jobs:
            - name: j
              plan: [{get: code}]
            """
        let problems = ConcourseConfigLint.pipeline(pipeline)
        #expect(
            problems == [
                "line 3: resource_types.loop: type 'loop' is neither declared in resource_types nor a base resource type"
            ])
    }

    @Test func aTaskFileFollowsTaskConfigRules() {
        #expect(ConcourseConfigLint.task("platform: linux\nrun: {path: ls}\n") == [])
        let problems = ConcourseConfigLint.task(
            "platfrom: linux\nrun: {path: ls}\ninputs: [{path: x}]\nimage_resource: {type: oci}\n")
        #expect(problems.contains { $0.contains("unknown key 'platfrom'") }, "\(problems)")
        #expect(problems.contains { $0.contains("missing 'platform'") }, "\(problems)")
        #expect(problems.contains { $0.contains("inputs[0]: is missing a name") }, "\(problems)")
        #expect(problems.contains { $0.contains("type 'oci' is neither declared") }, "\(problems)")
    }

    @Test func aTaskFileNamedByTheStepGivesItsInputsAndOutputs() {
        let pipeline = """
            resources:
            - {name: code, type: git, source: {}}
            jobs:
            - name: j
              plan:
              - get: code
              - task: build
                file: code/ci/tasks/t.yml
                input_mapping: {source: code}
              - task: use
                file: made/t.yml
            """
        let file =
            "platform: linux\ninputs: [{name: source}, {name: other}]\noutputs: [{name: made}]\nrun: {path: ls}\n"
        let problems = ConcourseConfigLint.pipeline(pipeline) { $0.hasSuffix("ci/tasks/t.yml") ? file : nil }
        #expect(problems.count == 1 && problems[0].contains("input 'other' is no artifact"), "\(problems)")
    }

    // MARK: - Duplicate keys, and merges that override

    static func parse(_ yaml: String) -> (ConcourseConfigLint.Value?, [String]) {
        var problems: [String] = []
        let value = ConcourseConfigLint.parse(yaml, problems: &problems)
        return (value, problems)
    }

    @Test func aLiteralDuplicateKeyIsCaughtWithItsLines() {
        let (_, problems) = Self.parse("a: 1\nb:\n  c: 2\n  c: 3\n")
        #expect(problems == ["line 4: duplicate key 'c' (first at line 3); YAML loaders keep only one of them"])
        // Yams.load, as the other tests read the pipelines, keeps one silently.
        #expect(((try? Yams.load(yaml: "c: 2\nc: 3\n")) as? [String: Any])?.count == 1)
    }

    @Test func aMergedKeyMayBeOverriddenAndEarlierMergesWin() throws {
        let (value, problems) = Self.parse(
            """
            base: &base {a: 1, b: 2}
            more: &more {b: 20, c: 30}
            over:
              <<: [*base, *more]
              a: 10
            """)
        #expect(problems == [])
        let over = try #require(value?["over"])
        #expect(over["a"]?.string == "10")
        #expect(over["b"]?.string == "2")
        #expect(over["c"]?.string == "30")
    }

    @Test func twoMergeKeysInOneMappingAreADuplicate() {
        let (_, problems) = Self.parse("base: &base {a: 1}\nother: &other {b: 1}\nover:\n  <<: *base\n  <<: *other\n")
        #expect(problems.count == 1 && problems[0].contains("duplicate key '<<'"), "\(problems)")
    }

    @Test func aDuplicateInAnAnchorIsReportedOnceAndThroughAMerge() {
        let (_, problems) = Self.parse("base: &base\n  a: 1\n  a: 2\none: *base\ntwo:\n  <<: *base\n")
        #expect(problems == ["line 3: duplicate key 'a' (first at line 2); YAML loaders keep only one of them"])
    }
}
