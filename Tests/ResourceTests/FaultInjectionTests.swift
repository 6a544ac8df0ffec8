import Archive
import Foundation
import HTTP
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

/// `out` and `in`, as the built binaries, through the fault proxy in front of
/// the real registry.
///
/// - 50 consecutive `out` runs, then 50 `in` runs, with about 10 % of requests failed: 429
///   with `Retry-After: 0`, 500, 503, connection resets and bodies cut short. Every run must
///   succeed; afterwards every pushed tag is copied by skopeo straight from the registry
///   (not through the proxy) and must be the digest `out` reported. The proxy's random
///   source is seeded, so the fault sequence is fixed; which request meets which fault
///   still depends on the order concurrent requests arrive in.
/// - With every request failed (503, resets, or 429 asking for 1 s each), and with only
///   uploads failed, `out` and `in` must give up after `RetryPolicy.standard`'s attempts,
///   within its documented waiting plus slack, with one error line.
///
/// The binaries have no retry knob (production code has no test switches), so the real
/// timings run: 250 ms doubling to 8 s. At 10 % most failed requests cost one 250 ms wait,
/// so the 100 runs take under a minute. `SLIPWAY_FAULTS_LONG=1` makes them 500 + 500.
@Suite("Fault injection: out and in through a proxy that fails requests")
struct FaultInjectionTests {
    static let long = ProcessInfo.processInfo.environment["SLIPWAY_FAULTS_LONG"] == "1"

    /// About `rate` of all requests fail, evenly over 429, 500, 503 and resets, plus two
    /// truncations for GETs (a cut in the first bytes, and one in the middle of a layer).
    /// Rules are drawn one after the other, so n rules of rate p fail 1 − (1 − p)^n.
    static func faultRules(rate: Double) -> [FaultRule] {
        let kinds = 5.0
        let each = 1 - pow(1 - rate, 1 / kinds)
        return [
            FaultRule(name: "429", path: "", rate: each, action: .status(429, retryAfter: "0")),
            FaultRule(name: "500", path: "", rate: each, action: .status(500)),
            FaultRule(name: "503", path: "", rate: each, action: .status(503)),
            FaultRule(name: "reset", path: "", rate: each, action: .reset),
            // Only GETs have bodies worth cutting: they see six rules (about 12 %), the other
            // requests four (about 8 %); about 10 % in all for out and in together.
            FaultRule(
                name: "truncate-early", method: "GET", path: "/(manifests|blobs)/", rate: each,
                action: .truncate(afterBytes: 100)),
            FaultRule(
                name: "truncate-mid-blob", method: "GET", path: "/blobs/", rate: each,
                action: .truncate(afterBytes: 150_000)),
        ]
    }

    /// One `out` run's result, for the `in` runs and the final verification.
    struct Pushed {
        var index: Int
        var repository: String
        var tag: String
        var digest: String
        var source: String
        /// The version `in` is given, as JSON.
        var version: String
        var sourceKeyed: Bool
        /// Digest of each file the image's layers write, for checking a rootfs.
        var files: [String: Digest]
    }

    @Test func hundredRunsThroughTenPercentFaultsAllSucceedAndEveryTagVerifies() async throws {
        let runs = Self.long ? 500 : 50
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(upstream: registry.baseURL, rules: Self.faultRules(rate: 0.10), seed: 8) { proxy in
                try await withTestGitRepository { repository in
                    try withTemporaryDirectory { directory in
                        let remote = try repository.bareClone()
                        let commit = try repository.commit("app", files: ["images/app/Dockerfile": "FROM scratch\n"])
                        try repository.push()
                        let environment = try FaultHarness.environment(directory)
                        let outPath = try builtProduct("out").path
                        let inPath = try builtProduct("in").path

                        // `runs` outs: even runs in image mode (tag mode), odd runs source-keyed
                        // (the immutable {short_ref} tag only, so no settle rounds). Each pushes
                        // its own image (three layers of ~300 KB of random text) to its own
                        // repository: distinct content means every run really uploads, and the
                        // registry checks every digest; one repository per run keeps `in`'s
                        // tag listing (a HEAD per tag) short.
                        var pushed: [Pushed] = []
                        var outTime = 0.0
                        var outRetries = 0
                        for index in 0..<runs {
                            let sourceKeyed = index % 2 == 1
                            let build = directory.appending("build-\(index)")
                            let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                            let labels = sourceKeyed ? ["org.opencontainers.image.revision": commit] : [:]
                            let (image, files) = try Self.smallImage(
                                in: layout, seed: UInt64(index + 1), labels: labels)
                            let source: String
                            let tag: String
                            if sourceKeyed {
                                tag = String(commit.prefix(12))
                                source =
                                    #"{"repository":"\#(proxy.host)/team/keyed-\#(index)","insecure":true,"tags":["{short_ref}"],"git":{"uri":"\#(remote.url.absoluteString)","branch":"main","paths":["images/app/"]}}"#
                            } else {
                                tag = "run-\(index)"
                                source =
                                    #"{"repository":"\#(proxy.host)/team/fault-\#(index)","tag":"\#(tag)","insecure":true}"#
                            }
                            let out = try FaultHarness.runTimed(
                                outPath, [build.path], input: #"{"source":\#(source),"params":{"image":"image/oci"}}"#,
                                environment: environment, scratch: directory.appending("out-\(index)"))
                            outTime += out.elapsed
                            try #require(out.status == 0, "out run \(index) failed: \(out.stderrString)")
                            outRetries += Self.retryLines(out)
                            let answer = try #require(
                                try JSONSerialization.jsonObject(with: out.stdout) as? [String: Any])
                            let version = try #require(answer["version"] as? [String: String])
                            let metadata = (answer["metadata"] as? [[String: String]]) ?? []
                            let reported =
                                sourceKeyed ? metadata.first { $0["name"] == "digest" }?["value"] : version["digest"]
                            let digest = try #require(
                                reported,
                                "out run \(index) reports a digest: \(String(decoding: out.stdout, as: UTF8.self))")
                            #expect(
                                digest == image.digest.rawValue,
                                "out run \(index) reports the digest of the image it pushed")
                            #expect(
                                version
                                    == (sourceKeyed ? ["ref": commit] : ["tag": tag, "digest": image.digest.rawValue]),
                                "out run \(index)")
                            let versionJSON =
                                sourceKeyed
                                ? #"{"ref":"\#(commit)"}"# : #"{"tag":"\#(tag)","digest":"\#(image.digest)"}"#
                            pushed.append(
                                Pushed(
                                    index: index,
                                    repository: sourceKeyed ? "team/keyed-\(index)" : "team/fault-\(index)", tag: tag,
                                    digest: digest, source: source, version: versionJSON,
                                    sourceKeyed: sourceKeyed, files: files))
                            try? FileManager.default.removeItem(at: build)
                        }

                        // `runs` ins of those versions: rootfs and oci-layout, in both modes, each
                        // checked against the image: rootfs file by file, the layout blob by blob.
                        var inTime = 0.0
                        var inRetries = 0
                        for item in pushed {
                            let format = item.index % 4 < 2 ? "rootfs" : "oci-layout"
                            let get = directory.appending("get-\(item.index)")
                            var params = #"{"format":"\#(format)","image":"required""#
                            if item.sourceKeyed { params += #","source":false"# }
                            params += "}"
                            let fetched = try FaultHarness.runTimed(
                                inPath, [get.path],
                                input: #"{"source":\#(item.source),"version":\#(item.version),"params":\#(params)}"#,
                                environment: environment, scratch: directory.appending("in-\(item.index)"))
                            inTime += fetched.elapsed
                            try #require(
                                fetched.status == 0, "in run \(item.index) (\(format)) failed: \(fetched.stderrString)")
                            inRetries += Self.retryLines(fetched)
                            #expect(
                                try String(contentsOf: get.appendingPathComponent("digest"), encoding: .utf8)
                                    == item.digest, "in run \(item.index)")
                            if format == "rootfs" {
                                for (path, digest) in item.files {
                                    let data = try Data(
                                        contentsOf: get.appendingPathComponent("rootfs").appendingPathComponent(path))
                                    #expect(Digest.sha256(data) == digest, "in run \(item.index): rootfs/\(path)")
                                }
                            } else {
                                let layout = try OCILayout(opening: get.appendingPathComponent("oci"))
                                let top = try #require(try layout.index().manifests.first)
                                #expect(top.digest.rawValue == item.digest, "in run \(item.index): oci/index.json")
                                for blob in try layout.blobs(reachableFrom: top) {
                                    // Its size and digest are verified.
                                    _ = try copy(from: layout.openBlob(blob), to: DataSink())
                                }
                            }
                            try? FileManager.default.removeItem(at: get)
                        }

                        // Every tag, straight from the registry, by an independent client, which must
                        // find exactly the digest out reported (--preserve-digests: fail rather than
                        // rewrite a manifest).
                        let (_, verifyTime) = try FaultHarness.timed {
                            for item in pushed {
                                let copied = directory.appending("skopeo-\(item.index)")
                                _ = try runProcess(
                                    "skopeo",
                                    [
                                        "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                                        "docker://\(registry.host)/\(item.repository):\(item.tag)",
                                        "oci:\(copied.path):x",
                                    ]
                                ).checked()
                                let index = try OCILayout(opening: copied).index()
                                #expect(
                                    index.manifests.map(\.digest.rawValue) == [item.digest],
                                    "\(item.repository):\(item.tag)")
                                try? FileManager.default.removeItem(at: copied)
                            }
                        }

                        let requests = try proxy.requests()
                        let faulted = requests.filter { $0.rule != nil }
                        let byKind = Dictionary(grouping: faulted, by: { $0.rule! }).mapValues(\.count)
                        let share = Double(faulted.count) / Double(max(requests.count, 1))
                        print(
                            """
                            fault injection: \(runs) out runs in \(String(format: "%.1f", outTime)) s (\(outRetries) retries logged), \
                            \(runs) in runs in \(String(format: "%.1f", inTime)) s (\(inRetries) retries logged), \
                            \(runs) skopeo copies in \(String(format: "%.1f", verifyTime)) s; \
                            \(requests.count) requests through the proxy, \(faulted.count) failed on purpose \
                            (\(String(format: "%.1f", share * 100)) %): \(byKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                            """)
                        #expect(share > 0.06 && share < 0.14, "about 10 % of requests failed: \(share)")
                        for kind in ["429", "500", "503", "reset"] {
                            #expect((byKind[kind] ?? 0) > 0, "\(kind) was injected at least once")
                        }
                        // Only `in`'s ~300 GETs can be cut: about 6 of each kind, so both together.
                        #expect(
                            (byKind["truncate-early"] ?? 0) + (byKind["truncate-mid-blob"] ?? 0) > 0, "bodies were cut")
                        #expect(outRetries + inRetries > 0)
                    }
                }
            }
        }
    }

    // MARK: giving up

    enum TotalFailure: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Every request answered 503.
        case status503
        /// Every connection reset.
        case reset
        /// Every request answered 429 with `Retry-After: 1`.
        case throttled
        /// Only uploads fail (503 on every `POST …/blobs/uploads/`): a registry whose storage
        /// refuses writes while reads work.
        case uploads503

        var testDescription: String { rawValue }

        var rule: FaultRule {
            switch self {
            case .status503: FaultRule(name: "all-503", path: "", action: .status(503))
            case .reset: FaultRule(name: "all-reset", path: "", action: .reset)
            case .throttled: FaultRule(name: "all-429", path: "", action: .status(429, retryAfter: "1"))
            case .uploads503:
                FaultRule(name: "uploads-503", method: "POST", path: "/blobs/uploads/$", action: .status(503))
            }
        }

        /// The commands run against it (`in` never uploads).
        var commands: [String] { self == .uploads503 ? ["out"] : ["out", "in"] }

        /// What the error line must say.
        var errorText: String {
            switch self {
            case .status503, .uploads503: "(HTTP 503)"
            case .reset: "(after 6 attempts)"
            case .throttled: "(HTTP 429)"
            }
        }

        /// The waiting a request that never succeeds does under `policy`, (least, most).
        func waiting(_ policy: RetryPolicy) -> (Double, Double) {
            var total = 0.0
            for attempt in 1..<policy.maxAttempts {
                if self == .throttled {
                    total += 1  // Retry-After: 1 replaces the backoff (and its jitter)
                } else {
                    total += FaultHarness.seconds(min(policy.initialDelay * (1 << (attempt - 1)), policy.maxDelay))
                }
            }
            return self == .throttled ? (total, total) : (total * (1 - policy.jitter), total * (1 + policy.jitter))
        }
    }

    @Test(arguments: TotalFailure.allCases)
    func outAndInGiveUpWithinTheRetryPolicysBound(_ failure: TotalFailure) async throws {
        try await withTestRegistry(.open) { registry in
            try await withTemporaryDirectory { directory in
                // A real image, so that `in` asks for something that exists behind the proxy.
                let layout = try OCILayout.create(at: directory.appending("build/image/oci"))
                let (image, _) = try Self.smallImage(in: layout, seed: 99, labels: [:])
                let client = try registry.client()
                _ = try ImageTransfer().push(
                    try layout.image(), with: client, to: try Repository("team/app"), tags: [try OCI.Tag("present")])
                try await withFaultProxy(upstream: registry.baseURL, rules: [failure.rule]) { proxy in
                    let environment = try FaultHarness.environment(directory)
                    let inputs = [
                        "out":
                            #"{"source":{"repository":"\#(proxy.host)/team/fresh","tag":"dev","insecure":true},"params":{"image":"image/oci"}}"#,
                        "in":
                            #"{"source":{"repository":"\#(proxy.host)/team/app","tag":"present","insecure":true},"version":{"tag":"present","digest":"\#(image.digest)"},"params":{"image":"required"}}"#,
                    ]
                    let arguments = ["out": directory.appending("build").path, "in": directory.appending("get").path]
                    // All at once, each on a thread of its own: they spend their time waiting.
                    var runs: [String: FaultHarness.TimedRun] = [:]
                    try await withThrowingTaskGroup(of: (String, FaultHarness.TimedRun).self) { group in
                        for name in failure.commands {
                            let path = try builtProduct(name).path
                            let input = inputs[name]!
                            let argument = arguments[name]!
                            let scratch = directory.appending("run-\(name)")
                            group.addTask {
                                try await FaultHarness.onThread {
                                    (
                                        name,
                                        try FaultHarness.runTimed(
                                            path, [argument], input: input, environment: environment, scratch: scratch)
                                    )
                                }
                            }
                        }
                        for try await (name, run) in group { runs[name] = run }
                    }
                    let requests = try proxy.requests()

                    let policy = RetryPolicy.standard
                    let (least, most) = failure.waiting(policy)
                    // Process start-up, reading the layout and the exchanges themselves, on a
                    // loaded 2-core machine.
                    let slack = 3.0
                    for name in failure.commands {
                        let run = runs[name]!
                        #expect(run.status == 1, "\(name) \(failure): \(run.stderrString)")
                        #expect(run.stdout.isEmpty, "\(name): nothing on stdout")
                        let lines = run.stderrString.split(separator: "\n").map(String.init)
                        let errors = lines.filter { $0.hasPrefix("\(name): ") }
                        #expect(
                            errors.count == 1 && lines.last == errors.first,
                            "\(name): one error line, the last: \(lines)")
                        #expect(errors.first?.contains(failure.errorText) == true, "\(name): \(errors)")
                        // Its requests (out: blobs; in: manifests), in seconds from its start. The
                        // policy's waiting lies between the first and the last attempt.
                        let endpoint = name == "out" ? "/team/fresh/" : "/team/app/"
                        let times = requests.filter { $0.path.contains(endpoint) }.map { $0.time - run.started }
                        let first = try #require(times.min())
                        let last = try #require(times.max())
                        #expect(
                            last - first >= least - 0.05,
                            "\(name) \(failure): retried for \(last - first) s; the policy waits at least \(least) s")
                        #expect(
                            last - first <= most + 1,
                            "\(name) \(failure): retried for \(last - first) s; the policy waits at most \(most) s")
                        #expect(
                            run.elapsed >= least,
                            "\(name) \(failure): gave up after \(run.elapsed) s; the policy waits at least \(least) s")
                        #expect(
                            run.elapsed <= most + slack,
                            "\(name) \(failure): gave up after \(run.elapsed) s; the policy waits at most \(most) s (+\(slack) s slack)"
                        )
                        print(
                            String(
                                format:
                                    "give up: %@ with %@: %.2f s in all; attempts from +%.2f s to +%.2f s (policy waits %.2f–%.2f s): %@",
                                name, failure.rawValue, run.elapsed, first, last, least, most, errors.first ?? ""))
                    }
                    // Never more attempts than the policy allows: a request path is tried at most
                    // maxAttempts times, except the upload POST, whose path is the same for every
                    // blob: at most maxAttempts for each blob whose upload began (its HEAD).
                    let blobHeads = Set(
                        requests.filter { $0.method == "HEAD" && $0.path.contains("/blobs/sha256:") }.map(\.path)
                    ).count
                    let attempts = Dictionary(grouping: requests, by: { "\($0.method) \($0.path)" }).mapValues(\.count)
                    for (request, count) in attempts {
                        let limit =
                            request.hasSuffix("/blobs/uploads/") ? policy.maxAttempts * blobHeads : policy.maxAttempts
                        #expect(count <= limit, "\(failure): \(request) was tried \(count) times (limit \(limit))")
                    }
                    if failure != .uploads503 { #expect(attempts.values.max() == policy.maxAttempts, "\(attempts)") }
                }
            }
        }
    }

    // MARK: helpers

    /// A one-platform image of `layers` gzip layers, each about 300 KB compressed (random
    /// text, so gzip cannot shrink it much), distinct for each seed. Returns the manifest's
    /// descriptor and the digest of every file the layers write.
    static func smallImage(in layout: OCILayout, seed: UInt64, layers: Int = 3, labels: [String: String])
        throws -> (Descriptor, [String: Digest])
    {
        var random = FaultHarness.SeededRandom(seed: seed)
        var descriptors: [Descriptor] = []
        var diffIDs: [Digest] = []
        var files: [String: Digest] = [:]
        for index in 0..<layers {
            let text = random.bytes(300 * 1024).base64EncodedString()
            let layerFiles = ["data/\(index).b64": text, "etc/layer\(index)": "seed \(seed) layer \(index)\n"]
            let (descriptor, diffID) = try ImageFixture.layer(layerFiles, into: layout)
            descriptors.append(descriptor)
            diffIDs.append(diffID)
            for (path, content) in layerFiles { files[path] = Digest.sha256(Data(content.utf8)) }
        }
        let platform = Platform(os: "linux", architecture: "amd64")
        let configuration = ImageConfiguration(
            created: "1970-01-01T00:00:00Z", platform: platform,
            config: ImageConfiguration.Config(
                env: ["PATH=/usr/bin:/bin"], cmd: ["/bin/sh"], labels: labels.merging(["seed": "\(seed)"]) { $1 }),
            rootfs: .init(diffIDs: diffIDs))
        let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
        let manifest = try layout.writeBlob(
            try CanonicalJSON.encode(ImageManifest(config: config, layers: descriptors)), mediaType: .ociManifest)
        try layout.addToIndex(manifest, name: "latest")
        return (manifest, files)
    }

    /// Log lines in which a binary says it is trying a request or an upload again.
    static func retryLines(_ result: FaultHarness.TimedRun) -> Int {
        result.stderrString.split(separator: "\n").filter {
            $0.contains("trying again") || $0.contains("starting the upload again")
        }.count
    }
}

// MARK: - shared by the fault and interruption tests

/// Helpers of FaultInjectionTests and InterruptionTests, in a namespace of their own so
/// they cannot collide with other files' helpers in this test module.
enum FaultHarness {
    /// A clean environment for the resource binaries, with their own `HOME` and `TMPDIR`
    /// (the git cache and out's scratch live there) inside `directory`.
    static func environment(_ directory: TemporaryDirectory) throws -> [String: String] {
        let home = directory.appending("home")
        let tmp = directory.appending("tmp")
        for url in [home, tmp] { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        return ["PATH": "/usr/bin:/bin", "HOME": home.path, "TMPDIR": tmp.path]
    }

    /// Runs `body` and returns its value with the wall time it took, in seconds.
    static func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
        let clock = ContinuousClock()
        let start = clock.now
        let value = try body()
        return (value, seconds(clock.now - start))
    }

    /// Runs blocking `body` (waiting for a child process) on a thread of its own, so that
    /// concurrent children do not wait for the few threads of Swift's cooperative pool.
    static func onThread<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// A process run by ``runTimed``: its exit status (128 + n when killed by signal n), its
    /// output, and when it started and ended (seconds since 1970).
    struct TimedRun: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var started: Double
        var ended: Double
        var elapsed: Double { ended - started }
        var stderrString: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `executable` under `sh`, with its input and output in files in `scratch`, timed by
    /// `sh` itself just before and after. `runProcess` feeds stdin and drains the pipes from
    /// Dispatch's global queue, whose few threads the other tests' children keep blocked:
    /// under load a child waited up to 10 s for its input, which is no part of its own time.
    /// A run that hangs is ended after `limit` seconds (status 124), so a hang fails the test
    /// instead of stalling the suite.
    static func runTimed(
        _ executable: String, _ arguments: [String], input: String, environment: [String: String], scratch: URL,
        limit: Int = 300
    ) throws -> TimedRun {
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try Data(input.utf8).write(to: scratch.appendingPathComponent("stdin"))
        let script = #"""
            d=$0; limit=$1; shift
            date +%s.%N > "$d/started"
            timeout --kill-after=5 "$limit" "$@" < "$d/stdin" > "$d/stdout" 2> "$d/stderr"
            echo $? > "$d/status"
            date +%s.%N > "$d/ended"
            """#
        _ = try runProcess(
            "/bin/sh", ["-c", script, scratch.path, String(limit), executable] + arguments, environment: environment
        ).checked()
        func text(_ name: String) throws -> String {
            try String(contentsOf: scratch.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
        }
        return TimedRun(
            status: Int32(try text("status")) ?? -1,
            stdout: try Data(contentsOf: scratch.appendingPathComponent("stdout")),
            stderr: try Data(contentsOf: scratch.appendingPathComponent("stderr")),
            started: Double(try text("started")) ?? 0, ended: Double(try text("ended")) ?? 0)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (whole, attoseconds) = duration.components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    /// SplitMix64: reproducible random bytes for test images.
    struct SeededRandom {
        private var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        mutating func bytes(_ count: Int) -> Data {
            var words = [UInt64](repeating: 0, count: (count + 7) / 8)
            for index in words.indices { words[index] = next() }
            return words.withUnsafeBytes { Data($0.prefix(count)) }
        }
    }
}
