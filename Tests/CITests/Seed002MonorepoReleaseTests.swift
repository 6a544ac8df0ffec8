import Foundation
import TestSupport
import Testing

/// Seed 002, ci/pipelines/002-monorepo-release.yml, played step by step: a repository of
/// image directories (images/base_image/, images/tractor/ FROM the base by a templated
/// name), each image a resource keyed on its own directory, so only changed images build,
/// tagged with the commit and the branch; a release (git tag `v1.2.0` on main) tags main's
/// images with the release tags and `stable` without rebuilding, and an older release line
/// published later (`v1.1.5`) takes none of the newer one's tags.
@Suite("seed 002: a monorepo of images, releases without rebuilding", .serialized)
struct Seed002MonorepoReleaseTests {
    static let tractorDockerfile = """
        ARG REGISTRY
        ARG BASE_TAG=main
        FROM ${REGISTRY}/fornax/base_image:${BASE_TAG}
        COPY marker /tractor-marker
        RUN ["/bin/busybox", "sh", "-c", "cat /tractor-marker >> /built"]

        """

    /// One pipeline of the file, set for `branch` (`ci/set-pipeline` gives `-v branch=`).
    struct Pipeline {
        let concourse: Concourse
        let branch: String
        let base: [String: Any]
        let tractor: [String: Any]
        let release: [String: Any]

        init(root: URL, branch: String, registry: TestRegistry, uri: String) {
            concourse = Concourse(root: root)
            self.branch = branch
            func image(_ name: String) -> [String: Any] {
                ["repository": "\(registry.host)/fornax/\(name)", "insecure": true, "tags": ["{short_ref}", "{branch}"],
                 "git": ["uri": uri, "branch": branch, "paths": ["images/\(name)/"]]]
            }
            base = image("base_image")
            tractor = image("tractor")
            release = ["repository": "\(registry.host)/fornax/base_image", "insecure": true, "tags": ["{short_ref}"],
                       "git": ["uri": uri, "branch": "main", "tag_filter": "v*"]]
        }
    }

    /// The task's `input_mapping: {source: <get>}`: the get's directory seen as `source`.
    static func mapInput(_ build: Concourse.Build, _ name: String, as mapped: String = "source") throws {
        try FileManager.default.createSymbolicLink(atPath: build.directory.appendingPathComponent(mapped).path, withDestinationPath: name)
    }

    /// The job `base-image`: get (no image), build-task on images/base_image with
    /// `SKIP_IF_PUBLISHED`, put (its implicit get with the default params). Returns the build,
    /// the put's version and build-task's log.
    static func baseJob(_ pipeline: Pipeline, _ version: [String: String], registry: TestRegistry) throws
        -> (build: Concourse.Build, put: [String: String], log: String) {
        let build = try pipeline.concourse.build()
        try build.get("base-image", source: pipeline.base, version: version, params: ["image": "skip"])
        try mapInput(build, "base-image")
        let log = try build.buildTask(["CONTEXT": "source/source/images/base_image",
                                       "SKIP_IF_PUBLISHED": "\(registry.host)/fornax/base_image",
                                       "REGISTRY_INSECURE": "true"], cache: "base-image")
        let put = try build.put("base-image", source: pipeline.base, params: ["image": "image/oci"], getParams: [:])
        return (build, put, log)
    }

    /// The job `tractor`: the branch's base that passed `base-image` (no image), the tractor
    /// commit, build-task with `BUILD_ARG_BASE_TAG: ((branch))` and `SKIP_IF_PUBLISHED` (and,
    /// here, the registry's host as `BUILD_ARG_REGISTRY`), put.
    static func tractorJob(_ pipeline: Pipeline, _ version: [String: String], base: [String: String], registry: TestRegistry) throws
        -> (build: Concourse.Build, put: [String: String], log: String) {
        let build = try pipeline.concourse.build()
        try build.get("base-image", source: pipeline.base, version: base, params: ["image": "skip", "source": false])
        try build.get("tractor", source: pipeline.tractor, version: version, params: ["image": "skip"])
        try mapInput(build, "tractor")
        let log = try build.buildTask(["CONTEXT": "source/source/images/tractor", "BUILD_ARG_BASE_TAG": pipeline.branch,
                                       "BUILD_ARG_REGISTRY": registry.host,
                                       "SKIP_IF_PUBLISHED": "\(registry.host)/fornax/tractor",
                                       "REGISTRY_INSECURE": "true"], cache: "tractor")
        let put = try build.put("tractor", source: pipeline.tractor, params: ["image": "image/oci"], getParams: [:])
        return (build, put, log)
    }

    /// The job `release`: the release's get (its `release` file), then one promote put per
    /// image, from main's tag. Returns the two puts' versions and their logs.
    static func releaseJob(_ pipeline: Pipeline, _ version: [String: String]) throws
        -> (build: Concourse.Build, base: [String: String], tractor: [String: String], logs: [String]) {
        let build = try pipeline.concourse.build()
        try build.get("release", source: pipeline.release, version: version, params: ["image": "skip", "source": false])
        let promote: [String: Any] = ["promote": ["from": "main", "release": "release/release"]]
        let base = try build.put("base-image", source: pipeline.base, params: promote)
        let baseLog = lastOut(pipeline.concourse)
        let tractor = try build.put("tractor", source: pipeline.tractor, params: promote)
        return (build, base, tractor, [baseLog, lastOut(pipeline.concourse)])
    }

    static func lastOut(_ concourse: Concourse) -> String {
        concourse.transcript.last { $0.hasPrefix("out ") } ?? ""
    }

    /// The tags of `repository` other than build-task's `inputs-…` cache tags.
    static func tags(_ registry: TestRegistry, _ repository: String) throws -> Set<String> {
        try SeedFixture.tags(registry, repository).filter { !$0.hasPrefix("inputs-") }
    }

    @Test func branchBuildsOnlyWhatChangedAndReleasesPromoteMain() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    var files = SeedFixture.imageFiles("images/base_image", marker: "base v1")
                    files["images/tractor/Dockerfile"] = Self.tractorDockerfile
                    files["images/tractor/marker"] = "tractor v1\n"
                    files["scripts/README.md"] = "build logic: build-task\n"
                    let c1 = try SeedFixture.commit(repository, "base_image and tractor", files: files)
                    let remote = try repository.bareClone()
                    try repository.push()
                    let uri = remote.url.absoluteString
                    let short = { (commit: String) in String(commit.prefix(12)) }

                    // 1. main's pipeline: both images are new, both build; tags: commit and branch.
                    let main = Pipeline(root: directory.appending("fornax-main"), branch: "main", registry: registry, uri: uri)
                    #expect(try main.concourse.check("base-image", source: main.base) == [["ref": c1]], "\(main.concourse.log)")
                    #expect(try main.concourse.check("tractor", source: main.tractor) == [["ref": c1]])
                    #expect(try main.concourse.check("release", source: main.release) == [], "no release tag yet")
                    let base1 = try Self.baseJob(main, ["ref": c1], registry: registry)
                    #expect(base1.put == ["ref": c1], "out returns the version check emitted")
                    let baseDigest = try base1.build.read("image/digest")
                    #expect(try Self.tags(registry, "fornax/base_image") == [short(c1), "main"])
                    #expect(try SeedFixture.digest(registry, "fornax/base_image", short(c1)) == baseDigest)
                    #expect(try SeedFixture.digest(registry, "fornax/base_image", "main") == baseDigest)

                    let tractor1 = try Self.tractorJob(main, ["ref": c1], base: base1.put, registry: registry)
                    #expect(tractor1.put == ["ref": c1])
                    let tractorDigest1 = try tractor1.build.read("image/digest")
                    #expect(try Self.tags(registry, "fornax/tractor") == [short(c1), "main"])
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", "main") == tractorDigest1)
                    let record = try JSONSerialization.jsonObject(with: Data(contentsOf: tractor1.build.directory.appendingPathComponent("image/build.json")))
                    let bases = try #require((record as? [String: Any])?["baseDigests"] as? [String: String], "build.json: \(record)")
                    #expect(Array(bases.values) == [baseDigest], "tractor is built FROM base_image:main, pinned by digest: \(bases)")
                    #expect(try tractor1.build.read("tractor/rootfs/built") == "base v1\ntractor v1", "the put's implicit get: tractor on its base")

                    // 2. A feature branch whose commit touches images/tractor/ only, and its pipeline:
                    //    a tractor version for the commit, none for base_image (its newest version is
                    //    main's commit, already published: the base job reuses it, no build).
                    try repository.branch("fix-issue-34", checkout: true)
                    let c2 = try repository.commit("tractor: fix issue 34", files: ["images/tractor/marker": "tractor fix-issue-34\n"])
                    try repository.push()
                    let feature = Pipeline(root: directory.appending("fornax-fix-issue-34"), branch: "fix-issue-34", registry: registry, uri: uri)
                    #expect(try feature.concourse.check("tractor", source: feature.tractor) == [["ref": c2]], "\(feature.concourse.log)")
                    #expect(try feature.concourse.check("base-image", source: feature.base) == [["ref": c1]], "no base_image version for \(c2)")
                    #expect(try main.concourse.check("tractor", source: main.tractor, from: ["ref": c1]) == [["ref": c1]], "main did not move")
                    let featureBase = try Self.baseJob(feature, ["ref": c1], registry: registry)
                    #expect(featureBase.log.contains("no build"), "the branch's base is main's, reused: \(featureBase.log)")
                    #expect(featureBase.put == ["ref": c1])
                    #expect(try Self.tags(registry, "fornax/base_image") == [short(c1), "main", "fix-issue-34"])
                    #expect(try SeedFixture.digest(registry, "fornax/base_image", "fix-issue-34") == baseDigest)
                    #expect(try SeedFixture.digest(registry, "fornax/base_image", short(c1)) == baseDigest, "the commit's tag kept its image")

                    let tractor2 = try Self.tractorJob(feature, ["ref": c2], base: featureBase.put, registry: registry)
                    #expect(!tractor2.log.contains("no build"), "the tractor builds: \(tractor2.log)")
                    #expect(tractor2.put == ["ref": c2])
                    let tractorDigest2 = try tractor2.build.read("image/digest")
                    #expect(tractorDigest2 != tractorDigest1)
                    #expect(try Self.tags(registry, "fornax/tractor") == [short(c1), "main", short(c2), "fix-issue-34"])
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", short(c2)) == tractorDigest2)
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", "fix-issue-34") == tractorDigest2)
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", "main") == tractorDigest1, "main's tag stays")
                    #expect(try tractor2.build.read("tractor/rootfs/built") == "base v1\ntractor fix-issue-34")
                    #expect(try feature.concourse.check("tractor", source: feature.tractor, from: ["ref": c2]) == [["ref": c2]])

                    // 3. The release v1.2.0 of main: the release resource emits it, its get writes the
                    //    `release` file, and the puts tag main's images without rebuilding.
                    try repository.checkout("main")
                    let start = Date()
                    try repository.tag("v1.2.0", at: "main", message: "release 1.2.0", date: start)
                    try repository.push()
                    let release1 = try main.concourse.check("release", source: main.release)
                    #expect(release1 == [["ref": c1, "release": "v1.2.0"]], "\(main.concourse.log)")
                    let released1 = try Self.releaseJob(main, try #require(release1.first))
                    #expect(try released1.build.read("release/release") == "v1.2.0")
                    #expect(released1.base == ["ref": c1], "the promoted image's commit: the version check emits")
                    #expect(released1.tractor == ["ref": c1])
                    #expect(try main.concourse.check("tractor", source: main.tractor, from: ["ref": c1]) == [released1.tractor])
                    let releaseTags = ["1.2.0", "v1.2.0", "1.2", "1", "stable"]
                    for (name, digest) in [("base_image", baseDigest), ("tractor", tractorDigest1)] {
                        for tag in releaseTags {
                            #expect(try SeedFixture.digest(registry, "fornax/\(name)", tag) == digest, "\(name):\(tag) is main's image")
                        }
                    }
                    #expect(try Self.tags(registry, "fornax/tractor") == Set([short(c1), "main", short(c2), "fix-issue-34"] + releaseTags))
                    for log in released1.logs {
                        #expect(log.contains("(0 blobs copied, 0 mounted"), "no blob sent: \(log)")
                    }

                    // 4. main moves on: a commit touching images/tractor/ only makes a tractor
                    //    version and no base_image version; only the tractor builds.
                    let c3 = try repository.commit("tractor v2", files: ["images/tractor/marker": "tractor v2\n"])
                    try repository.push()
                    #expect(try main.concourse.check("base-image", source: main.base, from: ["ref": c1]) == [["ref": c1]])
                    #expect(try main.concourse.check("tractor", source: main.tractor, from: ["ref": c1]) == [["ref": c1], ["ref": c3]])
                    let tractor3 = try Self.tractorJob(main, ["ref": c3], base: base1.put, registry: registry)
                    #expect(tractor3.put == ["ref": c3])
                    let tractorDigest3 = try tractor3.build.read("image/digest")
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", "main") == tractorDigest3)
                    #expect(try SeedFixture.digest(registry, "fornax/tractor", short(c3)) == tractorDigest3)
                    #expect(try SeedFixture.digest(registry, "fornax/base_image", "main") == baseDigest)

                    // 5. A release of an older line, published later (v1.1.5): main's images get
                    //    1.1.5, v1.1.5 and 1.1; `1`, `1.2` and `stable` stay with 1.2.0.
                    try repository.tag("v1.1.5", at: "main", message: "release 1.1.5", date: start.addingTimeInterval(60))
                    try repository.push()
                    let release2 = try main.concourse.check("release", source: main.release, from: release1[0])
                    #expect(release2 == [["ref": c1, "release": "v1.2.0"], ["ref": c3, "release": "v1.1.5"]])
                    let released2 = try Self.releaseJob(main, try #require(release2.last))
                    #expect(try released2.build.read("release/release") == "v1.1.5")
                    #expect(released2.base == ["ref": c1])
                    #expect(released2.tractor == ["ref": c3])
                    for tag in ["1.1.5", "v1.1.5", "1.1"] {
                        #expect(try SeedFixture.digest(registry, "fornax/tractor", tag) == tractorDigest3, "tractor:\(tag)")
                        #expect(try SeedFixture.digest(registry, "fornax/base_image", tag) == baseDigest, "base_image:\(tag)")
                    }
                    for tag in releaseTags {
                        #expect(try SeedFixture.digest(registry, "fornax/tractor", tag) == tractorDigest1, "tractor:\(tag) stays with 1.2.0")
                    }
                    #expect(try Self.tags(registry, "fornax/tractor")
                            == Set([short(c1), "main", short(c2), "fix-issue-34", short(c3), "1.1.5", "v1.1.5", "1.1"] + releaseTags))
                }
            }
        }
    }

    /// The gap the seed admits: a change to base_image did not rebuild tractor. With
    /// `build-task build-all` (the build logic, standalone, as the seed runs scripts/build.py),
    /// an unchanged repository builds nothing and a base change rebuilds exactly its dependents.
    @Test func aBaseChangeRebuildsExactlyItsDependents() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    var files = SeedFixture.imageFiles("images/base_image", marker: "base v1")
                    files["images/tractor/Dockerfile"] = Self.tractorDockerfile
                    files["images/tractor/marker"] = "tractor v1\n"
                    files.merge(SeedFixture.imageFiles("images/heasoft", marker: "heasoft v1")) { $1 }
                    _ = try SeedFixture.commit(repository, "three images", files: files)
                    func buildAll(_ name: String) throws -> (String, [String: Bool]) {
                        let output = directory.appending("out-\(name)")
                        let result = try runProcess(try builtProduct("build-task").path, ["build-all"], environment: [
                            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "ROOT": repository.path.appendingPathComponent("images").path,
                            "REPOSITORY": "\(registry.host)/fornax", "IMAGE_TAG": "main", "PUSH": "true", "BUILD_ARG_REGISTRY": registry.host,
                            "REGISTRY_INSECURE": "true", "CACHE": directory.appending("cache").path, "OUTPUT": output.path,
                        ], currentDirectory: directory.url)
                        try #require(result.succeeded, "\(result.stderrString)")
                        var reused: [String: Bool] = [:]
                        for image in ["base_image", "tractor", "heasoft"] {
                            let record = try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("\(image)/build.json"))) as? [String: Any]
                            reused[image] = record?["reused"] as? Bool
                        }
                        return (result.stdoutString, reused)
                    }
                    let (_, first) = try buildAll("first")
                    #expect(first == ["base_image": false, "tractor": false, "heasoft": false])
                    let (_, unchanged) = try buildAll("unchanged")
                    #expect(unchanged == ["base_image": true, "tractor": true, "heasoft": true], "an unchanged graph builds nothing")
                    let oldBase = try SeedFixture.digest(registry, "fornax/base_image", "main")

                    _ = try repository.commit("base v2", files: ["images/base_image/marker": "base v2\n"])
                    let (_, changed) = try buildAll("changed")
                    #expect(changed == ["base_image": false, "tractor": false, "heasoft": true], "the base and exactly its dependents")
                    let newBase = try SeedFixture.digest(registry, "fornax/base_image", "main")
                    #expect(newBase != oldBase)
                    let inspected = try runProcess("skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.host)/fornax/tractor:main"]).checked()
                    let labels = (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"] as? [String: String]
                    #expect(labels?["org.opencontainers.image.base.digest"] == newBase, "tractor is built on the new base")
                }
            }
        }
    }
}
