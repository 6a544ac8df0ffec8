import Foundation
import TestSupport
import Testing

/// Seed 000 (BitOps), ci/pipelines/000-base-and-prebuilt.yml, played step by step: the base
/// image rebuilt on every change of base/; a release (git tag `v*`) builds `<release>-base`
/// and bumps the tag file (prebuilt-config/bitops-tag.yaml, key tags.bitops-tag) that the
/// prebuilt images' resource watches, so they rebuild FROM the new base; a manual run
/// builds and pushes a custom tag.
@Suite("seed 000: the BitOps base and prebuilt images", .serialized)
struct Seed000BasePrebuiltTests {
    /// The tag file as the repository holds it: the value is the release name the prebuilt
    /// images build on (`${BITOPS_TAG}-base`), so a release one minor ahead lines up with
    /// the bump. Comments, the other key and the quoting must survive the bump.
    static func tagFile(_ value: String) -> String {
        """
        # The base release the prebuilt images build FROM; the release job bumps it.
        tags:
          bitops-tag: "\(value)"   # minor bump per base release
          plugins-tag: latest
        """ + "\n"
    }

    static let prebuiltDockerfile = """
        ARG BITOPS_BASE
        ARG BITOPS_TAG
        FROM ${BITOPS_BASE}:${BITOPS_TAG}-base
        COPY marker /marker
        RUN ["/bin/busybox", "sh", "-c", "cat /marker >> /built"]

        """

    @Test func baseReleaseBumpAndPrebuiltEndToEnd() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository(branch: "plugins") { repository in
                try await withTemporaryDirectory { directory in
                    var files = SeedFixture.imageFiles("base", marker: "base-1")
                    files["prebuilt/Dockerfile"] = Self.prebuiltDockerfile
                    files["prebuilt/marker"] = "prebuilt-1\n"
                    files["prebuilt-config/bitops-tag.yaml"] = Self.tagFile("v2.0.0")
                    files["README.md"] = "bitops\n"
                    let c1 = try SeedFixture.commit(repository, "base and prebuilt", files: files)
                    let remote = try repository.bareClone()
                    try repository.push()

                    let host = registry.host
                    let git: [String: Any] = ["uri": remote.url.absoluteString, "branch": "plugins"]
                    let baseImage: [String: Any] = ["repository": "\(host)/bitovi/bitops", "insecure": true,
                                                    "git": git.merging(["paths": ["base/"]]) { $1 }, "tags": ["{short_ref}", "{branch}"]]
                    let baseRelease: [String: Any] = ["repository": "\(host)/bitovi/bitops", "insecure": true,
                                                      "git": git.merging(["tag_filter": "v*"]) { $1 }, "tags": ["{release}-base"]]
                    let prebuiltImage: [String: Any] = ["repository": "\(host)/bitovi/bitops-prebuilt", "insecure": true,
                                                        "git": git.merging(["paths": ["prebuilt/"]]) { $1 },
                                                        "tag_file": ["path": "prebuilt-config/bitops-tag.yaml", "key": "tags.bitops-tag"],
                                                        "tags": ["{tag_file}-{short_ref}"]]
                    let concourse = Concourse(root: directory.appending("concourse"))
                    // The build-base task's params (REGISTRY_INSECURE stands for the credentials: a plain-HTTP test registry).
                    let buildBase = ["CONTEXT": "base-image/source/base", "REGISTRY_INSECURE": "true"]

                    // The build-base job: get (image: skip), build-task, put (no get_params: the implicit get fetches).
                    func buildBaseJob(_ version: [String: String]) throws -> (Concourse.Build, [String: String]) {
                        let build = try concourse.build()
                        try build.get("base-image", source: baseImage, version: version, params: ["image": "skip"])
                        try build.buildTask(buildBase)
                        let put = try build.put("base-image", source: baseImage, params: ["image": "image/oci"], getParams: [:])
                        return (build, put)
                    }

                    // 1. The first checks; the base is built and tagged with its commit and the branch.
                    #expect(try concourse.check("base-image", source: baseImage) == [["ref": c1]], "\(concourse.log)")
                    #expect(try concourse.check("base-release", source: baseRelease) == [], "no release tag yet")
                    let p1 = ["ref": c1, "tag_file": "v2.0.0"]
                    #expect(try concourse.check("prebuilt-image", source: prebuiltImage) == [p1])
                    let (first, put1) = try buildBaseJob(["ref": c1])
                    #expect(put1 == ["ref": c1], "out returns the version check emitted")
                    let digest1 = try first.read("image/digest")
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", String(c1.prefix(12))) == digest1)
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", "plugins") == digest1)
                    #expect(try first.read("base-image/digest") == digest1, "the implicit get fetched the pushed image")
                    #expect(try first.read("base-image/rootfs/built") == "base-1")

                    // The prebuilt job at the initial tag file value: no v2.0.0-base exists, one clear error before buildah.
                    let early = try concourse.build()
                    try early.get("prebuilt-image", source: prebuiltImage, version: p1, params: ["image": "skip"])
                    #expect(try early.read("prebuilt-image/tag_file") == "v2.0.0")
                    do {
                        try early.buildTask(["CONTEXT": "prebuilt-image/source/prebuilt", "BUILD_ARG_BITOPS_BASE": "\(host)/bitovi/bitops",
                                             "BUILD_ARG_BITOPS_TAG": try early.read("prebuilt-image/tag_file"), "REGISTRY_INSECURE": "true"])
                        Issue.record("a build FROM a base that does not exist succeeded")
                    } catch let failure as Concourse.StepFailure {
                        #expect(failure.description.contains("bitovi/bitops:v2.0.0-base"), "the error names the missing base: \(failure)")
                    }

                    // 2. A commit outside base/ makes no base version; one inside rebuilds and moves the branch tag.
                    _ = try repository.commit("docs", files: ["README.md": "bitops, documented\n"])
                    try repository.push()
                    #expect(try concourse.check("base-image", source: baseImage, from: ["ref": c1]) == [["ref": c1]])
                    let c2 = try SeedFixture.commit(repository, "base: new tools", files: ["base/marker": "base-2\n"])
                    try repository.push()
                    #expect(try concourse.check("base-image", source: baseImage, from: ["ref": c1]) == [["ref": c1], ["ref": c2]])
                    #expect(try concourse.check("prebuilt-image", source: prebuiltImage, from: p1) == [p1], "base/ is not the prebuilt's path")
                    let (second, put2) = try buildBaseJob(["ref": c2])
                    #expect(put2 == ["ref": c2])
                    let digest2 = try second.read("image/digest")
                    #expect(digest2 != digest1)
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", String(c2.prefix(12))) == digest2)
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", "plugins") == digest2, "the branch tag moved")
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", String(c1.prefix(12))) == digest1, "the commit tag is immutable")

                    // 3. A release: the git tag v2.1.0 on plugins.
                    try repository.tag("v2.1.0", message: "BitOps 2.1.0")
                    try repository.push()
                    let release = ["ref": c2, "release": "v2.1.0"]
                    #expect(try concourse.check("base-release", source: baseRelease) == [release], "\(concourse.log)")

                    // The release-base job: get base-release, the build-base task through input_mapping
                    // (base-image: base-release), put base-release, then put prebuilt-image's bump.
                    let releaseJob = try concourse.build()
                    try releaseJob.get("base-release", source: baseRelease, version: release, params: ["image": "skip"])
                    #expect(try releaseJob.read("base-release/release") == "v2.1.0")
                    #expect(try releaseJob.read("base-release/tag") == "v2.1.0-base")
                    try FileManager.default.createSymbolicLink(atPath: releaseJob.directory.appendingPathComponent("base-image").path,
                                                               withDestinationPath: "base-release")
                    try releaseJob.buildTask(buildBase)
                    let releaseDigest = try releaseJob.read("image/digest")
                    let putRelease = try releaseJob.put("base-release", source: baseRelease, params: ["image": "image/oci"], getParams: [:])
                    #expect(putRelease == release, "out returns the release version check emitted")
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", "v2.1.0-base") == releaseDigest, "\(concourse.log)")
                    #expect(try releaseJob.read("base-release/digest") == releaseDigest)
                    #expect(try releaseJob.read("base-release/source/.git/branch") == "plugins")
                    #expect(releaseDigest == digest2, "the release's commit was built already: a reproducible build gives the same image")
                    #expect(try concourse.check("base-release", source: baseRelease, from: release) == [release])

                    let bumped = try releaseJob.put("prebuilt-image", source: prebuiltImage, params: ["bump_tag_file": "minor"], getParams: [:])
                    let c3 = try #require(bumped["ref"])
                    #expect(bumped == ["ref": c3, "tag_file": "v2.1.0"], "\(concourse.log)")
                    #expect(try remote.git("rev-parse", "plugins") == c3, "the bump is the remote's new tip")
                    #expect(try remote.git("rev-parse", "\(c3)^") == c2, "one commit on top of the release")
                    #expect(try remote.git("show", "plugins:prebuilt-config/bitops-tag.yaml") + "\n" == Self.tagFile("v2.1.0"),
                            "only the value changed: comments, the other key and the quotes are kept")
                    #expect(try remote.git("log", "-1", "--format=%an <%ae>", "plugins") == "Slipway <slipway@localhost>")
                    #expect(try remote.git("diff-tree", "--no-commit-id", "--name-only", "-r", c3) == "prebuilt-config/bitops-tag.yaml")
                    #expect(try releaseJob.read("prebuilt-image/tag_file") == "v2.1.0", "the implicit get of the bump's version")

                    // The downstream checks: the bump is a prebuilt version (the tag file is watched), not a base one.
                    let p3 = ["ref": c3, "tag_file": "v2.1.0"]
                    #expect(try concourse.check("prebuilt-image", source: prebuiltImage, from: p1) == [p1, p3])
                    #expect(try concourse.check("base-image", source: baseImage, from: ["ref": c2]) == [["ref": c2]])
                    #expect(try concourse.check("base-release", source: baseRelease, from: release) == [release])

                    // 4. The build-prebuilt job, triggered by the bump: FROM ${BITOPS_BASE}:${BITOPS_TAG}-base with
                    //    BITOPS_TAG read from the get's tag_file, as the task's shell does.
                    let prebuilt = try concourse.build()
                    try prebuilt.get("prebuilt-image", source: prebuiltImage, version: p3, params: ["image": "skip"])
                    let bitopsTag = try prebuilt.read("prebuilt-image/tag_file")
                    #expect(bitopsTag == "v2.1.0")
                    try prebuilt.buildTask(["CONTEXT": "prebuilt-image/source/prebuilt", "BUILD_ARG_BITOPS_BASE": "\(host)/bitovi/bitops",
                                            "BUILD_ARG_BITOPS_TAG": bitopsTag, "REGISTRY_INSECURE": "true"])
                    let prebuiltDigest = try prebuilt.read("image/digest")
                    let labels = try Self.labels(prebuilt.directory.appendingPathComponent("image/oci"))
                    #expect(labels["org.opencontainers.image.base.name"] == "\(host)/bitovi/bitops:v2.1.0-base")
                    #expect(labels["org.opencontainers.image.base.digest"] == releaseDigest, "built FROM the release's base")
                    #expect(labels["org.opencontainers.image.revision"] == c3)
                    let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: prebuilt.directory.appendingPathComponent("image/build.json"))) as? [String: Any])
                    let bases = try #require(record["bases"] as? [[String: String]])
                    #expect(bases.map { $0["digest"] } == [releaseDigest], "build.json's bases: \(bases)")
                    let putPrebuilt = try prebuilt.put("prebuilt-image", source: prebuiltImage, params: ["image": "image/oci"], getParams: [:])
                    #expect(putPrebuilt == p3, "the version check emitted for the bump")
                    let short3 = String(c3.prefix(12))
                    #expect(try SeedFixture.tags(registry, "bitovi/bitops-prebuilt") == ["v2.1.0-\(short3)", "v2.1.0"])
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops-prebuilt", "v2.1.0-\(short3)") == prebuiltDigest)
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops-prebuilt", "v2.1.0") == prebuiltDigest)
                    // The implicit get fetched it: the base's file and the prebuilt's, in one rootfs.
                    let inImage = try runProcess("/usr/sbin/chroot", [prebuilt.directory.appendingPathComponent("prebuilt-image/rootfs").path,
                                                                      "/bin/busybox", "cat", "/built"])
                    #expect(inImage.succeeded && inImage.stdoutString == "base-2\nprebuilt-1\n", "\(inImage.stdoutString)\(inImage.stderrString)")
                    #expect(try concourse.check("prebuilt-image", source: prebuiltImage, from: p3) == [p3])

                    // 5. The custom-base job (workflow_dispatch): a manual build pushed with a custom tag, no put.
                    let custom = try concourse.build()
                    try custom.get("base-image", source: baseImage, version: ["ref": c2], params: ["image": "skip"])
                    try custom.buildTask(["CONTEXT": "base-image/source/base", "TAG": "\(host)/bitovi/bitops:my-experiment", "PUSH": "true",
                                          "REGISTRY_INSECURE": "true"])
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", "my-experiment") == (try custom.read("image/digest")))
                    #expect(try SeedFixture.digest(registry, "bitovi/bitops", "plugins") == digest2, "a manual build moves no other tag")
                    #expect(try SeedFixture.tags(registry, "bitovi/bitops")
                            == [String(c1.prefix(12)), String(c2.prefix(12)), "plugins", "v2.1.0-base", "my-experiment"])
                }
            }
        }
    }

    /// The labels of the image in an OCI layout build-task wrote (named `latest`).
    static func labels(_ layout: URL) throws -> [String: String] {
        let inspected = try runProcess("skopeo", ["inspect", "oci:\(layout.path):latest"]).checked()
        return (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["Labels"] as? [String: String] ?? [:]
    }
}
