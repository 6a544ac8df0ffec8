import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

/// `out` with `params.prune` against the real registry: what promotion, multi-arch indexes,
/// deleted branches and retention do to a registry, and that every kept tag still pulls.
@Suite("out prune: the reaper, safe by reachability", .serialized)
struct OutPruneTests {
    let repository = try! Repository("team/app")

    /// Pushes an image (one or several platforms) labelled as build-task labels it.
    @discardableResult
    func push(
        _ client: RegistryClient, tags: [String], branch: String, revision: String, created: Date, seed: String,
        platforms: [String] = ["amd64"], sharing child: Descriptor? = nil, inputs: Digest? = nil, scratch: URL
    ) throws -> (digest: Digest, children: [Descriptor]) {
        let layout = try OCILayout.create(at: scratch.appendingPathComponent("layout-\(seed)"))
        var labels = [
            "dev.slipway.branch": branch, "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.created": ISO8601DateFormatter().string(from: created),
        ]
        if let inputs { labels["dev.slipway.inputs"] = inputs.rawValue }
        var children = try platforms.map { arch in
            try ImageFixture.image(
                in: layout, name: nil, platform: Platform(os: "linux", architecture: arch), layerCount: 1,
                seed: "\(seed)-\(arch)", labels: labels, addToIndex: false)
        }
        if let child { children.append(child) }
        let top: Descriptor
        if children.count == 1 {
            top = children[0]
        } else {
            top = try layout.writeBlob(try CanonicalJSON.encode(ImageIndex(manifests: children)), mediaType: .ociIndex)
        }
        if let child {
            // The shared child's blobs come from the registry: copy them into this layout.
            let response = try client.manifest(repository, .digest(child.digest))
            _ = try layout.writeBlob(response.bytes, mediaType: child.mediaType)
            if case .image(let manifest) = try response.decode() {
                for blob in [manifest.config] + manifest.layers {
                    try client.downloadBlob(repository, blob, to: layout.blobPath(blob.digest))
                }
            }
        }
        try layout.addToIndex(top, name: "latest")
        let image = try layout.image(named: "latest")
        let tagged = try tags.map { try OCI.Tag($0) }
        let report = try ImageTransfer().push(image, with: client, to: repository, tags: tagged)
        return (report.digest, children)
    }

    func pruneRequest(_ registry: TestRegistry, _ remote: TestGitRepository, _ prune: String) -> String {
        #"{"source":{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"},"tags":["{short_ref}","{branch}"]},"params":{"prune":\#(prune)}}"#
    }

    /// Every tag pulls completely: skopeo copies all of its platforms.
    func pullsCompletely(_ registry: TestRegistry, _ tag: String, into directory: URL) -> Bool {
        let target = directory.appendingPathComponent("pull-\(tag)-\(UUID().uuidString.prefix(6))")
        let result = try? runProcess(
            "skopeo",
            [
                "copy", "--all", "--src-tls-verify=false", "docker://\(registry.host)/team/app:\(tag)",
                "oci:\(target.path):x",
            ])
        return result?.succeeded == true
    }

    @Test func deletedBranchesGoWhileEveryKeptTagStillPulls() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let main = try repository.commit("main", files: ["a": "1"])
                    try repository.branch("feat/gone", checkout: true)
                    let gone = try repository.commit("gone", files: ["b": "1"])
                    let gone2 = try repository.commit("gone 2", files: ["b": "2"])
                    try repository.branch("feat/other", at: "main", checkout: false)
                    try repository.checkout("main")
                    let remote = try repository.bareClone()
                    try repository.push()
                    _ = try repository.git("push", "--quiet", "origin", "--delete", "feat/gone")
                    let client = try registry.client()
                    let old = Date().addingTimeInterval(-30 * 86400)

                    // Promotion made prod, staging and the deleted branch's tags share one digest.
                    let shared = try push(
                        client, tags: [String(gone.prefix(12)), "feat-gone", "staging", "prod"], branch: "feat/gone",
                        revision: gone, created: old, seed: "shared", scratch: directory.url)
                    // A multi-arch image of main (kept), and one of the deleted branch sharing main's arm64 child.
                    let kept = try push(
                        client, tags: [String(main.prefix(12)), "main"], branch: "main", revision: main, created: old,
                        seed: "main", platforms: ["amd64", "arm64"], scratch: directory.url)
                    let goneIndex = try push(
                        client, tags: [String(gone2.prefix(12))], branch: "feat/gone", revision: gone2, created: old,
                        seed: "gone-multi", platforms: ["amd64"], sharing: kept.children[1], scratch: directory.url)
                    // Not made by any template of this source: never pruned by branch rules.
                    try push(
                        client, tags: ["nightly"], branch: "feat/gone", revision: gone, created: old, seed: "nightly",
                        scratch: directory.url)

                    // The dry run (the default) changes nothing and says what it would do.
                    let dry = try runOut(
                        pruneRequest(registry, remote, #"{"deleted_branches":true}"#), directory: directory.url)
                    #expect(dry.succeeded, "\(dry.stderrString)")
                    #expect(dry.stderrString.contains("would remove feat-gone"), "\(dry.stderrString)")
                    #expect(try client.tags(self.repository).count == 8)

                    let result = try runOut(
                        pruneRequest(registry, remote, #"{"deleted_branches":true,"dry_run":false}"#),
                        directory: directory.url)
                    #expect(result.succeeded, "\(result.stderrString)")
                    #expect(try outVersion(result) == ["ref": main], "the newest commit's version")
                    let left = Set(try client.tags(self.repository).map(\.rawValue))
                    #expect(left == ["staging", "prod", "nightly", String(main.prefix(12)), "main"], "\(left)")
                    // Every kept tag still pulls completely: the shared digest and main's arm64 child survived.
                    for tag in left {
                        #expect(pullsCompletely(registry, tag, into: directory.url), "\(tag) no longer pulls")
                    }
                    #expect(try client.manifestDescriptor(self.repository, .digest(shared.digest)) != nil)
                    #expect(
                        try client.manifestDescriptor(self.repository, .digest(kept.children[1].digest)) != nil,
                        "a kept index's child")
                    // The deleted branch's own index and its unshared child are gone.
                    #expect(try client.manifestDescriptor(self.repository, .digest(goneIndex.digest)) == nil)
                    #expect(
                        try client.manifestDescriptor(self.repository, .digest(goneIndex.children[0].digest)) == nil)
                }
            }
        }
    }

    /// The cache tags build-task and out make (`inputs-<hex>`) go with the branch that built
    /// their image, unless a kept tag still reaches that image (main reused it).
    @Test func aDeletedBranchsCacheTagsGoUnlessAKeptTagReachesTheirImage() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let main1 = try repository.commit("main 1", files: ["a": "1"])
                    try repository.branch("feat-x", checkout: true)
                    let feat1 = try repository.commit("feat 1", files: ["b": "1"])
                    let feat2 = try repository.commit("feat 2", files: ["b": "2"])
                    try repository.checkout("main")
                    let main2 = try repository.commit("main 2", files: ["a": "2"])
                    let remote = try repository.bareClone()
                    try repository.push()
                    _ = try repository.git("push", "--quiet", "origin", "--delete", "feat-x")
                    let client = try registry.client()
                    let old = Date().addingTimeInterval(-30 * 86400)
                    func cacheTag(_ inputs: Digest) -> String { "inputs-" + inputs.encoded }
                    let (mainInputs, featInputs, reusedInputs) = (
                        Digest.sha256(Data("main".utf8)), Digest.sha256(Data("feat".utf8)),
                        Digest.sha256(Data("reused".utf8))
                    )

                    try push(
                        client, tags: [String(main1.prefix(12)), cacheTag(mainInputs)], branch: "main", revision: main1,
                        created: old,
                        seed: "main", inputs: mainInputs, scratch: directory.url)
                    let feat = try push(
                        client, tags: [String(feat1.prefix(12)), "feat-x", cacheTag(featInputs)], branch: "feat-x",
                        revision: feat1,
                        created: old, seed: "feat", inputs: featInputs, scratch: directory.url)
                    // feat-x built it; main's build of the same inputs reused it and main's put tagged it.
                    let reused = try push(
                        client,
                        tags: [String(feat2.prefix(12)), cacheTag(reusedInputs), String(main2.prefix(12)), "main"],
                        branch: "feat-x", revision: feat2, created: old, seed: "reused", inputs: reusedInputs,
                        scratch: directory.url)

                    let dry = try runOut(
                        pruneRequest(registry, remote, #"{"deleted_branches":true}"#), directory: directory.url)
                    #expect(
                        dry.succeeded && dry.stderrString.contains("would remove \(cacheTag(featInputs))"),
                        "\(dry.stderrString)")
                    let result = try runOut(
                        pruneRequest(registry, remote, #"{"deleted_branches":true,"dry_run":false}"#),
                        directory: directory.url)
                    #expect(result.succeeded, "\(result.stderrString)")
                    let left = Set(try client.tags(self.repository).map(\.rawValue))
                    #expect(
                        left == [
                            String(main1.prefix(12)), cacheTag(mainInputs), String(main2.prefix(12)), "main",
                            cacheTag(reusedInputs),
                        ], "\(left)")
                    for tag in left {
                        #expect(pullsCompletely(registry, tag, into: directory.url), "\(tag) no longer pulls")
                    }
                    #expect(
                        try client.manifestDescriptor(self.repository, .digest(feat.digest)) == nil,
                        "feat-x's own image is deleted")
                    #expect(try client.manifestDescriptor(self.repository, .digest(reused.digest)) != nil)
                }
            }
        }
    }

    @Test func retentionKeepsTheNewestAndTheCapLimitsARun() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    var commits: [String] = []
                    for index in 0..<5 { commits.append(try repository.commit("c\(index)", files: ["f": "\(index)"])) }
                    let remote = try repository.bareClone()
                    try repository.push()
                    let client = try registry.client()
                    for (index, commit) in commits.enumerated() {
                        let created = Date().addingTimeInterval(TimeInterval(-86400 * (30 - index)))
                        try push(
                            client, tags: [String(commit.prefix(12))] + (index == 4 ? ["main"] : []), branch: "main",
                            revision: commit,
                            created: created, seed: "c\(index)", scratch: directory.url)
                    }
                    // keep 2, at most 2 deletions this run: c0 and c1 go, c2 waits for the next run.
                    let first = try runOut(
                        pruneRequest(
                            registry, remote, #"{"deleted_branches":false,"keep":2,"dry_run":false,"max_deletions":2}"#),
                        directory: directory.url)
                    #expect(first.succeeded, "\(first.stderrString)")
                    #expect(first.stderrString.contains("for the next run"))
                    var left = Set(try client.tags(self.repository).map(\.rawValue))
                    #expect(left == Set(commits[2...].map { String($0.prefix(12)) } + ["main"]), "\(left)")
                    let second = try runOut(
                        pruneRequest(registry, remote, #"{"deleted_branches":false,"keep":2,"dry_run":false}"#),
                        directory: directory.url)
                    #expect(second.succeeded, "\(second.stderrString)")
                    left = Set(try client.tags(self.repository).map(\.rawValue))
                    #expect(left == Set(commits[3...].map { String($0.prefix(12)) } + ["main"]), "\(left)")
                    for tag in left {
                        #expect(pullsCompletely(registry, tag, into: directory.url), "\(tag) no longer pulls")
                    }

                    // older_than spares young images.
                    let young = try runOut(
                        pruneRequest(
                            registry, remote, #"{"deleted_branches":false,"keep":0,"older_than":"60d","dry_run":false}"#
                        ),
                        directory: directory.url)
                    let afterYoung = Set(try client.tags(self.repository).map(\.rawValue))
                    #expect(young.succeeded && afterYoung == left, "\(young.stderrString)")

                    let bad = try runOut(
                        pruneRequest(registry, remote, #"{"older_than":"soon"}"#), directory: directory.url)
                    #expect(bad.status == 1 && bad.stderrString.contains("older_than"), "\(bad.stderrString)")
                }
            }
        }
    }

    /// A tag that moves between the plan and the deletions is left alone: the second read
    /// of the tag list is held back by the proxy while the test pushes to a candidate tag.
    @Test func aTagThatMovesDuringTheRunIsLeftAlone() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try await withTemporaryDirectory { directory in
                    _ = try repository.commit("main", files: ["a": "1"])
                    try repository.branch("feat/gone", checkout: true)
                    let gone = try repository.commit("gone", files: ["b": "1"])
                    try repository.checkout("main")
                    let remote = try repository.bareClone()
                    try repository.push()
                    _ = try repository.git("push", "--quiet", "origin", "--delete", "feat/gone")
                    let client = try registry.client()
                    let old = Date().addingTimeInterval(-30 * 86400)
                    try push(
                        client, tags: ["feat-gone"], branch: "feat/gone", revision: gone, created: old, seed: "a",
                        scratch: directory.url)
                    try push(
                        client, tags: [String(gone.prefix(12))], branch: "feat/gone", revision: gone, created: old,
                        seed: "b", scratch: directory.url)

                    // The first tag list passes; the second (the re-read before deleting) waits 6 s: the
                    // test's own push must land meanwhile.
                    let rules = [
                        FaultRule(
                            name: "plan", method: "GET", path: "/tags/list", times: 1, action: .delay(seconds: 0)),
                        FaultRule(
                            name: "re-read", method: "GET", path: "/tags/list", times: 1, action: .delay(seconds: 6)),
                    ]
                    try await withFaultProxy(upstream: registry.baseURL, rules: rules) { proxy in
                        let request =
                            #"{"source":{"repository":"\#(proxy.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"},"tags":["{short_ref}","{branch}"]},"params":{"prune":{"dry_run":false}}}"#
                        let product = try builtProduct("out").path
                        // On a thread of its own, so it runs now, whatever holds the test's task pool.
                        let run = BackgroundProcess(
                            product, [directory.url.path], stdin: Data(request.utf8),
                            environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
                        // Once the plan has read both configs, the re-read is being held: feat-gone moves
                        // to another image (a new push on that tag, straight to the registry).
                        var waited = 0
                        while try proxy.requests().filter({ $0.method == "GET" && $0.path.contains("/blobs/") }).count
                            < 2 && waited < 200
                        {
                            usleep(50_000)
                            waited += 1
                        }
                        let moved = try push(
                            client, tags: ["feat-gone"], branch: "feat/gone", revision: gone, created: old,
                            seed: "moved",
                            scratch: directory.url)
                        let result = try run.result()
                        #expect(result.succeeded, "\(result.stderrString)")
                        #expect(
                            result.stderrString.contains("leaving feat-gone: it moved during the run"),
                            "\(result.stderrString)")
                        #expect(
                            try client.manifestDescriptor(self.repository, .tag(try OCI.Tag("feat-gone")))?.digest
                                == moved.digest)
                        #expect(
                            try client.manifestDescriptor(self.repository, .tag(try OCI.Tag(String(gone.prefix(12)))))
                                == nil, "the unmoved candidate went")
                    }
                }
            }
        }
    }
}
