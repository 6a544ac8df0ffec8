import Builder
import Foundation
import TestSupport
import Testing
import Yams

@testable import Resource

/// `build-task plan --emit-pipeline`: the pipeline it writes passes the same checks as the
/// pipelines in ci/ (every source, get and put param and build-task param accepted by the
/// binaries), and its jobs are wired as the image graph says.
@Suite("build-task plan --emit-pipeline writes a valid pipeline")
struct ImageGraphPipelineTests {
    /// A checkout with images/: base; app and web FROM it by a templated name; tools/lint
    /// FROM app; tool on its own.
    static func checkout(_ repository: TestGitRepository) throws {
        let derived = { (base: String) in
            "ARG REPOSITORY\nARG BASE_TAG=latest\nFROM ${REPOSITORY}/\(base):${BASE_TAG}\nCOPY f /f\n"
        }
        _ = try repository.commit(
            "images",
            files: [
                "images/base/Dockerfile": "FROM scratch\nCOPY f /f\n", "images/base/f": "base\n",
                "images/app/Dockerfile": derived("base"), "images/app/f": "app\n",
                "images/web/Dockerfile": derived("base"), "images/web/f": "web\n",
                "images/tools/lint/Dockerfile": derived("app"), "images/tools/lint/f": "lint\n",
                "images/tool/Dockerfile": "FROM docker.io/library/busybox:1.36\n",
            ])
    }

    @Test func theEmittedPipelineIsAcceptedAndWiredByTheGraph() async throws {
        try await withTestGitRepository { repository in
            try Self.checkout(repository)
            let emitted = try runProcess(
                try builtProduct("build-task").path,
                [
                    "plan", "--root", "images", "--repository", "((registry))/fornax", "--build-arg",
                    "BASE_TAG=((branch))",
                    "--emit-pipeline", "-",
                ],
                environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()],
                currentDirectory: repository.path)
            try #require(emitted.succeeded, "\(emitted.stderrString)")
            let text = PipelineConfigurationTests.interpolated(emitted.stdoutString)
            let pipeline = try #require(try Yams.load(yaml: text) as? [String: Any])

            // The checks every pipeline in ci/ passes.
            let types = Set(
                ((pipeline["resource_types"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
            #expect(types == ["slipway"])
            var sources: [String: Source] = [:]
            var paths: [String: [String]] = [:]
            for resource in (pipeline["resources"] as? [[String: Any]]) ?? [] {
                let name = try #require(resource["name"] as? String)
                #expect(resource["type"] as? String == "slipway")
                do {
                    sources[name] = try Source(JSONValue.parse(PipelineConfigurationTests.json(resource["source"])))
                } catch {
                    Issue.record("resource \(name): \(error)")
                }
                let source = resource["source"] as? [String: Any]
                paths[name] = (source?["git"] as? [String: Any])?["paths"] as? [String]
                #expect(
                    source?["repository"] as? String == "registry.example.com/fornax/"
                        + name.replacingOccurrences(of: "-", with: "/"))
                #expect(source?["tags"] as? [String] == ["{short_ref}", "{branch}"])
            }
            #expect(
                paths == [
                    "base": ["images/base/"], "app": ["images/app/"], "web": ["images/web/"], "tool": ["images/tool/"],
                    "tools-lint": ["images/tools/lint/"],
                ])

            let jobs = (pipeline["jobs"] as? [[String: Any]]) ?? []
            #expect(
                jobs.compactMap { $0["name"] as? String } == ["base", "app", "tool", "tools-lint", "web"],
                "in build order")
            var gets: [String: [String: [String]]] = [:]  // job → get → passed
            for job in jobs {
                let jobName = try #require(job["name"] as? String)
                var builds = 0
                for step in PipelineConfigurationTests.steps(job["plan"] as? [Any] ?? []) {
                    if let get = step["get"] as? String, let source = sources[get] {
                        gets[jobName, default: [:]][get] = (step["passed"] as? [String]) ?? []
                        #expect(step["trigger"] as? Bool == true, "\(jobName): get \(get) triggers")
                        do {
                            _ = try In.params(
                                JSONValue.parse(PipelineConfigurationTests.json(step["params"])), source: source)
                        } catch {
                            Issue.record("\(jobName): get \(get): \(error)")
                        }
                    }
                    if let put = step["put"] as? String {
                        #expect(put == jobName)
                        guard let source = sources[put] else {
                            Issue.record("\(jobName): put to an undeclared resource \(put)")
                            continue
                        }
                        do {
                            _ = try Out.params(
                                JSONValue.parse(PipelineConfigurationTests.json(step["params"])), source: source)
                        } catch {
                            Issue.record("\(jobName): put \(put): \(error)")
                        }
                    }
                    if step["task"] != nil, let config = step["config"] as? [String: Any],
                        PipelineConfigurationTests.runsBuildTask(config)
                    {
                        builds += 1
                        let params = config["params"] as? [String: Any] ?? [:]
                        PipelineConfigurationTests.checkBuildTaskParams(params, at: "job \(jobName)")
                        let path = jobName.replacingOccurrences(of: "-", with: "/")
                        #expect(params["CONTEXT"] as? String == "source/source/images/\(path)")
                        #expect(params["SKIP_IF_PUBLISHED"] as? String == "registry.example.com/fornax/\(path)")
                        #expect(params["BUILD_ARG_REPOSITORY"] as? String == "registry.example.com/fornax")
                        #expect(
                            params["BUILD_ARG_BASE_TAG"] as? String == "main",
                            "the dependents find the base by its {branch} tag")
                        #expect((step["input_mapping"] as? [String: String])?["source"] == jobName)
                    }
                }
                #expect(builds == 1, "\(jobName) runs build-task once")
            }
            #expect(
                gets == [
                    "base": ["base": []],
                    "app": ["app": [], "base": ["base"]],
                    "web": ["web": [], "base": ["base"]],
                    "tools-lint": ["tools-lint": [], "app": ["app"]],
                    "tool": ["tool": []],
                ])
        }
    }
}
