import Archive
import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

#if canImport(Glibc)
    import Glibc
#endif

/// Interruptions, with the built binaries.
///
/// - `out` killed with SIGKILL in the middle of pushing a 36 MiB two-platform image (the
///   fault proxy delays every upload and manifest PUT by a second, so the kill lands where
///   it is aimed) leaves every tag of the repository on a complete image; a rerun completes
///   and skopeo then copies the tags completely.
/// - Two `check`s of one git source at the same time (one `TMPDIR`, so one cache and its
///   `flock`) agree, round after round, with new commits pushed between rounds, and a third
///   check afterwards is still right.
@Suite("Interruption: out killed mid-push, concurrent checks sharing a cache")
struct InterruptionTests {
    @Test func outKilledMidPushLeavesEveryTagOnACompleteImageAndARerunCompletes() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(name: "slow-upload", method: "PUT", path: "/blobs/uploads/", action: .delay(seconds: 1)),
                    FaultRule(name: "slow-manifest", method: "PUT", path: "/manifests/", action: .delay(seconds: 1)),
                ]
            ) { proxy in
                try await withTemporaryDirectory { directory in
                    let client = try registry.client()
                    let repository = try Repository("team/big")
                    let dev = try OCI.Tag("dev")
                    let next = try OCI.Tag("next")
                    // What the tags hold before: a small complete image.
                    let old = try OCILayout.create(at: directory.appending("old"))
                    try ImageFixture.image(in: old, name: "latest", seed: "old")
                    let oldDigest = try ImageTransfer().push(
                        try old.image(), with: client, to: repository, tags: [dev, next]
                    ).digest

                    // The new image: an index of two platforms, three 6 MiB layers each.
                    let build = directory.appending("build")
                    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                    let (index, children, blobs) = try Self.bigIndex(in: layout)
                    try Data("next".utf8).write(to: build.appendingPathComponent("tags"))
                    let input =
                        #"{"source":{"repository":"\#(proxy.host)/team/big","tag":"dev","insecure":true},"params":{"image":"image/oci","additional_tags":"tags"}}"#
                    let environment = try FaultHarness.environment(directory)
                    let outPath = try builtProduct("out").path
                    let missing: @Sendable () throws -> Int = {
                        try blobs.filter { try !client.blobExists(repository, $0.digest) }.count
                    }
                    let manifestPuts: @Sendable () throws -> Int = {
                        try proxy.requests().filter {
                            $0.method == "PUT" && $0.path.contains("/manifests/") && $0.status == 201
                        }.count
                    }

                    // Three kills, each aimed by what the registry has: as soon as the first blob is
                    // in (the others in flight); as soon as every blob is (the child manifests on
                    // their way); as soon as the first child manifest is in (the second, then the
                    // index, to come). The proxy still delivers what a dead client had sent.
                    for when in ["after the first blob", "after the last blob", "after the first child manifest"] {
                        let missingBefore = try missing()
                        let putsBefore = try manifestPuts()
                        let condition: @Sendable () throws -> Bool =
                            switch when {
                            case "after the first blob":
                                {
                                    try proxy.requests().contains {
                                        $0.method == "PUT" && $0.path.contains("/blobs/uploads/") && $0.status == 201
                                    }
                                }
                            case "after the last blob": { try missing() == 0 }
                            default: { try manifestPuts() > putsBefore }
                            }
                        let (result, killedAfter) = try await runKilled(
                            outPath, [build.path], input: input, environment: environment,
                            scratch: directory.url, when: condition)
                        #expect(
                            result.terminatedBySignal && result.status == SIGKILL,
                            "out was killed \(when): \(result.stderrString)")
                        // Let the proxy finish whatever it still holds for the dead client.
                        try await Task.sleep(for: .milliseconds(2500))
                        let missingAfter = try missing()
                        let childrenIn = try children.filter {
                            try client.manifestDescriptor(repository, .digest($0.digest)) != nil
                        }.count
                        let tagged = try [dev, next].map { try client.manifestDescriptor(repository, .tag($0))?.digest }
                        print(
                            """
                            interruption: out killed \(when) at \(String(format: "%.2f", killedAfter ?? -1)) s; blobs missing before \(missingBefore), \
                            after \(missingAfter) of \(blobs.count); child manifests in: \(childrenIn) of \(children.count); \
                            dev and next hold \(tagged.map { $0 == oldDigest ? "the old image" : $0 == index.digest ? "the new image" : "\($0.map(\.rawValue) ?? "nothing")" })
                            """)
                        // The point: no tag on an incomplete image, whatever the moment of the kill.
                        try Self.expectEveryTagComplete(client, repository)
                        for digest in tagged {
                            #expect(
                                digest == oldDigest || digest == index.digest,
                                "\(when): a tag holds \(String(describing: digest))")
                        }
                        if when == "after the first blob" {
                            #expect(missingAfter > 0, "the kill landed mid-push")
                            #expect(
                                tagged == [oldDigest, oldDigest],
                                "with blobs missing, both tags still hold the old image")
                        }
                    }

                    // The rerun completes (only the missing blobs are sent) and moves both tags.
                    let rerun = try FaultHarness.runTimed(
                        outPath, [build.path], input: input, environment: environment,
                        scratch: directory.appending("rerun"))
                    try #require(rerun.status == 0, "the rerun failed: \(rerun.stderrString)")
                    let version =
                        try #require(try JSONSerialization.jsonObject(with: rerun.stdout) as? [String: Any])["version"]
                        as? [String: String]
                    #expect(version == ["tag": "dev", "digest": index.digest.rawValue])
                    print(
                        "interruption: the rerun took \(String(format: "%.2f", rerun.elapsed)) s: \(rerun.stderrString.split(separator: "\n").last ?? "")"
                    )
                    for tag in [dev, next] {
                        #expect(try client.manifestDescriptor(repository, .tag(tag))?.digest == index.digest, "\(tag)")
                    }
                    try Self.expectEveryTagComplete(client, repository)
                    for tag in ["dev", "next"] {
                        let copied = directory.appending("skopeo-\(tag)")
                        // (skopeo would gzip uncompressed layers for an oci: destination, which changes the
                        // manifests; keep them, and fail rather than change a digest.)
                        _ = try runProcess(
                            "skopeo",
                            [
                                "copy", "--all", "--preserve-digests", "--dest-oci-accept-uncompressed-layers",
                                "--src-tls-verify=false", "docker://\(registry.host)/team/big:\(tag)",
                                "oci:\(copied.path):x",
                            ]
                        ).checked()
                        let copiedLayout = try OCILayout(opening: copied)
                        let top = try #require(try copiedLayout.index().manifests.first)
                        #expect(top.digest == index.digest, "skopeo copied \(tag) as the index out pushed")
                        #expect(
                            Set(try copiedLayout.blobs(reachableFrom: top).map(\.digest)).isSuperset(
                                of: blobs.map(\.digest)))
                    }
                }
            }
        }
    }

    @Test func concurrentChecksOfOneSourceAgreeAndLeaveTheCacheUsable() async throws {
        let rounds = 8
        try await withTestGitRepository { repository in
            try await withTemporaryDirectory { directory in
                let remote = try repository.bareClone()
                let environment = try FaultHarness.environment(directory)
                let source =
                    #"{"repository":"registry.invalid/team/app","insecure":true,"tag_file":"images/app/VERSION","git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                var matching: [[String: String]] = []
                var minor = 0
                func appCommit(_ message: String) throws {
                    minor += 1
                    let commit = try repository.commit(
                        message,
                        files: [
                            "images/app/Dockerfile": "FROM scratch\nLABEL n=\(minor)\n",
                            "images/app/VERSION": "1.\(minor)\n",
                        ])
                    matching.append(["ref": commit, "tag_file": "1.\(minor)"])
                    _ = try repository.commit("docs after \(message)", files: ["README.md": "\(minor)\n"])
                }
                try appCommit("app first")
                try repository.push()

                let checkPath = try builtProduct("check").path
                let cacheRoot = URL(fileURLWithPath: environment["TMPDIR"]!).appendingPathComponent("slipway-git")
                var given: [String: String]?
                var contended = 0
                for round in 0..<rounds {
                    // 0, 1 or 2 new versions: a round without any takes the "remote unchanged" path.
                    if round > 0 {
                        for step in 0..<(round % 3) { try appCommit("app round \(round) step \(step)") }
                        try repository.push()
                    }
                    // Odd rounds: the test holds the cache's lock until both checks are blocked on
                    // it, so they surely meet there and then run back to back. Even rounds (the
                    // first, which clones, among them): they race as they come.
                    let input =
                        try given.map { #"{"source":\#(source),"version":\#(try jsonText($0))}"# }
                        ?? #"{"source":\#(source)}"#
                    let scratch = (directory.appending("round-\(round)-a"), directory.appending("round-\(round)-b"))
                    let held = round % 2 == 1 ? try HeldLock(try Self.cacheLock(in: cacheRoot)) : nil
                    async let first = FaultHarness.onThread {
                        try FaultHarness.runTimed(
                            checkPath, [], input: input, environment: environment, scratch: scratch.0, limit: 120)
                    }
                    async let second = FaultHarness.onThread {
                        try FaultHarness.runTimed(
                            checkPath, [], input: input, environment: environment, scratch: scratch.1, limit: 120)
                    }
                    if let held {
                        let met = try await FaultHarness.onThread { held.release(whenWaiters: 2, within: .seconds(60)) }
                        #expect(met, "round \(round): both checks were seen waiting for the cache lock")
                    }
                    let results = [try await first, try await second]
                    if held != nil {
                        for result in results {
                            #expect(
                                result.stderrString.contains("waiting for another check"),
                                "round \(round): \(result.stderrString)")
                        }
                    }
                    let expected = given.map { Array(matching[matching.firstIndex(of: $0)!...]) } ?? [matching.last!]
                    for result in results {
                        try #require(result.status == 0, "round \(round): \(result.stderrString)")
                        #expect(
                            try JSONDecoder().decode([[String: String]].self, from: result.stdout) == expected,
                            "round \(round)")
                        // Neither found the cache broken or half-made by the other.
                        #expect(
                            !result.stderrString.contains("cloning afresh"), "round \(round): \(result.stderrString)")
                    }
                    #expect(results[0].stdout == results[1].stdout, "round \(round): both checks answer the same")
                    if results.contains(where: { $0.stderrString.contains("waiting for another check") }) {
                        contended += 1
                    }
                    given = matching.last
                }

                // A third check, alone, from the first version: every version, in order.
                let all = try FaultHarness.runTimed(
                    checkPath, [], input: #"{"source":\#(source),"version":\#(jsonText(matching[0]))}"#,
                    environment: environment, scratch: directory.appending("third"), limit: 120)
                try #require(all.status == 0, "\(all.stderrString)")
                #expect(try JSONDecoder().decode([[String: String]].self, from: all.stdout) == matching)
                #expect(!all.stderrString.contains("cloning afresh"), "the cache was still good: \(all.stderrString)")
                // One cache and its lock; no half-made clone left behind.
                let entries = try FileManager.default.contentsOfDirectory(atPath: cacheRoot.path).sorted()
                #expect(entries.count == 2 && entries.contains { $0.hasSuffix(".lock") }, "\(entries)")
                print(
                    "interruption: \(rounds) rounds of two concurrent checks, \(contended) of them met at the lock (\(rounds / 2) held by the test); \(matching.count) versions"
                )
            }
        }
    }

    // MARK: helpers

    /// The lock file of the one cache under `root` (its name is a hash of the source).
    static func cacheLock(in root: URL) throws -> URL {
        let locks = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".lock") }
        try #require(locks.count == 1, "one cache lock in \(root.path): \(locks)")
        return root.appendingPathComponent(locks[0])
    }

    /// Every tag of `repository` resolves to a manifest (or index) whose blobs and children
    /// all exist in the registry.
    static func expectEveryTagComplete(_ client: RegistryClient, _ repository: Repository) throws {
        func complete(_ reference: Reference, _ name: String) throws {
            let manifest = try client.manifest(repository, reference)
            switch try manifest.decode() {
            case .image(let image):
                for blob in [image.config] + image.layers {
                    #expect(try client.blobExists(repository, blob.digest), "\(name): blob \(blob.digest) is missing")
                }
            case .index(let index):
                for child in index.manifests {
                    #expect(
                        try client.manifestDescriptor(repository, .digest(child.digest)) != nil,
                        "\(name): child \(child.digest) is missing")
                    try complete(.digest(child.digest), name)
                }
            }
        }
        for tag in try client.tags(repository) { try complete(.tag(tag), "\(repository):\(tag)") }
    }

    /// An index of two platforms, each three uncompressed layers of `layerMiB` MiB of random
    /// bytes. Returns the index's descriptor, its child manifests, and their configs and layers.
    static func bigIndex(in layout: OCILayout, layerMiB: Int = 6) throws -> (Descriptor, [Descriptor], [Descriptor]) {
        var random = FaultHarness.SeededRandom(seed: 4242)
        var children: [Descriptor] = []
        var blobs: [Descriptor] = []
        for platform in [
            Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64", variant: "v8"),
        ] {
            var layers: [Descriptor] = []
            for index in 0..<3 {
                let body = random.bytes(layerMiB << 20)
                let tar = DataSink()
                let writer = TarWriter(tar)
                try writer.append(
                    TarHeader(
                        name: "data/\(platform.architecture)-\(index).bin", kind: .regular, mode: 0o644,
                        size: Int64(body.count)),
                    body: DataSource(body))
                try writer.finish()
                layers.append(try layout.writeBlob(tar.data, mediaType: .ociLayer))
            }
            let configuration = ImageConfiguration(
                created: "1970-01-01T00:00:00Z", platform: platform,
                config: ImageConfiguration.Config(cmd: ["/bin/sh"]),
                rootfs: .init(diffIDs: layers.map(\.digest)))
            let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
            var child = try layout.writeBlob(
                try CanonicalJSON.encode(ImageManifest(config: config, layers: layers)), mediaType: .ociManifest)
            child.platform = platform
            children.append(child)
            blobs += [config] + layers
        }
        let index = try layout.writeBlob(
            try CanonicalJSON.encode(ImageIndex(manifests: children)), mediaType: .ociIndex)
        try layout.addToIndex(index, name: "latest")
        return (index, children, blobs)
    }
}

/// Runs `executable` (through `sh`, which records its pid and execs it) and sends it SIGKILL
/// as soon as `condition` holds. Returns its result and when it was killed (seconds after
/// the start; nil if it ended first). The process and the watcher each have a thread of
/// their own: on the cooperative pool, busy with other tests, a watcher may not get to run
/// before the process ends.
private func runKilled(
    _ executable: String, _ arguments: [String], input: String, environment: [String: String], scratch: URL,
    when condition: @escaping @Sendable () throws -> Bool
) async throws -> (ProcessResult, Double?) {
    let pidFile = scratch.appendingPathComponent("pid-\(UUID().uuidString.prefix(8))")
    let finished = FinishedFlag()
    // stdin from a file: runProcess's writer thread can be late under load (see FaultHarness.runTimed).
    let inputFile = scratch.appendingPathComponent("stdin-\(UUID().uuidString.prefix(8))")
    try Data(input.utf8).write(to: inputFile)
    async let run = FaultHarness.onThread {
        defer { finished.set() }
        return try runProcess(
            "/bin/sh",
            ["-c", #"echo $$ > "$0"; input=$1; shift; exec "$@" < "$input""#, pidFile.path, inputFile.path, executable]
                + arguments,
            environment: environment)
    }
    async let watch = FaultHarness.onThread { () throws -> Double? in
        let clock = ContinuousClock()
        let start = clock.now
        while !finished.isSet, clock.now - start < .seconds(120) {
            if let text = try? String(contentsOf: pidFile, encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                try condition()
            {
                guard !finished.isSet else { return nil }
                kill(pid, SIGKILL)
                return FaultHarness.seconds(clock.now - start)
            }
            usleep(20_000)
        }
        return nil
    }
    let killedAt = try await watch
    return (try await run, killedAt)
}

/// The test holding a check cache's `flock` itself, as a check would.
private final class HeldLock: Sendable {
    let file: URL
    private let fd: Int32
    private let inode: UInt64

    init(_ file: URL) throws {
        self.file = file
        fd = open(file.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0, flock(fd, LOCK_EX) == 0 else {
            throw TestSupportError("cannot lock \(file.path): errno \(errno)")
        }
        var status = stat()
        fstat(fd, &status)
        inode = UInt64(status.st_ino)
    }

    /// Waits until `count` processes are blocked on the lock (`/proc/locks` lists them with
    /// `->`), or `limit` passes; then releases it. Returns whether they were seen.
    func release(whenWaiters count: Int, within limit: Duration) -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        var seen = false
        while clock.now - start < limit {
            if waiters() >= count {
                seen = true
                break
            }
            usleep(10_000)
        }
        flock(fd, LOCK_UN)
        close(fd)
        return seen
    }

    private func waiters() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return 0 }
        // "12: -> FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF": the device field ends in the inode.
        return text.split(separator: "\n").filter { line in
            let fields = line.split(whereSeparator: \.isWhitespace)
            return fields.count > 2 && fields[1] == "->"
                && fields.contains {
                    $0.split(separator: ":").count == 3 && $0.split(separator: ":").last == "\(inode)"
                }
        }.count
    }
}

private final class FinishedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

private func jsonText(_ object: [String: String]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}
