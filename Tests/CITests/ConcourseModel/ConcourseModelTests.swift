import Foundation
import TestSupport
import Testing

/// The model's own rules, on pipelines and histories made here: if these drift from
/// Concourse's, every lifecycle test would play a different Concourse.
@Suite("the model of Concourse: versions, inputs, triggers, variables")
struct ConcourseModelTests {
    typealias Input = ConcourseModel.Input

    static let yaml = """
        resources:
        - {name: base, type: slipway, source: {repository: ((registry))/base, tags: ["{short_ref}", "((branch))"], n: ((count))}}
        - {name: app, type: slipway, source: {repository: r/app}}
        jobs:
        - name: build
          plan:
          - get: base
            trigger: true
          - get: app
            trigger: true
        - name: test
          plan:
          - in_parallel:
            - get: base
              passed: [build]
              trigger: true
            - get: app
              passed: [build]
              trigger: true
        """

    func withModel(_ body: (ConcourseModel, ConcourseModel.Pipeline) throws -> Void) throws {
        try withTemporaryDirectory { directory in
            let file = directory.appending("pipeline.yml")
            try Self.yaml.write(to: file, atomically: true, encoding: .utf8)
            let model = try ConcourseModel(
                root: directory.appending("model"), vars: ["registry": "r.example", "count": 3], trustedCA: nil)
            try model.setPipeline("p", file: file, vars: ["branch": "feat/x"])
            try body(model, try model.pipeline("p"))
        }
    }

    func record(
        _ pipeline: ConcourseModel.Pipeline, _ id: Int, _ job: String, _ inputs: [(String, String)],
        status: ConcourseModel.Status = .succeeded
    ) {
        var build = ConcourseModel.BuildRecord(
            id: id, pipeline: pipeline.name, job: job,
            inputs: inputs.map { Input(name: $0.0, resource: $0.0, version: ["ref": $0.1]) })
        build.status = status
        pipeline.builds.append(build)
    }

    @Test func variablesAreInterpolatedAfterParsingKeepingTheirType() throws {
        try withModel { _, pipeline in
            let source = try #require(pipeline.config.resources["base"]?.source)
            #expect(source["repository"] as? String == "r.example/base", "inside a string: the text")
            #expect(source["n"] as? Int == 3, "a whole value keeps its type")
            #expect((source["tags"] as? [String]) == ["{short_ref}", "feat/x"])
        }
        #expect(throws: PipelineConfig.ConfigError.self) { try PipelineConfig.interpolate("((missing))", vars: [:]) }
    }

    @Test func aCheckWithSomethingNewMovesEveryReturnedVersionToTheTop() throws {
        try withModel { model, pipeline in
            model.save([["ref": "a"], ["ref": "b"], ["ref": "c"]], in: pipeline, resource: "base")
            model.save([["ref": "a"]], in: pipeline, resource: "base")
            #expect(
                pipeline.versions["base"] == [["ref": "a"], ["ref": "b"], ["ref": "c"]], "nothing new: nothing moves")
            model.save([["ref": "a"], ["ref": "d"]], in: pipeline, resource: "base")
            #expect(pipeline.versions["base"] == [["ref": "b"], ["ref": "c"], ["ref": "a"], ["ref": "d"]])
            model.saveOutput(["ref": "b"], in: pipeline, resource: "base")
            #expect(
                pipeline.versions["base"]?.last == ["ref": "d"], "a put of a known version does not become the newest")
        }
    }

    @Test func inputsThatShareAPassedJobComeFromOneBuildOfIt() throws {
        try withModel { model, pipeline in
            pipeline.versions = ["base": [["ref": "b1"], ["ref": "b2"]], "app": [["ref": "a1"], ["ref": "a2"]]]
            record(pipeline, 1, "build", [("base", "b1"), ("app", "a1")])
            record(pipeline, 2, "build", [("base", "b2"), ("app", "a1")])
            record(pipeline, 3, "build", [("base", "b1"), ("app", "a2")], status: .failed)
            let test = try pipeline.job("test")
            let inputs = try #require(model.resolve(test, in: pipeline))
            #expect(
                inputs.map(\.version) == [["ref": "b2"], ["ref": "a1"]],
                "the newest successful build's pair, not b2 with a2")
            #expect(model.triggers(test, inputs, in: pipeline))
            record(pipeline, 4, "test", [("base", "b2"), ("app", "a1")])
            #expect(!model.triggers(test, inputs, in: pipeline), "the same inputs never trigger twice")
        }
    }

    @Test func anOldVersionNeverUsedTriggersToo() throws {
        try withModel { model, pipeline in
            pipeline.versions = ["base": [["ref": "b1"]], "app": [["ref": "a1"]]]
            let build = try pipeline.job("build")
            record(pipeline, 1, "build", [("base", "b2"), ("app", "a1")])
            let inputs = try #require(model.resolve(build, in: pipeline))
            #expect(model.triggers(build, inputs, in: pipeline), "b1 was never used by build: a first occurrence")
            pipeline.versions["app"] = []
            #expect(model.resolve(build, in: pipeline) == nil, "an input with no version: the job cannot run")
        }
    }

    static let steps = #"""
        jobs:
        - name: j
          plan:
          - task: make
            config:
              platform: linux
              outputs: [{name: out}]
              params: {GREETING: hi, COUNT: 2}
              run:
                path: sh
                args: [-ec, 'test "$COUNT" = 2 && test "$BUILD_JOB_NAME" = j && echo "$GREETING" > out/msg && printf "platform: linux\ninputs: [{name: in}]\nparams: {WORD: \\050\\050word\\051\\051}\nrun: {path: sh, args: [-ec, \"test \$WORD = hello && cat in/msg\"]}\n" > out/task.yml']
            output_mapping: {out: made}
          - task: use
            file: made/task.yml
            vars: {word: hello}
            input_mapping: {in: made}
            ensure:
              task: after
              config: {platform: linux, run: {path: sh, args: [-ec, 'echo ensured >&2']}}
          - try:
              task: fails
              config: {platform: linux, run: {path: sh, args: [-ec, 'exit 3']}}
        - name: k
          plan:
          - task: fails
            config: {platform: linux, run: {path: sh, args: [-ec, 'exit 4']}}
            on_failure:
              task: report
              config: {platform: linux, run: {path: sh, args: [-ec, 'echo reported >&2']}}
        """#

    @Test func tasksMapArtifactsReadFilesFromThemAndRunTheirHooks() throws {
        try withTemporaryDirectory { directory in
            let file = directory.appending("pipeline.yml")
            try Self.steps.write(to: file, atomically: true, encoding: .utf8)
            let model = try ConcourseModel(root: directory.appending("model"), vars: [:], trustedCA: nil)
            try model.setPipeline("p", file: file, vars: [:])
            let j = try model.triggerJob("p", "j")
            #expect(j.status == .succeeded, "\(j.failure ?? "")\n\(model.log)")
            #expect(model.log.contains("ensured"), "the ensure hook ran")
            let made = model.root.appendingPathComponent("builds/\(j.id)/made/msg")
            #expect(try String(contentsOf: made, encoding: .utf8) == "hi\n", "output_mapping named the artifact")
            let k = try model.triggerJob("p", "k")
            #expect(
                k.status == .failed && model.log.contains("reported"),
                "a failed step runs on_failure and fails the build")
        }
    }

    @Test func setPipelinesDryRunIsSplitAsAShellWould() throws {
        try withTemporaryDirectory { directory in
            let model = try ConcourseModel(root: directory.appending("model"), vars: [:], trustedCA: nil)
            #expect(
                try model.shellWords("fly -t main set-pipeline -p banana-it-s -c p.yml -v 'branch=it'\\''s x'")
                    == ["fly", "-t", "main", "set-pipeline", "-p", "banana-it-s", "-c", "p.yml", "-v", "branch=it's x"])
            #expect(throws: ConcourseModel.ModelError.self) { try model.shellWords("fly 'open") }
        }
    }
}
