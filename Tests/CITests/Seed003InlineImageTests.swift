import Foundation
import TestSupport
import Testing

/// Seed 003, ci/pipelines/003-inline-image.yml, played step by step: the image built inline
/// in the pipeline that consumes it, on a feature branch; builds only when images/banana/
/// changes; immutable commit tag plus `<branch>-latest`; no race between image and code.
@Suite("seed 003: an inline image per feature branch", .serialized)
struct Seed003InlineImageTests {
    @Test func theFeatureBranchPipelineEndToEnd() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    _ = try repository.commit("readme", files: ["README.md": "banana\n"])
                    try repository.branch("feat/foo", checkout: true)
                    var files = SeedFixture.imageFiles("images/banana", marker: "v1")
                    files["test.sh"] = "#!/bin/sh\ntest -f /built\n"
                    let v1 = try SeedFixture.commit(repository, "banana image", files: files)
                    let remote = try repository.bareClone()
                    try repository.push()
                    let locks = try TestGitRepository.create(at: directory.appending("locks-work"))
                    _ = try locks.commit("locks", allowEmpty: true)
                    let lockRemote = try locks.bareClone()

                    let repo = "marcomm/banana-img1"
                    let git: [String: Any] = ["uri": remote.url.absoluteString, "branch": "feat/foo"]
                    let image: [String: Any] = ["repository": "\(registry.host)/\(repo)", "insecure": true,
                                                "git": git.merging(["paths": ["images/banana/"]]) { $1 }, "tags": ["{short_ref}", "{branch}-latest"]]
                    let code: [String: Any] = ["repository": "\(registry.host)/\(repo)", "insecure": true,
                                               "git": git.merging(["ignore_paths": ["images/banana/"]]) { $1 }]
                    let concourse = Concourse(root: directory.appending("concourse"))
                    let task: [String: String] = ["CONTEXT": "banana-image/source/images/banana", "SKIP_IF_PUBLISHED": "\(registry.host)/\(repo)",
                                                  "LOCK": "git:\(lockRemote.url.absoluteString)", "LOCK_KEY": repo, "REGISTRY_INSECURE": "true"]

                    // The build job, as the pipeline runs it.
                    func buildJob(_ imageVersion: [String: String], _ codeVersion: [String: String]) throws -> (Concourse.Build, [String: String], String) {
                        let build = try concourse.build()
                        try build.get("banana-image", source: image, version: imageVersion, params: ["image": "skip"])
                        try build.get("banana-code", source: code, version: codeVersion, params: ["image": "skip", "source": false])
                        let log = try build.buildTask(task)
                        let put = try build.put("banana-image", source: image, params: ["image": "image/oci"], getParams: ["format": "rootfs"])
                        return (build, put, log)
                    }

                    // 1. The first check of each resource, then the build job.
                    #expect(try concourse.check("banana-image", source: image) == [["ref": v1]], "\(concourse.log)")
                    let c1 = try #require(try concourse.check("banana-code", source: code).last)
                    let (first, put1, _) = try buildJob(["ref": v1], c1)
                    #expect(put1 == ["ref": v1], "out returns the version check emitted")
                    let digest1 = try first.read("image/digest")
                    #expect(try SeedFixture.digest(registry, repo, String(v1.prefix(12))) == digest1, "the immutable commit tag")
                    #expect(try SeedFixture.digest(registry, repo, "feat-foo-latest") == digest1, "the branch's floating tag")

                    // 2. The test job: its task runs in the image got from our resource (rootfs + metadata.json).
                    let testJob = try concourse.build()
                    try testJob.get("banana-image", source: image, version: put1, params: ["image": "required", "format": "rootfs"])
                    try testJob.get("banana-code", source: code, version: c1, params: ["image": "skip"])
                    #expect(FileManager.default.fileExists(atPath: testJob.directory.appendingPathComponent("banana-image/metadata.json").path))
                    let rootfs = testJob.directory.appendingPathComponent("banana-image/rootfs")
                    let inImage = try runProcess("/usr/sbin/chroot", [rootfs.path, "/bin/busybox", "cat", "/built"])
                    #expect(inImage.succeeded && inImage.stdoutString == "v1\n", "the task's image is the one built: \(inImage.stderrString)")

                    // 3. A change of the code only: no image version, and the build job (triggered by
                    //    the code) reuses the published image without building.
                    let c2 = try repository.commit("code only", files: ["test.sh": "#!/bin/sh\ntest -s /built\n"])
                    try repository.push()
                    #expect(try concourse.check("banana-image", source: image, from: ["ref": v1]) == [["ref": v1]], "only image paths make versions")
                    #expect(try concourse.check("banana-code", source: code, from: c1).last == ["ref": c2])
                    let (_, put2, log2) = try buildJob(["ref": v1], ["ref": c2])
                    #expect(log2.contains("no build"), "SKIP_IF_PUBLISHED reused the image: \(log2)")
                    #expect(put2 == ["ref": v1], "the same version again: Concourse sees no new image")

                    // 4. One commit changing the image and the code together: both move, one build sees both.
                    let v3 = try SeedFixture.commit(repository, "image and code", files: ["images/banana/marker": "v3\n", "test.sh": "#!/bin/sh\ngrep v3 /built\n"])
                    try repository.push()
                    #expect(try concourse.check("banana-image", source: image, from: ["ref": v1]) == [["ref": v1], ["ref": v3]])
                    let c3 = try #require(try concourse.check("banana-code", source: code, from: ["ref": c2]).last)
                    #expect(c3 == ["ref": v3])
                    let (third, put3, _) = try buildJob(["ref": v3], c3)
                    #expect(put3 == ["ref": v3])
                    let digest3 = try third.read("image/digest")
                    #expect(digest3 != digest1)
                    #expect(try SeedFixture.digest(registry, repo, "feat-foo-latest") == digest3)

                    // 5. The race serial_groups worked around: a late put of the older image never
                    //    moves the branch's tag backwards.
                    let late = try first.put("banana-image", source: image, params: ["image": "image/oci"])
                    #expect(late == ["ref": v1])
                    #expect(try SeedFixture.digest(registry, repo, "feat-foo-latest") == digest3, "held back: \(concourse.log)")

                    // 6. The downstream check sees the newest image version.
                    #expect(try concourse.check("banana-image", source: image, from: ["ref": v3]) == [["ref": v3]])

                    // 7. The branch is merged and deleted; main's pipeline runs `reap`: the branch's
                    //    images go, main's stay, and nothing else is touched.
                    try repository.checkout("main")
                    _ = try repository.merge("feat/foo", message: "merge feat/foo")
                    try repository.push()
                    _ = try remote.git("symbolic-ref", "HEAD", "refs/heads/main")
                    _ = try repository.git("push", "--quiet", "origin", "--delete", "feat/foo")
                    var mainImage = image
                    mainImage["git"] = git.merging(["branch": "main", "paths": ["images/banana/"]]) { $1 }
                    let merged = try #require(try concourse.check("banana-image-main", source: mainImage).last)
                    let mainBuild = try concourse.build()
                    try mainBuild.get("banana-image", source: mainImage, version: merged, params: ["image": "skip"])
                    try mainBuild.buildTask(task)
                    try mainBuild.put("banana-image", source: mainImage, params: ["image": "image/oci"])
                    let before = try SeedFixture.tags(registry, repo)
                    #expect(before.isSuperset(of: ["main-latest", "feat-foo-latest"]), "\(before)")
                    let reap = try concourse.build()
                    try reap.put("banana-image", source: mainImage, params: ["prune": ["deleted_branches": true, "dry_run": false, "max_deletions": 50]])
                    let after = try SeedFixture.tags(registry, repo)
                    #expect(!after.contains("feat-foo-latest") && after.contains("main-latest"), "\(after)")
                    #expect(after.allSatisfy { !$0.hasPrefix("inputs-") || before.contains($0) })
                    for tag in after {
                        let copy = try runProcess("skopeo", ["copy", "--all", "--src-tls-verify=false", "docker://\(registry.host)/\(repo):\(tag)",
                                                             "oci:\(directory.appending("pull-\(tag)").path):x"])
                        #expect(copy.succeeded, "\(tag) no longer pulls: \(copy.stderrString)")
                    }
                }
            }
        }
    }
}
