import Foundation
import TestSupport
import Testing

/// Seed 001 (keg-hub), ci/pipelines/001-branch-tagged.yml, played step by step: a base image
/// and a tap image built on it, one pipeline per branch, every image tagged with the branch
/// it came from (so a PR's images update themselves) and `latest` only on master; the tap
/// gets its base by digest as an OCI layout (`IMAGE_ARG_KEG_BASE_IMAGE`), with no registry
/// round trip; a developer builds and pushes an experiment with flags, then runs it.
@Suite("seed 001: branch-tagged images on a base", .serialized)
struct Seed001BranchTaggedTests {
    /// An image directory built on `${KEG_BASE_IMAGE}` (the seed's build argument).
    static func onKegBase(_ directory: String, marker: String) -> [String: String] {
        var files = SeedFixture.imageFiles(directory, marker: marker, from: "${KEG_BASE_IMAGE}")
        files["\(directory)/Dockerfile"] = "ARG KEG_BASE_IMAGE\n" + files["\(directory)/Dockerfile"]!
        return files
    }

    @Test func featureBranchPipelineAndTheLocalDeveloperFlow() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository(branch: "master") { repository in
                try await withTemporaryDirectory { directory in
                    var files = SeedFixture.imageFiles("containers/base", marker: "base-m")
                    files.merge(Self.onKegBase("containers/tap", marker: "tap-m")) { $1 }
                    files.merge(Self.onKegBase("containers/evf", marker: "evf-1")) { $1 }
                    let m1 = try SeedFixture.commit(repository, "keg-hub images", files: files)
                    let remote = try repository.bareClone()
                    try repository.push()

                    let host = registry.host
                    let concourse = Concourse(root: directory.appending("concourse"))
                    /// The two resources of one branch's pipeline (`((branch))` set by ci/set-pipeline).
                    func sources(_ branch: String) -> (base: [String: Any], tap: [String: Any]) {
                        func source(_ repository: String, _ path: String) -> [String: Any] {
                            ["repository": "\(host)/simpleviewinc/\(repository)", "insecure": true,
                             "git": ["uri": remote.url.absoluteString, "branch": branch, "paths": [path]],
                             "tags": ["{short_ref}", "{branch}"], "latest_on": "master"]
                        }
                        return (source("keg-base", "containers/base/"), source("tap", "containers/tap/"))
                    }
                    func accessesToBase() throws -> Int {
                        try String(contentsOf: registry.logFile, encoding: .utf8).components(separatedBy: "/v2/simpleviewinc/keg-base/").count - 1
                    }

                    /// The base job: get, build-task, put with get_params {image: skip, source: false}.
                    func baseJob(_ pipeline: String, _ source: [String: Any], _ version: [String: String]) throws -> (digest: String, put: [String: String]) {
                        let build = try concourse.build()
                        try build.get("base", source: source, version: version, params: ["image": "skip"])
                        try build.buildTask(["CONTEXT": "base/source/containers/base", "REGISTRY_INSECURE": "true"], cache: pipeline)
                        let put = try build.put("base", source: source, params: ["image": "image/oci"], getParams: ["image": "skip", "source": false])
                        return (try build.read("image/digest"), put)
                    }
                    /// The tap job: the base version passed from the base job as an OCI layout, the tap's source,
                    /// build-task with IMAGE_ARG_KEG_BASE_IMAGE=base and no registry settings (it needs none), put
                    /// (no get_params: the implicit get fetches the rootfs).
                    func tapJob(_ pipeline: String, _ sources: (base: [String: Any], tap: [String: Any]), base: [String: String],
                                tap: [String: String]) throws -> (build: Concourse.Build, digest: String, put: [String: String]) {
                        let build = try concourse.build()
                        try build.get("base", source: sources.base, version: base, params: ["format": "oci-layout", "source": false])
                        try build.get("tap", source: sources.tap, version: tap, params: ["image": "skip"])
                        let before = try accessesToBase()
                        #expect(before > 0, "the registry's access log names the base's requests (the base job pushed it)")
                        try build.buildTask(["CONTEXT": "tap/source/containers/tap", "IMAGE_ARG_KEG_BASE_IMAGE": "base"], cache: pipeline)
                        #expect(try accessesToBase() == before, "the tap's build did not ask the registry for its base")
                        let put = try build.put("tap", source: sources.tap, params: ["image": "image/oci"], getParams: [:])
                        return (build, try build.read("image/digest"), put)
                    }

                    // 1. The master pipeline: base and tap, tagged with the commit, master and latest.
                    let master = sources("master")
                    #expect(try concourse.check("master-base", source: master.base) == [["ref": m1]], "\(concourse.log)")
                    #expect(try concourse.check("master-tap", source: master.tap) == [["ref": m1]])
                    let masterBase = try baseJob("master", master.base, ["ref": m1])
                    #expect(masterBase.put == ["ref": m1])
                    let masterTap = try tapJob("master", master, base: masterBase.put, tap: ["ref": m1])
                    #expect(masterTap.put == ["ref": m1])
                    for (repo, digest) in [("keg-base", masterBase.digest), ("tap", masterTap.digest)] {
                        #expect(try SeedFixture.tags(registry, "simpleviewinc/\(repo)") == [String(m1.prefix(12)), "master", "latest"], "\(repo)")
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", "latest") == digest, "\(repo)")
                    }
                    #expect(try Self.labels(masterTap.build)["org.opencontainers.image.base.digest"] == masterBase.digest)

                    // 2. A feature branch and its own pipeline: the images carry the sanitised branch and the commit.
                    try repository.branch("feature/Login", checkout: true)
                    let f1 = try repository.commit("login: base and tap", files: ["containers/base/marker": "base-f1\n", "containers/tap/marker": "tap-f1\n"])
                    try repository.push()
                    let feature = sources("feature/Login")
                    #expect(try concourse.check("feature-base", source: feature.base) == [["ref": f1]])
                    #expect(try concourse.check("feature-tap", source: feature.tap) == [["ref": f1]])
                    #expect(try concourse.check("master-base", source: master.base, from: ["ref": m1]) == [["ref": m1]], "master did not move")
                    let featureBase1 = try baseJob("feature", feature.base, ["ref": f1])
                    #expect(featureBase1.put == ["ref": f1])
                    let featureTap1 = try tapJob("feature", feature, base: featureBase1.put, tap: ["ref": f1])
                    #expect(featureTap1.put == ["ref": f1])
                    #expect(try featureTap1.build.read("base/digest") == featureBase1.digest, "the get of the base, by the version the base job put")
                    let labels1 = try Self.labels(featureTap1.build)
                    #expect(labels1["org.opencontainers.image.base.digest"] == featureBase1.digest, "the tap is built on this branch's base")
                    #expect(labels1["org.opencontainers.image.base.name"] == "\(host)/simpleviewinc/keg-base:\(f1.prefix(12))")
                    #expect(labels1["dev.slipway.branch"] == "feature/Login")
                    #expect(labels1["org.opencontainers.image.revision"] == f1)
                    for (repo, digest) in [("keg-base", featureBase1.digest), ("tap", featureTap1.digest)] {
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", String(f1.prefix(12))) == digest, "\(repo)")
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", "feature-Login") == digest, "\(repo)")
                    }
                    #expect(try SeedFixture.digest(registry, "simpleviewinc/keg-base", "latest") == masterBase.digest, "latest only on master")
                    #expect(try SeedFixture.digest(registry, "simpleviewinc/tap", "latest") == masterTap.digest, "latest only on master")
                    // The implicit get of the tap's put: its rootfs holds the base's file and the tap's.
                    #expect(try featureTap1.build.read("tap/rootfs/built") == "base-f1\ntap-f1")

                    // 3. A second commit to the branch: the PR's images update themselves.
                    let f2 = try repository.commit("login: more", files: ["containers/base/marker": "base-f2\n", "containers/tap/marker": "tap-f2\n"])
                    try repository.push()
                    #expect(try concourse.check("feature-base", source: feature.base, from: ["ref": f1]) == [["ref": f1], ["ref": f2]])
                    #expect(try concourse.check("feature-tap", source: feature.tap, from: ["ref": f1]) == [["ref": f1], ["ref": f2]])
                    let featureBase2 = try baseJob("feature", feature.base, ["ref": f2])
                    let featureTap2 = try tapJob("feature", feature, base: featureBase2.put, tap: ["ref": f2])
                    #expect(featureBase2.put == ["ref": f2] && featureTap2.put == ["ref": f2])
                    #expect(featureBase2.digest != featureBase1.digest && featureTap2.digest != featureTap1.digest)
                    #expect(try Self.labels(featureTap2.build)["org.opencontainers.image.base.digest"] == featureBase2.digest)
                    for (repo, new, old) in [("keg-base", featureBase2.digest, featureBase1.digest), ("tap", featureTap2.digest, featureTap1.digest)] {
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", "feature-Login") == new, "\(repo): the branch tag moved")
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", String(f2.prefix(12))) == new, "\(repo)")
                        #expect(try SeedFixture.digest(registry, "simpleviewinc/\(repo)", String(f1.prefix(12))) == old, "\(repo): commit tags stay")
                    }
                    #expect(try SeedFixture.digest(registry, "simpleviewinc/keg-base", "latest") == masterBase.digest)
                    #expect(try SeedFixture.digest(registry, "simpleviewinc/tap", "latest") == masterTap.digest)
                    #expect(try SeedFixture.tags(registry, "simpleviewinc/tap")
                            == [String(m1.prefix(12)), "master", "latest", String(f1.prefix(12)), String(f2.prefix(12)), "feature-Login"])
                    // The downstream checks see the newest versions.
                    #expect(try concourse.check("feature-base", source: feature.base, from: ["ref": f2]) == [["ref": f2]])
                    #expect(try concourse.check("feature-tap", source: feature.tap, from: ["ref": f2]) == [["ref": f2]])

                    // 4. The developer's experiment on the same branch, outside Concourse: flags, no terminal.
                    let laptop = directory.appending("laptop")
                    try FileManager.default.createDirectory(at: laptop, withIntermediateDirectories: true)
                    let context = repository.path.appendingPathComponent("containers/evf")
                    let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": laptop.appendingPathComponent("home").path,
                                       "REGISTRY_INSECURE": "true"]
                    let built = try runProcess(try builtProduct("build-task").path,
                                               ["--context", context.path, "--build-arg", "KEG_BASE_IMAGE=\(host)/simpleviewinc/tap:feature-Login",
                                                "--tag", "\(host)/simpleviewinc/evf:my-changes-tag", "--push"],
                                               environment: environment, currentDirectory: laptop)
                    try #require(built.succeeded, "build-task: \(built.stderrString)")
                    let experiment = try String(contentsOf: laptop.appendingPathComponent("image/digest"), encoding: .utf8)
                    #expect(try SeedFixture.digest(registry, "simpleviewinc/evf", "my-changes-tag") == experiment, "\(built.stderrString)")
                    #expect(try SeedFixture.tags(registry, "simpleviewinc/evf") == ["my-changes-tag"])
                    let evfLabels = try Self.labels(layout: laptop.appendingPathComponent("image/oci"))
                    #expect(evfLabels["org.opencontainers.image.base.name"] == "\(host)/simpleviewinc/tap:feature-Login")
                    #expect(evfLabels["org.opencontainers.image.base.digest"] == featureTap2.digest, "built on the PR's tap")
                    #expect(evfLabels["dev.slipway.branch"] == "feature/Login", "the checked-out branch")
                    #expect(evfLabels["org.opencontainers.image.revision"] == f2)

                    // 5. "Run it": the experiment's tag, checked and fetched as an image-mode resource.
                    let evf: [String: Any] = ["repository": "\(host)/simpleviewinc/evf", "tag": "my-changes-tag", "insecure": true]
                    let versions = try concourse.check("evf", source: evf)
                    #expect(versions == [["tag": "my-changes-tag", "digest": experiment]], "\(concourse.log)")
                    let run = try concourse.build()
                    try run.get("evf", source: evf, version: try #require(versions.last))
                    #expect(try run.read("evf/digest") == experiment)
                    let rootfs = run.directory.appendingPathComponent("evf/rootfs")
                    let inImage = try runProcess("/usr/sbin/chroot", [rootfs.path, "/bin/busybox", "cat", "/built"])
                    #expect(inImage.succeeded && inImage.stdoutString == "base-f2\ntap-f2\nevf-1\n", "\(inImage.stdoutString)\(inImage.stderrString)")
                }
            }
        }
    }

    static func labels(_ build: Concourse.Build) throws -> [String: String] {
        try labels(layout: build.directory.appendingPathComponent("image/oci"))
    }

    /// The labels of the image in an OCI layout build-task wrote (named `latest`).
    static func labels(layout: URL) throws -> [String: String] {
        let inspected = try runProcess("skopeo", ["inspect", "oci:\(layout.path):latest"]).checked()
        return (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"] as? [String: String] ?? [:]
    }
}
