import Console
import Foundation
import HTTP
import ImageLayout
import OCI
import Registry
import Resource
import Synchronization
import TestSupport
import Testing
import Transfer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// Stdin fuzzing of check, in and out; hostile registries; a security
// review of credentials and TLS, each as a test.

// MARK: - Fuzzing stdin

/// 10,000 generated inputs, each run in-process through the entry the binaries use
/// (`Check(log:).run(input:)`, `In(…).run(input:directory:)`, `Out(…).run(input:directory:)`)
/// and a sample of them through the built binaries.
///
/// Every run must succeed, or fail with an error whose description is one line (no line
/// break of any kind: `\n`, `\r`, VT, FF, NEL, U+2028, U+2029) that holds no secret marker,
/// within a few seconds. The binaries must exit 0 or 1 (never a signal or a timeout), print
/// exactly one line to stderr and nothing to stdout when they fail, and never print a
/// secret marker.
///
/// The in-process run takes about 30 s on two cores. By default a sample of 336 inputs (the
/// hand-written extremes and every 32nd generated one) goes through the binaries, in about
/// 10 s. Set `SLIPWAY_FUZZ_ALL=1` to run all 10,000 through them (several minutes):
///
///     SLIPWAY_FUZZ_ALL=1 swift test --filter HostileInputFuzzTests
@Suite("hostile input: fuzzed stdin of check, in and out")
struct HostileInputFuzzTests {
    @Test func everyGeneratedInputFailsCleanlyOrSucceedsInProcess() async throws {
        let closed = try ClosedLoopbackPort()
        let corpus = FuzzCorpus(registryHost: "127.0.0.1:\(closed.port)")
        try withTemporaryDirectory(prefix: "slipway-fuzz") { directory in
            let build = try FuzzCorpus.buildDirectory(in: directory)
            // No retries and no sleeping: a refused connection fails at once.
            let retry = RetryPolicy(maxAttempts: 1, sleep: { _ in })
            struct Tally {
                var problems: [(index: Int, text: String)] = []
                var counts: [FuzzCommand: (ok: Int, failed: Int)] = [:]
                var slowest: [(seconds: Double, index: Int, summary: String)] = []
                var longestError = 0
                var generating = 0.0
            }
            let tally = Mutex(Tally())
            let started = Date()
            // Two at a time, as many as there are cores.
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                for index in stride(from: worker, to: FuzzCorpus.count, by: 2) {
                    let made = Date()
                    let fuzz = corpus.make(index)
                    let generated = Date().timeIntervalSince(made)
                    let lines = LineCollector()
                    let output = directory.appending("get-\(index)")
                    let begin = Date()
                    let outcome: Result<Data, any Error>
                    switch fuzz.command {
                    case .check: outcome = Result { try Check(log: lines.log, retry: retry).run(input: fuzz.input) }
                    case .in:
                        outcome = Result {
                            try In(log: lines.log, retry: retry).run(input: fuzz.input, directory: output)
                        }
                    case .out:
                        outcome = Result {
                            try Out(log: lines.log, retry: retry, settleRounds: 1, settleInterval: 0).run(
                                input: fuzz.input, directory: build)
                        }
                    }
                    let seconds = Date().timeIntervalSince(begin)
                    try? FileManager.default.removeItem(at: output)
                    var found: [String] = []
                    // The slowest inputs (1 MB strings, 10,000-item lists) take under a second here,
                    // although Swift Testing records a backtrace for every error thrown, and
                    // JSONValue's decoding throws one per item it tries as the wrong type.
                    if seconds > 5 { found.append("took \(String(format: "%.1f", seconds)) s") }
                    var errorLength = 0
                    switch outcome {
                    case .success(let data):
                        if data.range(of: Data(fuzz.marker.utf8)) != nil {
                            found.append("the secret marker is in the output")
                        }
                        if (try? JSONSerialization.jsonObject(with: data)) == nil {
                            found.append("the output is not JSON")
                        }
                    case .failure(let error):
                        let description = "\(error)"
                        errorLength = description.count
                        found += FuzzCorpus.problems(errorLine: description, marker: fuzz.marker)
                    }
                    if lines.lines.contains(where: { $0.contains(fuzz.marker) }) {
                        found.append("the secret marker is in a log line")
                    }
                    let failed: Bool
                    let message: String
                    switch outcome {
                    case .success: (failed, message) = (false, "success")
                    case .failure(let error): (failed, message) = (true, "\(error)")
                    }
                    tally.withLock { tally in
                        tally.generating += generated
                        tally.longestError = max(tally.longestError, errorLength)
                        if failed {
                            tally.counts[fuzz.command, default: (0, 0)].failed += 1
                        } else {
                            tally.counts[fuzz.command, default: (0, 0)].ok += 1
                        }
                        tally.slowest.append((seconds, index, "\(fuzz.command) [\(fuzz.summary)]"))
                        if tally.slowest.count > 40 {
                            tally.slowest = Array(tally.slowest.sorted { $0.seconds > $1.seconds }.prefix(10))
                        }
                        if !found.isEmpty {
                            let shown = String(
                                message.prefix(300).unicodeScalars.map {
                                    $0.value < 0x20 || $0.value >= 0x7F
                                        ? "\\u{\(String($0.value, radix: 16))}" : String($0)
                                }.joined())
                            tally.problems.append(
                                (
                                    index,
                                    "#\(index) \(fuzz.command) [\(fuzz.summary)]: \(found.joined(separator: "; ")): \(shown)"
                                ))
                        }
                    }
                }
            }
            let (problems, counts, slowest, longestError, generating) = tally.withLock {
                (
                    $0.problems.sorted { $0.index < $1.index }.map(\.text), $0.counts, $0.slowest, $0.longestError,
                    $0.generating
                )
            }
            let total = Date().timeIntervalSince(started)
            print(
                "fuzz in-process: \(FuzzCorpus.count) inputs in \(String(format: "%.1f", total)) s; "
                    + FuzzCommand.allCases.map { "\($0): \(counts[$0]?.ok ?? 0) ok, \(counts[$0]?.failed ?? 0) failed" }
                    .joined(separator: "; ")
                    + "; generating \(String(format: "%.1f", generating)) s; longest error \(longestError) characters; slowest:\n"
                    + slowest.sorted { $0.seconds > $1.seconds }.prefix(10).map {
                        "  #\($0.index) \(String(format: "%.2f", $0.seconds)) s \($0.summary)"
                    }.joined(separator: "\n"))
            #expect(
                problems.isEmpty, "\(problems.count) inputs misbehaved:\n\(problems.prefix(25).joined(separator: "\n"))"
            )
            #expect(counts.values.map(\.ok).reduce(0, +) > 0, "some inputs are valid and succeed")
        }
    }

    @Test func theBuiltBinariesFailCleanlyOnASampleOfTheInputs() async throws {
        let all = ProcessInfo.processInfo.environment["SLIPWAY_FUZZ_ALL"] == "1"
        // The binaries retry a refused connection with the standard policy (6 attempts, about
        // 8 s), so here the generated repositories name a registry that answers at once with
        // 404 to everything: the same inputs, and nothing waits on a network.
        try await withFaultProxy(
            upstream: nil, rules: [FaultRule(path: "", action: .status(404, code: "NAME_UNKNOWN"))]
        ) { nothing in
            let corpus = FuzzCorpus(registryHost: nothing.host)
            try withTemporaryDirectory(prefix: "slipway-fuzz-bin") { directory in
                let build = try FuzzCorpus.buildDirectory(in: directory)
                let environment = try isolatedEnvironment(in: directory)
                let indices = all ? Array(0..<FuzzCorpus.count) : FuzzCorpus.binarySample
                let problems = Mutex<[String]>([])
                let tally = Mutex<(ok: Int, failed: Int, slowest: Double)>((0, 0, 0))
                let started = Date()
                // Three at a time: most of a run is process start-up and waiting.
                let workers = 3
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for index in indices.enumerated().filter({ $0.offset % workers == worker }).map(\.element) {
                        let fuzz = corpus.make(index)
                        let output = directory.appending("get-\(index)")
                        let directoryArgument = fuzz.command == .out ? build : output
                        var found: [String] = []
                        do {
                            let (result, seconds) = try runResource(
                                fuzz.command.rawValue, fuzz.input, directory: directoryArgument,
                                environment: environment)
                            found = resourceProblems(result, name: fuzz.command.rawValue, markers: [fuzz.marker])
                            if seconds > 10 { found.append("took \(String(format: "%.1f", seconds)) s") }
                            tally.withLock {
                                if result.succeeded { $0.ok += 1 } else { $0.failed += 1 }
                                $0.slowest = max($0.slowest, seconds)
                            }
                            if !found.isEmpty {
                                found.append("stderr \(String(result.stderrString.prefix(300)).debugDescription)")
                            }
                        } catch {
                            found.append("could not run: \(error)")
                        }
                        try? FileManager.default.removeItem(at: output)
                        if !found.isEmpty {
                            problems.withLock {
                                $0.append(
                                    "#\(index) \(fuzz.command) [\(fuzz.summary)]: \(found.joined(separator: "; "))")
                            }
                        }
                    }
                }
                let (ok, failed, slowest) = tally.withLock { $0 }
                print(
                    "fuzz binaries: \(indices.count) inputs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; \(ok) ok, \(failed) failed; slowest \(String(format: "%.2f", slowest)) s"
                )
                #expect(indices.count >= 300)
                let found = problems.withLock { $0 }
                #expect(found.isEmpty, "\(found.count) inputs misbehaved:\n\(found.prefix(25).joined(separator: "\n"))")
            }
        }
    }
}

// MARK: - Hostile registries

@Suite("hostile registries, as in and out meet them")
struct HostileInputRegistryTests {
    let app = try! Repository("team/app")

    /// A manifest whose layer descriptor is 100 bytes bigger or smaller than the blob: `in`
    /// fails on the size, in every format, and leaves nothing that looks like an image.
    @Test func inRefusesABlobWhoseSizeTheManifestMisstates() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = try OCILayout.create(at: directory.appending("layout"))
                let real = try ImageFixture.image(in: layout, name: "v1", layerCount: 1, seed: "sizes")
                _ = try ImageTransfer().push(
                    try layout.image(named: "v1"), with: try registry.client(), to: app, tags: [try OCI.Tag("v1")])
                var manifest = try JSONDecoder().decode(ImageManifest.self, from: try layout.blob(real))
                let layer = manifest.layers[0]
                for (tag, delta) in [("bigger", Int64(100)), ("smaller", Int64(-100))] {
                    manifest.layers[0].size = layer.size + delta
                    let digest = try registry.client().putManifest(
                        app, .tag(try OCI.Tag(tag)), bytes: try CanonicalJSON.encode(manifest),
                        mediaType: .ociManifest)
                    for format in ["rootfs", "oci", "oci-layout"] {
                        let get = directory.appending("get-\(tag)-\(format)")
                        let input =
                            #"{"source":{"repository":"\#(registry.host)/team/app","tag":"\#(tag)","insecure":true},"version":{"tag":"\#(tag)","digest":"\#(digest)"},"params":{"format":"\#(format)"}}"#
                        let (result, _) = try runResource(
                            "in", Data(input.utf8), directory: get, environment: try isolatedEnvironment(in: directory))
                        #expect(
                            resourceProblems(result, name: "in", markers: []).isEmpty,
                            "\(tag) \(format): \(result.stderrString)")
                        #expect(result.status == 1, "\(tag) \(format)")
                        #expect(
                            result.stderrString.contains("size mismatch")
                                && result.stderrString.contains(layer.digest.rawValue),
                            "\(tag) \(format): \(result.stderrString)")
                        try expectNothingLooksFetched(get)
                    }
                }
            }
        }
    }

    /// The registry serves other bytes than the digest names (its storage was altered): `in`
    /// fails on the digest and leaves nothing that looks like an image.
    @Test func inRefusesABlobServedWithTheWrongDigest() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = try OCILayout.create(at: directory.appending("layout"))
                let manifestDescriptor = try ImageFixture.image(in: layout, name: "v1", layerCount: 2, seed: "digest")
                _ = try ImageTransfer().push(
                    try layout.image(named: "v1"), with: try registry.client(), to: app, tags: [try OCI.Tag("v1")])
                let manifest = try JSONDecoder().decode(ImageManifest.self, from: try layout.blob(manifestDescriptor))
                let layer = manifest.layers[1]
                let stored = registry.blobDataFile(digest: layer.digest.rawValue)
                var bytes = try Data(contentsOf: stored)
                bytes[bytes.count / 2] ^= 0xFF
                try bytes.write(to: stored)
                for format in ["rootfs", "oci", "oci-layout"] {
                    let get = directory.appending("get-\(format)")
                    let input =
                        #"{"source":{"repository":"\#(registry.host)/team/app","tag":"v1","insecure":true},"version":{"tag":"v1","digest":"\#(manifestDescriptor.digest)"},"params":{"format":"\#(format)"}}"#
                    let (result, _) = try runResource(
                        "in", Data(input.utf8), directory: get, environment: try isolatedEnvironment(in: directory))
                    #expect(
                        resourceProblems(result, name: "in", markers: []).isEmpty, "\(format): \(result.stderrString)")
                    #expect(result.status == 1)
                    #expect(
                        result.stderrString.contains("digest mismatch")
                            && result.stderrString.contains(layer.digest.rawValue),
                        "\(format): \(result.stderrString)")
                    try expectNothingLooksFetched(get)
                }
            }
        }
    }

    /// A registry that never stops sending a layer (with no length, or announcing 1 TiB): `in`
    /// stops reading at the descriptor's size, fails on it within seconds, and the server saw
    /// the client hang up after a bounded number of bytes (no unbounded memory or disk).
    @Test func inStopsAnEndlessBlobAtItsDescriptorSize() async throws {
        try await withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let manifestDescriptor = try ImageFixture.image(in: layout, name: "v1", layerCount: 1, seed: "endless")
            let manifest = try JSONDecoder().decode(ImageManifest.self, from: try layout.blob(manifestDescriptor))
            let layer = manifest.layers[0]
            for behaviour in ["endless", "endless-big"] {
                try await HostileRegistry.with(
                    layout: layout.root, tags: ["v1": manifestDescriptor.digest.rawValue],
                    blobs: [layer.digest.rawValue: behaviour]
                ) { server in
                    for format in ["rootfs", "oci-layout"] {
                        let get = directory.appending("get-\(behaviour)-\(format)")
                        let input =
                            #"{"source":{"repository":"\#(server.host)/team/app","tag":"v1","insecure":true},"version":{"tag":"v1","digest":"\#(manifestDescriptor.digest)"},"params":{"format":"\#(format)"}}"#
                        let (result, seconds) = try runResource(
                            "in", Data(input.utf8), directory: get, environment: try isolatedEnvironment(in: directory))
                        #expect(
                            resourceProblems(result, name: "in", markers: []).isEmpty,
                            "\(behaviour) \(format): \(result.stderrString)")
                        #expect(result.status == 1)
                        #expect(
                            result.stderrString.contains("size mismatch")
                                && result.stderrString.contains("more than the expected \(layer.size) bytes"),
                            "\(behaviour) \(format): \(result.stderrString)")
                        #expect(seconds < 10, "\(behaviour) \(format) took \(seconds) s")
                        try expectNothingLooksFetched(get)
                    }
                    // The server notices the hang-up when its next write fails.
                    var endless: [[String: Any]] = []
                    for _ in 0..<100 {
                        endless = try server.requests().filter { $0["outcome"] != nil }
                        if endless.count == 2 { break }
                        usleep(50_000)
                    }
                    #expect(endless.count == 2, "\(behaviour): both fetches of the layer ended: \(endless)")
                    for entry in endless {
                        #expect(entry["outcome"] as? String == "client hung up", "\(entry)")
                        // The layer, plus what the loopback socket buffers held when the client let go.
                        #expect((entry["bytesSent"] as? Int ?? .max) < 64 << 20, "\(entry)")
                    }
                }
            }
        }
    }

    /// Basic-auth credentials for a registry whose blobs redirect to another host (as
    /// registries backed by object storage do): `in` follows the redirect without the
    /// `Authorization` header and succeeds when the other host serves the blob; it fails in
    /// one line when that host serves something else; and `out`, redirected for its blob
    /// checks, sends no credentials away and tags nothing when the registry then refuses the
    /// manifest. The password (a marker) appears in no output.
    @Test func credentialsNeverFollowARedirectToAnotherHost() async throws {
        let marker = "s3cr3t-\(UUID().uuidString.prefix(8).lowercased())-redirect"
        try await withTestRegistry(.basic(password: marker)) { registry in
            try await withTestRegistry(.open) { mirror in
                try await withTemporaryDirectory { directory in
                    let layout = try OCILayout.create(at: directory.appending("layout"))
                    let top = try ImageFixture.image(in: layout, name: "v1", layerCount: 2, seed: "redirect")
                    let image = try layout.image(named: "v1")
                    _ = try ImageTransfer().push(image, with: try registry.client(), to: app, tags: [try OCI.Tag("v1")])
                    _ = try ImageTransfer().push(image, with: try mirror.client(), to: app, tags: [try OCI.Tag("v1")])
                    let environment = try isolatedEnvironment(in: directory)
                    let markers = [marker, Data("\(registry.username!):\(marker)".utf8).base64EncodedString()]

                    try await withFaultProxy(upstream: mirror.baseURL) { storage in
                        try await withFaultProxy(
                            upstream: registry.baseURL,
                            rules: [
                                FaultRule(
                                    method: "GET", path: "/blobs/sha256:", action: .redirect(to: storage.localhostURL))
                            ]
                        ) { proxy in
                            let source =
                                #"{"repository":"\#(proxy.host)/team/app","tag":"v1","insecure":true,"username":"\#(registry.username!)","password":"\#(marker)"}"#
                            let get = directory.appending("get-redirected")
                            let (result, _) = try runResource(
                                "in",
                                Data(#"{"source":\#(source),"version":{"tag":"v1","digest":"\#(top.digest)"}}"#.utf8),
                                directory: get, environment: environment)
                            #expect(result.succeeded, "\(result.stderrString)")
                            #expect(resourceProblems(result, name: "in", markers: markers).isEmpty)
                            #expect(
                                FileManager.default.fileExists(
                                    atPath: get.appendingPathComponent("rootfs/etc/layer1").path))
                            let blobs = try proxy.requests().filter { $0.path.contains("/blobs/") }
                            #expect(
                                !blobs.isEmpty && blobs.allSatisfy { $0.authorization && $0.action == "redirect" },
                                "\(blobs)")
                            let elsewhere = try storage.requests()
                            #expect(
                                elsewhere.count >= 3, "config and both layers came from the other host: \(elsewhere)")
                            #expect(
                                elsewhere.allSatisfy { !$0.authorization },
                                "no credentials reached the other host: \(elsewhere)")
                        }
                    }

                    try await withFaultProxy(upstream: nil) { recorder in
                        try await withFaultProxy(
                            upstream: registry.baseURL,
                            rules: [
                                FaultRule(
                                    method: "GET", path: "/blobs/sha256:", action: .redirect(to: recorder.localhostURL)),
                                FaultRule(
                                    method: "HEAD", path: "/blobs/sha256:",
                                    action: .redirect(to: recorder.localhostURL, status: 302)),
                            ]
                        ) { proxy in
                            let source =
                                #"{"repository":"\#(proxy.host)/team/app","tag":"v1","insecure":true,"username":"\#(registry.username!)","password":"\#(marker)"}"#
                            let get = directory.appending("get-recorded")
                            let (fetched, _) = try runResource(
                                "in",
                                Data(
                                    #"{"source":\#(source),"version":{"tag":"v1","digest":"\#(top.digest)"},"params":{"format":"oci-layout"}}"#
                                        .utf8),
                                directory: get, environment: environment)
                            #expect(fetched.status == 1)
                            #expect(
                                resourceProblems(fetched, name: "in", markers: markers).isEmpty,
                                "\(fetched.stderrString)")
                            #expect(fetched.stderrString.contains("size mismatch"), "\(fetched.stderrString)")
                            try expectNothingLooksFetched(get)

                            // out: every blob check lands on the recorder, which says "200, present";
                            // the registry then refuses the manifest and no tag is made.
                            let build = directory.appending("build")
                            let buildLayout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                            try ImageFixture.image(
                                in: buildLayout, name: "latest", layerCount: 1, seed: "never-uploaded")
                            // Semver mode with bump_aliases: the tag list comes first, so the client
                            // has learnt the registry's Basic challenge before any blob check.
                            let outSource =
                                #"{"repository":"\#(proxy.host)/team/app","insecure":true,"username":"\#(registry.username!)","password":"\#(marker)"}"#
                            let (pushed, _) = try runResource(
                                "out",
                                Data(
                                    #"{"source":\#(outSource),"params":{"image":"image/oci","version":"9.9.9","bump_aliases":true}}"#
                                        .utf8),
                                directory: build, environment: environment)
                            #expect(pushed.status == 1)
                            #expect(
                                resourceProblems(pushed, name: "out", markers: markers).isEmpty,
                                "\(pushed.stderrString)")
                            #expect(
                                pushed.stderrString.contains("MANIFEST_BLOB_UNKNOWN")
                                    || pushed.stderrString.contains("BLOB_UNKNOWN"),
                                "\(pushed.stderrString)")
                            #expect(
                                try registry.client().manifestDescriptor(app, .tag(try OCI.Tag("9.9.9"))) == nil,
                                "no tag points at an incomplete image")
                            let heads = try proxy.requests().filter {
                                $0.method == "HEAD" && $0.path.contains("/blobs/")
                            }
                            #expect(!heads.isEmpty && heads.allSatisfy(\.authorization), "\(heads)")
                            let recorded = try recorder.requests()
                            #expect(
                                !recorded.isEmpty && recorded.allSatisfy { !$0.authorization },
                                "no credentials reached the other host: \(recorded)")
                        }
                    }
                }
            }
        }
    }

    /// After a failed `in`: no `rootfs/`, `metadata.json` or `image.tar`, no scratch or
    /// partial blob, and an `oci/` (if any) whose `index.json` names no image. The version's
    /// own files (`repository`, `tag`, `digest`, `tags`) may stay: registry-image writes them too.
    func expectNothingLooksFetched(_ get: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: get.path)) ?? []
        for name in ["rootfs", "metadata.json", "labels.json", "image.tar"] {
            #expect(!names.contains(name), "a failed in left \(name): \(names)", sourceLocation: sourceLocation)
        }
        #expect(
            names.allSatisfy { !$0.hasPrefix(".") }, "a failed in left scratch behind: \(names)",
            sourceLocation: sourceLocation)
        let oci = get.appendingPathComponent("oci")
        if names.contains("oci") {
            let index = try? JSONDecoder().decode(
                ImageIndex.self, from: Data(contentsOf: oci.appendingPathComponent("index.json")))
            #expect(
                index?.manifests.isEmpty ?? true, "a failed in left oci/index.json naming an image",
                sourceLocation: sourceLocation)
            let blobs =
                (try? FileManager.default.contentsOfDirectory(atPath: oci.appendingPathComponent("blobs/sha256").path))
                ?? []
            #expect(
                blobs.allSatisfy { !$0.contains("partial") }, "partial blobs left: \(blobs)",
                sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Credentials and TLS

@Suite("credentials never leak, key files are private and removed, TLS is verified")
struct HostileInputCredentialTests {
    /// A registry password (and its base64, as an `Authorization` header carries it) never
    /// appears in what check, in and out print, on success (with `debug: true`) or on
    /// failure (a wrong password, a missing file, a registry that is down and retried).
    @Test func registryPasswordsNeverReachOutput() async throws {
        let marker = "s3cr3t-\(UUID().uuidString.prefix(8).lowercased())-registry"
        let wrong = "s3cr3t-\(UUID().uuidString.prefix(8).lowercased())-wrong"
        try await withTestRegistry(.basic(password: marker)) { registry in
            try withTemporaryDirectory { directory in
                let user = registry.username!
                let markers =
                    [marker, wrong] + [marker, wrong].map { Data("\(user):\($0)".utf8).base64EncodedString() }
                let environment = try isolatedEnvironment(in: directory)
                let build = directory.appending("build")
                let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: "credentials")
                let closed = try ClosedLoopbackPort()

                func source(_ password: String, host: String? = nil) -> String {
                    #"{"repository":"\#(host ?? registry.host)/team/app","tag":"dev","insecure":true,"debug":true,"username":"\#(user)","password":"\#(password)"}"#
                }
                // Success paths, with debug logging.
                let (out, _) = try runResource(
                    "out", Data(#"{"source":\#(source(marker)),"params":{"image":"image/oci"}}"#.utf8),
                    directory: build, environment: environment)
                #expect(out.succeeded, "\(out.stderrString)")
                let (check, _) = try runResource(
                    "check", Data(#"{"source":\#(source(marker))}"#.utf8), directory: nil, environment: environment)
                #expect(check.succeeded, "\(check.stderrString)")
                let versions = try #require(try JSONSerialization.jsonObject(with: check.stdout) as? [[String: String]])
                let version = try #require(versions.last?["digest"])
                let (fetched, _) = try runResource(
                    "in", Data(#"{"source":\#(source(marker)),"version":{"tag":"dev","digest":"\#(version)"}}"#.utf8),
                    directory: directory.appending("get"), environment: environment)
                #expect(fetched.succeeded, "\(fetched.stderrString)")
                let (promoted, _) = try runResource(
                    "out",
                    Data(
                        #"{"source":\#(source(marker)),"params":{"promote":{"from":"dev","to":["prod"],"repository":"\#(registry.host)/team/copy"}}}"#
                            .utf8), directory: build, environment: environment)
                #expect(promoted.succeeded, "\(promoted.stderrString)")
                for result in [out, check, fetched, promoted] {
                    #expect(
                        result.stderrString.contains("basic authentication"),
                        "debug logged the exchange: \(result.stderrString.prefix(300))")
                    #expect(
                        markerProblems(result, markers: markers).isEmpty, "\(markerProblems(result, markers: markers))")
                }

                // Failure paths: a wrong password; another registry (the same one as localhost) for
                // promote with its own wrong password; a registry that refuses connections, retried
                // with the standard policy (its retry lines are logged).
                var failures: [(String, ProcessResult)] = []
                failures.append(
                    (
                        "out",
                        try runResource(
                            "out",
                            Data(
                                #"{"source":\#(source(marker)),"params":{"image":"image/oci","additional_tags":"no-such-file"}}"#
                                    .utf8), directory: build, environment: environment
                        ).0
                    ))
                failures.append(
                    (
                        "check",
                        try runResource(
                            "check", Data(#"{"source":\#(source(wrong))}"#.utf8), directory: nil,
                            environment: environment
                        ).0
                    ))
                failures.append(
                    (
                        "in",
                        try runResource(
                            "in",
                            Data(#"{"source":\#(source(wrong)),"version":{"tag":"dev","digest":"\#(version)"}}"#.utf8),
                            directory: directory.appending("get-wrong"), environment: environment
                        ).0
                    ))
                failures.append(
                    (
                        "out",
                        try runResource(
                            "out", Data(#"{"source":\#(source(wrong)),"params":{"image":"image/oci"}}"#.utf8),
                            directory: build, environment: environment
                        ).0
                    ))
                failures.append(
                    (
                        "out",
                        try runResource(
                            "out",
                            Data(
                                #"{"source":\#(source(marker)),"params":{"promote":{"from":"dev","to":["x"],"repository":"localhost:\#(registry.port)/team/app","username":"u","password":"\#(wrong)"}}}"#
                                    .utf8), directory: build, environment: environment
                        ).0
                    ))
                failures.append(
                    (
                        "check",
                        try runResource(
                            "check", Data(#"{"source":\#(source(marker, host: "127.0.0.1:\(closed.port)"))}"#.utf8),
                            directory: nil, environment: environment, timeout: 30
                        ).0
                    ))
                for (name, result) in failures {
                    #expect(result.status == 1, "\(name) should fail: \(result.stdoutString)")
                    #expect(
                        markerProblems(result, markers: markers).isEmpty,
                        "\(name): \(markerProblems(result, markers: markers))")
                    #expect(result.stdout.isEmpty)
                    #expect(lastLine(result).hasPrefix("\(name): "), "\(name): \(result.stderrString)")
                }
            }
        }
    }

    /// git credentials: a private key (over ssh, through a stand-in `ssh` that serves the
    /// repository locally and records what it sees) and an https password, in success and
    /// failure paths of check, in and out. The marker never appears in stdout or stderr, nor
    /// in any process's arguments while git runs; the key file is mode 0600 in a 0700
    /// directory while it exists, and both are gone when the command ends.
    @Test func gitCredentialsNeverReachOutputAndKeyFilesArePrivateAndRemoved() async throws {
        let marker = "s3cr3t-\(UUID().uuidString.prefix(8).lowercased())-gitkey0123456789"
        let password = "s3cr3t-\(UUID().uuidString.prefix(8).lowercased())-gitpassword"
        let key =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\(marker)AAAA\nAAAAC3NzaC1lZDI1NTE5AAAAIB5lW1f8\(marker)==\n-----END OPENSSH PRIVATE KEY-----\n"
        let markers = [marker, password]
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let remote = try repository.bareClone()
                let commit = try repository.commit(
                    "app v1", files: ["images/app/Dockerfile": "FROM scratch\n", "images/app/VERSION": "1.0.0\n"])
                try repository.push()
                let closed = try ClosedLoopbackPort()
                let fake = try FakeSSH(in: directory, marker: marker)
                var environment = try isolatedEnvironment(in: directory)
                environment["PATH"] = fake.bin.path + ":/usr/bin:/bin"
                environment["FAKE_SSH_LOG"] = fake.log.path
                let tmp = URL(fileURLWithPath: environment["TMPDIR"]!)
                let keyJSON = String(data: try JSONEncoder().encode(key), encoding: .utf8)!

                func source(uri: String, credentials: String = "") -> String {
                    #"{"repository":"127.0.0.1:\#(closed.port)/team/app","tag_file":"images/app/VERSION","git":{"uri":"\#(uri)","branch":"main","paths":["images/app/"]\#(credentials)}}"#
                }
                let ssh = source(
                    uri: "ssh://git@fake.invalid\(remote.path.path)", credentials: #","private_key":\#(keyJSON)"#)
                var runs: [(String, ProcessResult)] = []

                // Success over ssh: check, in (a checkout), out (a tag file bump, pushed).
                let (check, _) = try runResource(
                    "check", Data(#"{"source":\#(ssh)}"#.utf8), directory: nil, environment: environment)
                #expect(check.succeeded && check.stdoutString.contains(commit), "\(check.stderrString)")
                let get = directory.appending("get")
                let (fetched, _) = try runResource(
                    "in",
                    Data(
                        #"{"source":\#(ssh),"version":{"ref":"\#(commit)","tag_file":"1.0.0"},"params":{"image":"skip"}}"#
                            .utf8),
                    directory: get, environment: environment)
                #expect(fetched.succeeded, "\(fetched.stderrString)")
                #expect(
                    FileManager.default.fileExists(atPath: get.appendingPathComponent("source/images/app/VERSION").path)
                )
                let (bumped, _) = try runResource(
                    "out", Data(#"{"source":\#(ssh),"params":{"bump_tag_file":"patch"}}"#.utf8),
                    directory: directory.appending("build"), environment: environment)
                #expect(bumped.succeeded && bumped.stdoutString.contains("1.0.1"), "\(bumped.stderrString)")
                runs += [("check", check), ("in", fetched), ("out", bumped)]
                let successes = try fake.records()
                #expect(successes.count >= 3, "the stand-in ssh ran for each command: \(successes)")

                // Failure over ssh: the stand-in prints the key file to stderr and refuses.
                environment["FAKE_SSH_FAIL"] = "1"
                runs.append(
                    (
                        "check",
                        try runResource(
                            "check", Data(#"{"source":\#(ssh)}"#.utf8), directory: nil, environment: environment
                        ).0
                    ))
                runs.append(
                    (
                        "in",
                        try runResource(
                            "in", Data(#"{"source":\#(ssh),"version":{"ref":"\#(commit)"}}"#.utf8),
                            directory: directory.appending("get-fail"), environment: environment
                        ).0
                    ))
                runs.append(
                    (
                        "out",
                        try runResource(
                            "out", Data(#"{"source":\#(ssh),"params":{"bump_tag_file":"minor"}}"#.utf8),
                            directory: directory.appending("build"), environment: environment
                        ).0
                    ))
                environment["FAKE_SSH_FAIL"] = nil
                let refused = runs.suffix(3).map(\.1)
                #expect(
                    refused.allSatisfy { $0.status == 1 && $0.stderrString.contains("Permission denied (publickey)") },
                    "\(refused.map(\.stderrString))")
                #expect(
                    refused.allSatisfy { $0.stderrString.contains("***") },
                    "the key lines ssh printed were scrubbed: \(refused.map(\.stderrString))")
                let all = try fake.records()
                #expect(all.count > successes.count, "the failing stand-in ran")
                for record in all {
                    #expect(record["mode"] == "600", "the key file is mode 0600: \(record)")
                    #expect(record["dirmode"] == "700", "its directory is mode 0700: \(record)")
                    #expect(record["argv"] == "0", "no process had the key in its arguments: \(record)")
                    let path = try #require(record["key"])
                    #expect(!FileManager.default.fileExists(atPath: path), "the key file was removed: \(path)")
                    #expect(
                        !FileManager.default.fileExists(atPath: (path as NSString).deletingLastPathComponent),
                        "its directory was removed")
                }
                let cache = tmp.appendingPathComponent("slipway-git")
                let left = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter {
                    $0.hasPrefix("slipway-key")
                }
                #expect(left.isEmpty, "no key directory left in \(cache.path): \(left)")

                // https: a password in git.password and in the URL, refused at once (a closed port),
                // and with a local repository that never asks (the helper is configured, unused).
                let https = [
                    source(
                        uri: "https://127.0.0.1:\(closed.port)/team/app.git",
                        credentials: #","username":"ci","password":"\#(password)""#),
                    source(uri: "https://ci:\(password)@127.0.0.1:\(closed.port)/team/app.git"),
                ]
                for source in https {
                    runs.append(
                        (
                            "check",
                            try runResource(
                                "check", Data(#"{"source":\#(source)}"#.utf8), directory: nil, environment: environment
                            ).0
                        ))
                    runs.append(
                        (
                            "in",
                            try runResource(
                                "in", Data(#"{"source":\#(source),"version":{"ref":"\#(commit)"}}"#.utf8),
                                directory: directory.appending("get-https"), environment: environment
                            ).0
                        ))
                    runs.append(
                        (
                            "out",
                            try runResource(
                                "out", Data(#"{"source":\#(source),"params":{"bump_tag_file":"minor"}}"#.utf8),
                                directory: directory.appending("build"), environment: environment
                            ).0
                        ))
                }
                let local = source(
                    uri: remote.url.absoluteString, credentials: #","username":"ci","password":"\#(password)""#)
                let (localCheck, _) = try runResource(
                    "check", Data(#"{"source":\#(local)}"#.utf8), directory: nil, environment: environment)
                #expect(localCheck.succeeded, "\(localCheck.stderrString)")
                runs.append(("check", localCheck))

                for (name, result) in runs {
                    #expect(
                        markerProblems(result, markers: markers).isEmpty,
                        "\(name): \(markerProblems(result, markers: markers))")
                    if !result.succeeded {
                        #expect(result.status == 1 && result.stdout.isEmpty, "\(name): \(result.stderrString)")
                        #expect(lastLine(result).hasPrefix("\(name): "), "\(name): \(result.stderrString)")
                    }
                }
                #expect(runs.filter { !$0.1.succeeded }.count >= 9, "the failure paths failed")
            }
        }
    }

    /// TLS is verified unless `insecure: true`: a registry whose CA is not trusted is refused
    /// without `insecure` and without `ca_certs` (and with another CA's certificate), and
    /// accepted with its CA in `ca_certs` or with `insecure: true`.
    @Test func tlsIsVerifiedUnlessInsecure() async throws {
        try await withTestRegistry(.open(tls: true)) { registry in
            try withTemporaryDirectory { directory in
                let environment = try isolatedEnvironment(in: directory)
                let other = try TestCertificates.generate(in: directory.url, commonName: "Another CA")
                func pem(_ text: String) -> String { String(data: try! JSONEncoder().encode([text]), encoding: .utf8)! }
                let cases: [(String, Bool)] = [
                    ("", false),
                    (#","insecure":false"#, false),
                    (#","ca_certs":\#(pem(other.caCertificatePEM))"#, false),
                    (#","ca_certs":\#(pem(registry.caCertificatePEM!))"#, true),
                    (#","insecure":true"#, true),
                ]
                for (extra, succeeds) in cases {
                    let input = #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest"\#(extra)}}"#
                    let (result, _) = try runResource(
                        "check", Data(input.utf8), directory: nil, environment: environment)
                    #expect(result.succeeded == succeeds, "\(extra.prefix(40)): \(result.stderrString)")
                    if !succeeds {
                        #expect(resourceProblems(result, name: "check", markers: []).isEmpty, "\(result.stderrString)")
                        #expect(result.stderrString.contains("tls"), "names TLS: \(result.stderrString)")
                    }
                }
            }
        }
    }

    /// A source review as a test: the only code that turns certificate verification off is
    /// CurlTransport's `!trust.verifyPeer` branch; `verifyPeer` is false only as
    /// `!insecure` in RegistryClient; buildah's `--tls-verify=false` only under
    /// `REGISTRY_INSECURE`; no source passes a literal `insecure: true`. A new place that
    /// disables verification fails here until it is reviewed and listed.
    @Test func onlyInsecureTurnsTLSVerificationOff() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Sources")
        var hits: [String] = []
        let enumerator = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        for case let file as URL in enumerator
        where file.pathExtension == "swift" || file.pathExtension == "h" || file.pathExtension == "c" {
            let text = try String(contentsOf: file, encoding: .utf8)
            let relative = String(file.path.dropFirst(sources.path.count + 1))
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.trimmingCharacters(in: .whitespaces)
                if code.hasPrefix("//") { continue }
                for needle in [
                    "SSL_VERIFY", "verifyPeer", "tls-verify", "insecure: true", "insecure = true",
                    "CURLOPT_SSL_OPTIONS",
                    "CURLSSLOPT_", "PINNEDPUBLICKEY", "CURLOPT_PROXY_SSL",
                ]
                where code.contains(needle) {
                    hits.append("\(relative):\(number + 1): \(code)")
                    break
                }
            }
        }
        let reviewed: [(file: String, code: String)] = [
            ("HTTP/CurlTransport.swift", "set(slipway_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0))"),
            ("HTTP/CurlTransport.swift", "set(slipway_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0))"),
            ("HTTP/CurlTransport.swift", "if !trust.verifyPeer {"),
            ("HTTP/HTTPMessage.swift", "public var verifyPeer: Bool"),
            ("HTTP/HTTPMessage.swift", "public init(additionalCertificates: [String] = [], verifyPeer: Bool = true) {"),
            ("HTTP/HTTPMessage.swift", "self.verifyPeer = verifyPeer"),
            (
                "Registry/RegistryClient.swift",
                "self.trust = TLSTrust(additionalCertificates: caCertificates, verifyPeer: !insecure)"
            ),
            (
                "Resource/SourceCloud.swift",
                "let trust = TLSTrust(additionalCertificates: caCertificates, verifyPeer: !insecure)"
            ),
            (
                "Builder/RegistryAccess.swift",
                #"if configuration.registryInsecure { options += ["--tls-verify=false"] }"#
            ),
            // A mirror in buildah's registries.conf is insecure only under REGISTRY_INSECURE, as the registry is.
            (
                "Builder/RegistryAccess.swift",
                #"let insecureLine = configuration.registryInsecure ? "insecure = true\n" : """#
            ),
        ]
        let unreviewed = hits.filter { hit in
            !reviewed.contains { hit.hasPrefix($0.file + ":") && hit.hasSuffix(": " + $0.code) }
        }
        #expect(
            unreviewed.isEmpty,
            "places that may turn TLS verification off, not yet reviewed:\n\(unreviewed.joined(separator: "\n"))")
        for entry in reviewed {
            #expect(
                hits.contains { $0.hasPrefix(entry.file + ":") && $0.hasSuffix(": " + entry.code) },
                "reviewed line moved or changed: \(entry)")
        }
        // The two libcurl switches sit inside the branch that only an untrusting TLSTrust takes.
        let transport = try String(
            contentsOf: sources.appendingPathComponent("HTTP/CurlTransport.swift"), encoding: .utf8)
        let branch = try #require(transport.range(of: "if !trust.verifyPeer {"))
        let after = transport[branch.upperBound...]
        let close = try #require(after.range(of: "}"))
        #expect(
            after[..<close.lowerBound].contains("CURLOPT_SSL_VERIFYPEER, 0")
                && after[..<close.lowerBound].contains("CURLOPT_SSL_VERIFYHOST, 0"))
    }
}

// MARK: - Running the binaries

/// An environment with nothing of the machine's: a private HOME (no Docker config), a
/// private TMPDIR (the git cache and key files land there), and a short PATH.
private func isolatedEnvironment(in directory: TemporaryDirectory) throws -> [String: String] {
    let home = directory.appending("home")
    let tmp = directory.appending("tmp")
    try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    return ["PATH": "/usr/bin:/bin", "HOME": home.path, "TMPDIR": tmp.path, "LC_ALL": "C"]
}

/// Runs a built resource binary with `input` on stdin under `timeout` (coreutils), so a hang
/// is a failure rather than a stuck test: exit status 124 means it ran out of time.
private func runResource(
    _ name: String, _ input: Data, directory: URL?, environment: [String: String], timeout: Int = 20
) throws -> (ProcessResult, Double) {
    let binary = try builtProduct(name).path
    let started = Date()
    let result = try runProcess(
        "/usr/bin/timeout", ["-k", "2", "\(timeout)", binary] + (directory.map { [$0.path] } ?? []),
        stdin: input, environment: environment)
    return (result, Date().timeIntervalSince(started))
}

/// What is wrong with a run of a resource binary: a signal or a timeout, an exit status
/// other than 0 and 1, stdout on failure, stderr that is not one line on failure, output
/// on success that is not JSON, a secret marker anywhere.
private func resourceProblems(_ result: ProcessResult, name: String, markers: [String]) -> [String] {
    var problems = markerProblems(result, markers: markers)
    if result.terminatedBySignal { return problems + ["killed by signal \(result.status)"] }
    switch result.status {
    case 0:
        if (try? JSONSerialization.jsonObject(with: result.stdout)) == nil { problems.append("stdout is not JSON") }
    case 1:
        if !result.stdout.isEmpty { problems.append("stdout is not empty on failure") }
        let text = result.stderrString
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        if !text.hasSuffix("\n") || lines.count != 2 || text.contains("\r") {
            problems.append("stderr is \(lines.count - 1) lines, not one")
        }
        if !text.hasPrefix("\(name): ") { problems.append("stderr does not start with \"\(name): \"") }
    case 124, 137: problems.append("timed out")
    default: problems.append("exit status \(result.status)")
    }
    return problems
}

private func markerProblems(_ result: ProcessResult, markers: [String]) -> [String] {
    markers.flatMap { marker in
        [("stdout", result.stdout), ("stderr", result.stderr)].compactMap { name, data in
            data.range(of: Data(marker.utf8)) != nil ? "the secret \(marker) is in \(name)" : nil
        }
    }
}

private func lastLine(_ result: ProcessResult) -> String {
    result.stderrString.split(separator: "\n").last.map(String.init) ?? ""
}

/// Log lines kept in memory.
private final class LineCollector: Sendable {
    private let collected = Mutex<[String]>([])
    var lines: [String] { collected.withLock { $0 } }
    var log: Log { Log { [self] line in self.collected.withLock { $0.append(line) } } }
}

/// A loopback port that refuses every connection at once: a socket bound to it but never
/// listening, held for the lifetime of this value so no server can take the port.
private final class ClosedLoopbackPort: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        #if canImport(Darwin)
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #else
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            throw TestSupportError("cannot bind a loopback port: errno \(errno)")
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// A stand-in `ssh` on PATH: it records the key file git was given (its path, its mode and
/// its directory's, and whether any process's arguments hold the key's marker), then either
/// runs the remote command locally (so `ssh://host/abs/path` serves a local repository) or,
/// with `FAKE_SSH_FAIL=1`, prints the key file to stderr (for the scrubbing to catch) and
/// refuses as ssh does.
private struct FakeSSH {
    let bin: URL
    let log: URL

    init(in directory: TemporaryDirectory, marker: String) throws {
        bin = directory.appending("fake-bin")
        log = directory.appending("fake-ssh.log")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let markerFile = directory.appending("fake-ssh.marker")
        try Data(marker.utf8).write(to: markerFile)
        let script = """
            #!/bin/sh
            key=""
            while [ $# -gt 0 ]; do
              case "$1" in
                -i) key="$2"; shift 2 ;;
                -o|-p|-l|-F) shift 2 ;;
                -*) shift ;;
                *) break ;;
              esac
            done
            shift
            argv=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\000' ' ' | grep -c -F -f '\(markerFile.path)')
            printf 'key=%s mode=%s dirmode=%s argv=%s\\n' "$key" "$(stat -c %a "$key")" "$(stat -c %a "$(dirname "$key")")" "$argv" >> "$FAKE_SSH_LOG"
            if [ "$FAKE_SSH_FAIL" = 1 ]; then
              cat "$key" >&2
              echo "git@fake.invalid: Permission denied (publickey)." >&2
              exit 255
            fi
            exec sh -c "$*"

            """
        let file = bin.appendingPathComponent("ssh")
        try Data(script.utf8).write(to: file)
        chmod(file.path, 0o755)
    }

    /// One dictionary per ssh run: key, mode, dirmode, argv.
    func records() throws -> [[String: String]] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { line in
            line.split(separator: " ").reduce(into: [String: String]()) { fields, pair in
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
        }
    }
}

/// `Tests/Fixtures/servers/hostile_registry.py` on a free loopback port, serving one OCI
/// layout and misbehaving on the blobs named in `blobs`.
private struct HostileRegistry: Sendable {
    let server: FixtureServer
    let logFile: URL

    /// `host:port`, as a source's repository names it.
    var host: String { "127.0.0.1:\(server.port)" }

    /// Runs `body` with the server up, and stops it afterwards, also when `body` throws.
    static func with<R>(
        layout: URL, tags: [String: String], blobs: [String: String], _ body: (HostileRegistry) async throws -> R
    ) async throws -> R {
        var logFile: URL?
        let server = try await FixtureServer.start("hostile_registry.py", prefix: "slipway-hostile") { directory in
            let log = emptyLog(in: directory)
            logFile = log
            return ["logFile": log.path, "layout": layout.path, "tags": tags, "blobs": blobs]
        }
        do {
            let result = try await body(HostileRegistry(server: server, logFile: logFile!))
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// The JSON lines the server logged, one per finished request.
    func requests() throws -> [[String: Any]] {
        try String(contentsOf: logFile, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

// MARK: - The generator

private enum FuzzCommand: String, CaseIterable, Sendable {
    case check, `in`, out
}

/// One generated input: which command gets it, the bytes for stdin, the secret marker its
/// password and key fields hold, and what the generator did (for messages).
private struct FuzzCase: Sendable {
    let index: Int
    let command: FuzzCommand
    let input: Data
    let marker: String
    let summary: String
}

/// A JSON value as the generator builds it: objects keep their order and may repeat keys,
/// numbers are their text (so `1e999` and 40-digit integers survive), and `raw` is spliced
/// in as it is (deep nesting, lone surrogate escapes).
private indirect enum FuzzValue: Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([FuzzValue])
    case object([(String, FuzzValue)])
    case raw(String)

    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .number(let text), .raw(let text): out += Array(text.utf8)
        case .string(let text): Self.writeString(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (offset, item) in items.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (offset, (key, value)) in members.enumerated() {
                if offset > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: text.utf8)
        } else {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0..<0x20: out += escapes[Int(byte)]
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The JSON string body (without quotes) for `text`.
    static func escaped(_ text: String) -> String {
        var bytes: [UInt8] = []
        writeString(text, to: &bytes)
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }

    private static let escapes: [[UInt8]] = (0..<0x20).map { Array(String(format: "\\u%04x", $0).utf8) }
}

/// SplitMix64: small, fast, and the same sequence on every platform and toolchain.
private struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func chance(_ probability: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < probability }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func hex(_ count: Int) -> String {
        String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &self)! })
    }
}

extension SplitMix64: RandomNumberGenerator {}

/// The deterministic corpus: input `i` is the same on every run (its own seeded generator),
/// so a failing index can be replayed alone.
private struct FuzzCorpus: Sendable {
    static let count = 10_000
    static let seed: UInt64 = 0x5119_3A7E_0008_0003

    /// Every generated repository (and every registry a URI names) is on this host.
    let registryHost: String

    /// The inputs the binaries get by default: every hand-written special case and every
    /// 32nd generated one.
    static var binarySample: [Int] {
        Array(0..<specialCount) + stride(from: specialCount, to: count, by: 32)
    }

    static let specialCount = 24

    /// Strings that break lines, hide text or are otherwise hostile in a message.
    static let nasty: [String] = [
        "\n", "\r\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}", "\u{0}", "\u{1B}[31mred\u{1B}[0m",
        "\u{7F}",
        "\u{202E}txet", "\u{200B}", "e\u{301}\u{301}\u{301}", "🚢", "\u{FEFF}", "\"", "\\", "'; rm -rf /", "$(id)",
        "`id`",
        "../../../../etc/passwd", "%0a%0d", "\u{9B}31m", "\t",
    ]

    static let hugeNumbers = [
        "1e999", "-1e999", "123456789012345678901234567890123456789", "-9223372036854775809", "9223372036854775808",
        "1.7976931348623157e309", "4.9e-400", "0.0000000000000000000000000000000000000000001", "-0", "1E+2147483648",
        "100001", "0", "-1", "3.5", "9007199254740993",
    ]

    /// The build directory `out` runs in: an OCI layout at image/oci and an OCI archive at
    /// image/oci.tar, a `tags` file, a `get` directory with `digest` and `ref`.
    static func buildDirectory(in directory: TemporaryDirectory) throws -> URL {
        let build = directory.appending("build")
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        let image = try ImageFixture.image(
            in: layout, name: "latest", layerCount: 1, seed: "fuzz",
            labels: ["org.opencontainers.image.revision": String(repeating: "a", count: 40)])
        _ = try runProcess(
            "skopeo",
            [
                "copy", "oci:\(layout.root.path):latest",
                "oci-archive:\(build.appendingPathComponent("image/oci.tar").path):latest",
            ]
        ).checked()
        try FileManager.default.createDirectory(
            at: build.appendingPathComponent("get"), withIntermediateDirectories: true)
        try Data(image.digest.rawValue.utf8).write(to: build.appendingPathComponent("get/digest"))
        try Data(String(repeating: "a", count: 40).utf8).write(to: build.appendingPathComponent("get/ref"))
        try Data("extra-1 extra-2\n".utf8).write(to: build.appendingPathComponent("tags"))
        try Data("1.2.3\n".utf8).write(to: build.appendingPathComponent("release"))
        return build
    }

    /// What is wrong with an error's description.
    static func problems(errorLine description: String, marker: String) -> [String] {
        var found: [String] = []
        if description.isEmpty { found.append("the error is empty") }
        if description.contains(where: \.isNewline) { found.append("the error is more than one line") }
        if description.contains(marker) { found.append("the secret marker is in the error") }
        if description.count > 4096 { found.append("the error is \(description.count) characters long") }
        return found
    }

    func make(_ index: Int) -> FuzzCase {
        var random = SplitMix64(state: Self.seed ^ (UInt64(index) &* 0x2545_F491_4F6C_DD1D))
        let marker = "s3cr3t-" + random.hex(16)
        let command = FuzzCommand.allCases[index % 3]
        if index < Self.specialCount {
            let (bytes, summary) = special(index, command: command, marker: marker, random: &random)
            return FuzzCase(index: index, command: command, input: Data(bytes), marker: marker, summary: summary)
        }
        var generator = Generator(random: random, host: registryHost, marker: marker)
        var (value, summary) = generator.template(for: command)
        var steps = [summary]
        let mutations = generator.random.chance(0.1) ? 0 : 1 + generator.random.below(3)
        for _ in 0..<mutations { steps.append(generator.mutate(&value)) }
        var bytes: [UInt8] = []
        value.write(to: &bytes)
        if generator.random.chance(0.22) { steps.append(generator.mutateBytes(&bytes)) }
        return FuzzCase(
            index: index, command: command, input: Data(bytes), marker: marker, summary: steps.joined(separator: ", "))
    }

    /// The hand-written cases: nothing, garbage, extremes.
    private func special(_ index: Int, command: FuzzCommand, marker: String, random: inout SplitMix64) -> (
        [UInt8], String
    ) {
        var generator = Generator(random: random, host: registryHost, marker: marker)
        let (valid, _) = generator.template(for: command)
        var validBytes: [UInt8] = []
        valid.write(to: &validBytes)
        let deep = 10_000
        let source =
            #"{"repository":"\#(registryHost)/team/app","tag":"latest","username":"u","password":"\#(marker)"}"#
        switch index {
        case 0: return ([], "empty input")
        case 1: return (Array(" \n\t\r ".utf8), "whitespace only")
        case 2: return ([0], "one NUL byte")
        case 3: return (Array("null".utf8), "null")
        case 4:
            return (
                Array(String(repeating: "[", count: deep).utf8) + Array(String(repeating: "]", count: deep).utf8),
                "10,000 nested arrays"
            )
        case 5:
            return (
                Array((String(repeating: #"{"a":"#, count: deep) + "1" + String(repeating: "}", count: deep)).utf8),
                "10,000 nested objects"
            )
        case 6:
            let nested = String(repeating: #"{"source":"#, count: deep) + "{}" + String(repeating: "}", count: deep)
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","password":"\#(marker)","platform":\#(nested)}}"#
                        .utf8), "10,000 nested objects under source"
            )
        case 7:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","tag":"\#(String(repeating: "x", count: 1 << 20))","password":"\#(marker)","username":"u"}}"#
                        .utf8), "1 MB tag"
            )
        case 8:
            return (
                Array(#"{"source":{"\#(String(repeating: "k", count: 1 << 20))":1,"password":"\#(marker)"}}"#.utf8),
                "1 MB key"
            )
        case 9:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","username":"u","password":"\#(marker)"#.utf8)
                    + [0xFF, 0xFE] + Array(#""}}"#.utf8), "invalid UTF-8 in the password"
            )
        case 10:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","username":"u","password":"\#(marker)\ud800"}}"#
                        .utf8), "a lone surrogate in the password"
            )
        case 11: return (Array(validBytes.prefix(validBytes.count / 2)), "valid input cut in half")
        case 12: return ([0xEF, 0xBB, 0xBF] + validBytes, "a byte order mark before valid input")
        case 13: return (validBytes + Array(" {}".utf8), "two documents")
        case 14:
            return (
                Array(
                    #"{"source":\#(source),"source":\#(source),"version":{"digest":"sha256:\#(String(repeating: "0", count: 64))"},"version":null}"#
                        .utf8), "duplicate keys"
            )
        case 15: return (Array(#"{"source":\#(source.dropLast()),"insecure":1e999}}"#.utf8), "1e999 for a boolean")
        case 16:
            return (
                Array(
                    #"{"source":\#(source.dropLast()),"git":{"uri":"/nonexistent/x","version_depth":123456789012345678901234567890}}}"#
                        .utf8), "a 30-digit version_depth"
            )
        case 17:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","password":"\#(marker)\n","username":"u\u0000"}}"#
                        .utf8), "line break and NUL in credentials"
            )
        case 18:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app","git":{"uri":"/nonexistent/x","password":"\#(marker)","private_key":"\#(marker)"}}}"#
                        .utf8), "git password without user, key that is no key"
            )
        case 19:
            return (
                Array(
                    #"{"source":{"repository":"\#(registryHost)/team/app\u2028injected","password":"\#(marker)"}}"#.utf8
                ), "a line separator in the repository"
            )
        case 20: return ((0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) }, "4 KB of random bytes")
        case 21:
            return (
                Array(
                    #"{"source":\#(source.dropLast()),"\#(String(repeating: "\u{85}\u{2028}\\n", count: 50))":true}}"#
                        .utf8), "line breaks in an unknown key"
            )
        case 22: return (Array(#"[{"source":\#(source)}]"#.utf8), "an array at the top")
        default: return (validBytes + [0], "valid input with a trailing NUL")
        }
    }
}

/// Builds one input: a template for the command, then mutations.
private struct Generator {
    var random: SplitMix64
    let host: String
    let marker: String

    private func o(_ members: [(String, FuzzValue)]) -> FuzzValue { .object(members) }

    var digest: String { "sha256:" + String(repeating: "0", count: 63) + "1" }
    var commit: String { String(repeating: "a", count: 40) }
    var privateKey: String {
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\(marker)AAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    }

    /// URIs that fail at once and reach no other machine.
    var safeURIs: [String] {
        [
            "/nonexistent/slipway-fuzz/repo.git", "file:///nonexistent/slipway-fuzz/repo.git",
            "https://fuzz:\(marker)@\(host)/repo.git",
            "http://\(host)/repo.git", "ssh://git@\(host)/repo.git", "relative/not/here",
        ]
    }

    mutating func credentials() -> [(String, FuzzValue)] {
        random.chance(0.8)
            ? [("username", .string("ci")), ("password", .string(marker))] : [("password", .string(marker))]
    }

    mutating func registryKeys() -> [(String, FuzzValue)] {
        var members: [(String, FuzzValue)] = [("repository", .string("\(host)/team/app"))]
        members += credentials()
        if random.chance(0.7) { members.append(("insecure", .bool(random.chance(0.7)))) }
        if random.chance(0.15) {
            members.append(
                ("ca_certs", .array([.string("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")])))
        }
        if random.chance(0.2) {
            members.append(
                (
                    "platform",
                    o([("os", .string("linux")), ("architecture", .string("arm64")), ("variant", .string("v8"))])
                ))
        }
        if random.chance(0.1) { members.append(("debug", .bool(false))) }
        return members
    }

    mutating func imageSource() -> FuzzValue {
        var members = registryKeys()
        if random.chance(0.5) {
            members.append(("tag", .string(random.pick(["latest", "1.2.3", "dev"]))))
        } else {
            if random.chance(0.5) { members.append(("variant", .string("alpine"))) }
            if random.chance(0.5) {
                members.append(
                    ("semver_constraint", .string(random.pick(["~1.2", ">= 1.0, < 2", "1.2.x", "^1 || ^2"]))))
            }
            if random.chance(0.4) { members.append(("pre_releases", .bool(true))) }
            if random.chance(0.3) {
                members.append(("pre_release_prefixes", .array([.string("rc"), .string("beta")])))
            }
        }
        return o(members)
    }

    mutating func keyedSource() -> FuzzValue {
        var git: [(String, FuzzValue)] = [
            ("uri", .string(random.pick(safeURIs))),
            ("branch", .string(random.pick(["main", "feature/x", "release-1.2"]))),
        ]
        if random.chance(0.7) { git.append(("paths", .array([.string("images/app/"), .string("shared/*.sh")]))) }
        if random.chance(0.3) { git.append(("ignore_paths", .array([.string("docs/")]))) }
        if random.chance(0.2) {
            git.append(
                (
                    "commit_filter",
                    o([("include", .array([.string("feat")])), ("exclude", .array([.string("\\[skip\\]")]))])
                ))
        }
        if random.chance(0.2) { git.append(("version_depth", .number("3"))) }
        if random.chance(0.15) { git.append((random.chance(0.5) ? "tag_filter" : "tag_regex", .string("v[0-9]+.*"))) }
        if random.chance(0.15) { git.append(("disable_ci_skip", .bool(true))) }
        if random.chance(0.4) { git.append(("private_key", .string(privateKey))) }
        if random.chance(0.6) { git += [("username", .string("git")), ("password", .string(marker))] }
        var members = registryKeys()
        members.append(("git", o(git)))
        if random.chance(0.4) {
            members.append(
                (
                    "tag_file",
                    random.chance(0.5)
                        ? .string("images/app/VERSION")
                        : o([("path", .string("tags.yml")), ("key", .string("tags.app"))])
                ))
        }
        if random.chance(0.4) {
            members.append(
                ("tags", .array([.string("{short_ref}"), .string("{branch}-latest"), .string("v{tag_file}")])))
        }
        if random.chance(0.2) { members.append(("latest_on", .string("main"))) }
        if random.chance(0.2) { members.append(("require_image", .bool(true))) }
        if random.chance(0.2) { members.append(("tag_prefix", .string("v"))) }
        if random.chance(0.15) {
            members.append(
                (
                    "track_base",
                    random.chance(0.5)
                        ? .bool(true)
                        : o([
                            ("dockerfile", .string("images/app/Dockerfile")),
                            ("build_args", o([("BASE", .string("alpine"))])),
                        ])
                ))
        }
        return o(members)
    }

    mutating func imageVersion() -> FuzzValue { o([("tag", .string("latest")), ("digest", .string(digest))]) }

    mutating func keyedVersion() -> FuzzValue {
        var members: [(String, FuzzValue)] = [("ref", .string(commit))]
        if random.chance(0.3) { members.append(("tag_file", .string("1.0"))) }
        if random.chance(0.2) { members.append(("base", .string(digest))) }
        if random.chance(0.1) { members.append(("release", .string("v1.0.0"))) }
        return o(members)
    }

    mutating func template(for command: FuzzCommand) -> (FuzzValue, String) {
        // Source-keyed inputs that pass validation run git (three processes): fewer of them.
        let keyed = random.chance(0.18)
        let source = keyed ? keyedSource() : imageSource()
        switch command {
        case .check:
            var members: [(String, FuzzValue)] = [("source", source)]
            if random.chance(0.6) { members.append(("version", keyed ? keyedVersion() : imageVersion())) }
            return (o(members), keyed ? "check source-keyed" : "check image mode")
        case .in:
            var params: [(String, FuzzValue)] = []
            if random.chance(0.5) { params.append(("image", .string(random.pick(["skip", "auto", "required"])))) }
            if random.chance(0.4) { params.append(("format", .string(random.pick(["rootfs", "oci", "oci-layout"])))) }
            if random.chance(0.2) { params.append(("skip_download", .bool(true))) }
            if keyed, random.chance(0.7) { params.append(("source", .bool(false))) }
            if random.chance(0.1) {
                params.append(("platform", o([("os", .string("linux")), ("architecture", .string("amd64"))])))
            }
            return (
                o([("source", source), ("version", keyed ? keyedVersion() : imageVersion()), ("params", o(params))]),
                keyed ? "in source-keyed" : "in image mode"
            )
        case .out:
            var params: [(String, FuzzValue)]
            let what: String
            switch (keyed, random.below(3)) {
            case (false, 0):
                params = [
                    (
                        "promote",
                        o([
                            ("from", .string(random.pick(["latest", "get"]))), ("to", .array([.string("stable")])),
                            ("release", .string("1.2.3")), ("repository", .string("\(host)/other/app")),
                            ("username", .string("u")), ("password", .string(marker)),
                        ])
                    )
                ]
                what = "promote"
            case (false, _):
                params = [("image", .string(random.pick(["image/oci", "image/oci.tar", "image/*"])))]
                if random.chance(0.5) { params.append(("version", .string("1.2.3"))) }
                if random.chance(0.3) { params.append(("bump_aliases", .bool(true))) }
                if random.chance(0.3) {
                    params += [("additional_tags", .string("tags")), ("tag_prefix", .string("v"))]
                }
                what = "push"
            case (true, 0):
                params = [
                    (
                        "prune",
                        o([
                            ("deleted_branches", .bool(true)), ("keep", .number("3")), ("older_than", .string("14d")),
                            ("dry_run", .bool(true)), ("max_deletions", .number("5")),
                        ])
                    )
                ]
                what = "prune"
            case (true, 1):
                params = [("bump_tag_file", .string(random.pick(["major", "minor", "patch", "2.0.0"])))]
                what = "bump"
            default:
                params = [("image", .string("image/oci"))]
                if random.chance(0.5) { params.append(("version_from", .string("get"))) }
                if random.chance(0.3) { params.append(("additional_tags", .string("tags"))) }
                if random.chance(0.3) { params.append(("release", .string("release"))) }
                what = "push"
            }
            return (
                o([("source", source), ("params", o(params))]), "out \(keyed ? "source-keyed" : "image mode") \(what)"
            )
        }
    }

    // MARK: Mutations

    enum Step {
        case member(Int)
        case element(Int)
    }

    /// Every node's path, the root included, and whether it is an object (long lists are
    /// sampled: their first 16 elements).
    private func paths(_ value: FuzzValue, _ prefix: [Step] = []) -> [(path: [Step], isObject: Bool)] {
        switch value {
        case .array(let items):
            return [(prefix, false)]
                + items.prefix(16).enumerated().flatMap { paths($0.element, prefix + [.element($0.offset)]) }
        case .object(let members):
            return [(prefix, true)]
                + members.enumerated().flatMap { paths($0.element.1, prefix + [.member($0.offset)]) }
        default:
            return [(prefix, false)]
        }
    }

    /// Applies `body` to the node at `path`; `key` is the member name it sits under, if any.
    private func modify(
        _ value: inout FuzzValue, at path: ArraySlice<Step>, key: String?, _ body: (inout FuzzValue, String?) -> Void
    ) {
        guard let step = path.first else { return body(&value, key) }
        switch (step, value) {
        case (.element(let i), .array(var items)):
            modify(&items[i], at: path.dropFirst(), key: key, body)
            value = .array(items)
        case (.member(let i), .object(var members)):
            modify(&members[i].1, at: path.dropFirst(), key: members[i].0, body)
            value = .object(members)
        default: break
        }
    }

    /// A string fit for `key`: repositories stay on the generator's host and git URIs stay
    /// local, so no mutation sends a request anywhere else.
    private func confined(_ text: String, key: String?) -> String {
        switch key {
        case "repository": "\(host)/\(text)"
        case "uri": "/nonexistent/slipway-fuzz/\(text)"
        default: text
        }
    }

    private mutating func anyValue(depth: Int = 0) -> FuzzValue {
        switch random.below(depth > 1 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(random.chance(0.5))
        case 2: return .number(random.pick(FuzzCorpus.hugeNumbers))
        case 3:
            return .string(
                random.pick(["", "x", "latest", "sha256:abc", "{short_ref}", "../..", "-rf"] + FuzzCorpus.nasty))
        case 4: return .string(String(repeating: random.pick(["a", "é", "\n", "/"]), count: 1 + random.below(300)))
        case 5: return .array((0..<random.below(4)).map { _ in anyValue(depth: depth + 1) })
        default:
            return .object(
                (0..<random.below(4)).map { _ in
                    (random.pick(["a", "os", "tag", "password", ""]), anyValue(depth: depth + 1))
                })
        }
    }

    private mutating func nastyString(around original: String?) -> String {
        var text = original ?? random.pick(["latest", "team/app", "main", "images/app/"])
        let insert = random.pick(FuzzCorpus.nasty)
        // Counting the characters of a 1 MB string is slow; such strings get it in front.
        let offset = text.utf8.count > 1000 ? 0 : random.below(text.count + 1)
        text.insert(contentsOf: insert, at: text.index(text.startIndex, offsetBy: offset))
        return text
    }

    /// One mutation at a random node; returns what it did.
    mutating func mutate(_ value: inout FuzzValue) -> String {
        let all = paths(value)
        let path = random.pick(all).path
        let objects = all.filter(\.isObject).map(\.path)
        let kind = random.below(100)
        var done = ""
        switch kind {
        case 0..<30:  // another type
            let replacement = anyValue()
            modify(&value, at: path[...], key: nil) { [self] node, key in
                if case .string(let text) = replacement {
                    node = .string(confined(text, key: key))
                } else {
                    node = replacement
                }
                done = "wrong type at \(key ?? "root")"
            }
        case 30..<44:  // line breaks, NUL, escapes and odd Unicode in a string
            var generator = self
            modify(&value, at: path[...], key: nil) { node, key in
                let original: String? = if case .string(let text) = node { text } else { nil }
                node = .string(generator.confined(generator.nastyString(around: original), key: key))
                done = "hostile characters at \(key ?? "root")"
            }
            random = generator.random
        case 44..<46:  // a 1 MB string
            let filler = random.pick(["a", "é", "\n", "\u{2028}", "\u{0}", marker])
            modify(&value, at: path[...], key: nil) { [self] node, key in
                // The marker is a secret only where a secret belongs.
                let text = filler == marker && key != "password" && key != "private_key" ? "b" : filler
                // Written out already escaped: escaping a megabyte byte by byte is slow in a debug build.
                let escaped = FuzzValue.escaped(text)
                let prefix = FuzzValue.escaped(confined("", key: key))
                node = .raw(
                    "\"" + prefix + String(repeating: escaped, count: (1 << 20) / max(text.utf8.count, 1)) + "\"")
                done = "1 MB string at \(key ?? "root")"
            }
        case 46..<56:  // a huge or odd number
            let number = random.pick(FuzzCorpus.hugeNumbers)
            modify(&value, at: path[...], key: nil) { node, key in
                node = .number(number)
                done = "number \(number) at \(key ?? "root")"
            }
        case 56..<59:  // 10,000 levels of nesting
            let deep =
                random.chance(0.5)
                ? String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
                : String(repeating: #"{"a":"#, count: 10_000) + "null" + String(repeating: "}", count: 10_000)
            modify(&value, at: path[...], key: nil) { node, key in
                node = .raw(deep)
                done = "10,000 levels at \(key ?? "root")"
            }
        case 59..<67:  // a member or element removed
            guard path.count > 0 else { return "nothing removed" }
            let parent = path.dropLast()
            let last = path.last!
            modify(&value, at: parent, key: nil) { node, _ in
                switch (node, last) {
                case (.object(var members), .member(let i)):
                    done = "removed \(members[i].0)"
                    members.remove(at: i)
                    node = .object(members)
                case (.array(var items), .element(let i)):
                    items.remove(at: i)
                    node = .array(items)
                    done = "removed an element"
                default: break
                }
            }
        case 67..<82:  // an unknown key, maybe a password holding the marker
            guard !objects.isEmpty else { return "no object for a key" }
            let target = random.pick(objects)
            let names = [
                "tagg", "repo", "Password", "insecure ", "", "\u{0}", "\n", "__proto__", "source", "version", "params",
                String(repeating: "k", count: 5000), "gti", "uri", "formt", "platfrom",
            ]
            let name = random.chance(0.3) ? "password" : random.pick(names)
            let extra: FuzzValue = name == "password" ? .string(marker) : anyValue()
            modify(&value, at: target[...], key: nil) { node, key in
                if case .object(var members) = node {
                    members.insert((name, extra), at: members.isEmpty ? 0 : members.count / 2)
                    node = .object(members)
                }
                done = "key \(name.prefix(20).debugDescription) added to \(key ?? "root")"
            }
        case 82..<88:  // empty values
            let empty: FuzzValue = random.pick([.string(""), .array([]), .object([]), .null])
            modify(&value, at: path[...], key: nil) { node, key in
                node = empty
                done = "empty at \(key ?? "root")"
            }
        case 88..<92:  // a duplicated member with another value
            guard !objects.isEmpty else { return "no object to duplicate in" }
            let target = random.pick(objects)
            let other = anyValue()
            modify(&value, at: target[...], key: nil) { node, key in
                if case .object(var members) = node, let first = members.first {
                    members.append((first.0, other))
                    node = .object(members)
                    done = "duplicate \(first.0) in \(key ?? "root")"
                }
            }
        case 92..<95:  // a long list
            // Mostly 1,000: in-process every element costs Swift Testing a backtrace per error
            // JSONValue's decoding tries (its SWT_SWIFT_ERROR_BACKTRACING), 30 µs each.
            let count = random.chance(0.1) ? 10_000 : 1_000
            let item: FuzzValue = random.chance(0.5) ? .string("images/app/") : .number("1")
            modify(&value, at: path[...], key: nil) { node, key in
                node = .array(Array(repeating: item, count: count))
                done = "\(count) items at \(key ?? "root")"
            }
        default:  // a lone surrogate or an overlong escape in a string
            let escape = random.pick([
                #""\ud800""#, #""\udfff\ud800""#, #""\u0000""#, #""\uZZZZ""#, #""\"#, #""x\u00""#,
            ])
            modify(&value, at: path[...], key: nil) { node, key in
                node = .raw(escape)
                done = "escape \(escape) at \(key ?? "root")"
            }
        }
        return done.isEmpty ? "no-op" : done
    }

    /// A mutation of the serialised bytes: the kinds of damage a pipe or an editor does.
    mutating func mutateBytes(_ bytes: inout [UInt8]) -> String {
        let invalid: [[UInt8]] = [
            [0xFF], [0xC0, 0x80], [0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFE, 0xFF],
        ]
        let at = random.below(bytes.count + 1)
        switch random.below(7) {
        case 0:
            bytes = Array(bytes.prefix(at))
            return "truncated at byte \(at)"
        case 1:
            // Inside the marker's string when possible, so a decoder that replaced bytes would show it.
            let sequence = random.pick(invalid)
            let position = bytes.prefix(1 << 16).firstRange(of: Array(marker.utf8)).map { $0.upperBound } ?? at
            bytes.insert(contentsOf: sequence, at: position)
            return "invalid UTF-8 \(sequence) at byte \(position)"
        case 2:
            bytes.insert(0, at: at)
            return "NUL byte at \(at)"
        case 3:
            if !bytes.isEmpty { bytes[min(at, bytes.count - 1)] ^= UInt8(truncatingIfNeeded: 1 << random.below(8)) }
            return "bit flipped at \(at)"
        case 4:
            bytes += Array(random.pick([",", "}", "]", "\"", " garbage", "\u{0}", "{}"]).utf8)
            return "trailing bytes"
        case 5:
            bytes = [0xEF, 0xBB, 0xBF] + bytes
            return "byte order mark"
        default:
            bytes = Array(random.pick(["", "   ", "{}", "[]", "\"\"", "0", "{\"source\":", "\u{0}\u{0}"]).utf8)
            return "replaced by \(String(decoding: bytes, as: UTF8.self).debugDescription)"
        }
    }
}
