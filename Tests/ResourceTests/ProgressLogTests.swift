import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

/// What a Concourse log shows while `out` pushes and `in` pulls a layer of several MiB: the
/// built binaries, stderr a file (not a terminal), through the fault proxy throttled to
/// 1 MiB/s per request in front of the real registry, so each transfer outlasts the 5 s
/// progress interval.
@Suite("Progress lines in the log of out and in")
struct ProgressLogTests {
    static let rate = 1 << 20

    /// An image of a ~7.6 MiB layer (gzipped base64 of random bytes: about 76 % of the
    /// text), a ~1.5 MiB layer and a small config. At 1 MiB/s the first outlasts the 5 s
    /// interval and the second does not.
    static func image(in layout: OCILayout, seed: UInt64) throws -> (
        manifest: Descriptor, layers: [Descriptor], config: Descriptor
    ) {
        var random = FaultHarness.SeededRandom(seed: seed)
        var layers: [Descriptor] = []
        var diffIDs: [Digest] = []
        for (index, textSize) in [10 << 20, 2 << 20].enumerated() {
            let text = random.bytes(textSize * 3 / 4).base64EncodedString()
            let (descriptor, diffID) = try ImageFixture.layer(["data/\(index).b64": text], into: layout)
            layers.append(descriptor)
            diffIDs.append(diffID)
        }
        let configuration = ImageConfiguration(
            created: "1970-01-01T00:00:00Z", platform: Platform(os: "linux", architecture: "amd64"),
            config: ImageConfiguration.Config(labels: ["seed": "\(seed)"]), rootfs: .init(diffIDs: diffIDs))
        let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
        let manifest = try layout.writeBlob(
            try CanonicalJSON.encode(ImageManifest(config: config, layers: layers)), mediaType: .ociManifest)
        try layout.addToIndex(manifest, name: "latest")
        return (manifest, layers, config)
    }

    static func short(_ blob: Descriptor) -> String { "layer sha256:\(blob.digest.encoded.prefix(12))" }

    /// Checks the start, periodic and end lines of each layer moved `verb` ("push"/"pull").
    static func expectLines(_ log: String, layers: [Descriptor], config: Descriptor, verb: String) {
        let lines = log.split(separator: "\n").map(String.init)
        for layer in layers {
            let size = ByteCount(layer.size)
            #expect(lines.contains("\(verb)ing \(short(layer)) (\(size))"), "a start line for \(layer.digest): \(log)")
            #expect(
                lines.contains { $0.hasPrefix("\(verb)ed \(short(layer)) (\(size)) in ") && $0.hasSuffix("/s") },
                "an end line for \(layer.digest): \(log)")
        }
        let big = layers[0]
        let periodic = lines.filter { $0.hasPrefix("\(verb)ing \(short(big)): ") }
        #expect(!periodic.isEmpty, "a progress line for the big layer: \(log)")
        for line in periodic {
            #expect(
                line.contains(" of \(ByteCount(big.size)) (") && line.contains("%), ") && line.hasSuffix("/s"),
                "\(line)")
        }
        // Counted as the bytes pass the 1 MiB/s link, not as they enter a buffer: 5 s into
        // 7.6 MiB, about two thirds (a count ahead of the link would say 100 % or nearly).
        if let first = periodic.first, let open = first.lastIndex(of: "("),
            let percent = Int(first[first.index(after: open)...].prefix { $0.isNumber })
        {
            #expect((30...90).contains(percent), "\(first)")
        } else {
            Issue.record("no percent in \(periodic)")
        }
        // The small layer takes about 1.5 s: well under the interval, so no progress line.
        #expect(!lines.contains { $0.hasPrefix("\(verb)ing \(short(layers[1])): ") }, "\(log)")
        #expect(
            lines.contains("blobs under 1.0 MiB: 1 \(verb)ed (\(ByteCount(config.size)))"),
            "the config is summarised: \(log)")
    }

    @Test func outLogsEachLayerAsItIsPushedAndSaysWhatIsAlreadyThere() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(name: "slow", path: "/blobs/", action: .throttle(bytesPerSecond: Self.rate))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let build = directory.appending("build")
                    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                    let image = try Self.image(in: layout, seed: 11)
                    let environment = try FaultHarness.environment(directory)
                    let input =
                        #"{"source":{"repository":"\#(proxy.host)/team/progress","tag":"v1","insecure":true},"params":{"image":"image/oci"}}"#
                    let out = try FaultHarness.runTimed(
                        try builtProduct("out").path, [build.path], input: input,
                        environment: environment, scratch: directory.appending("out-1"), limit: 60)
                    try #require(out.status == 0, "out failed: \(out.stderrString)")
                    #expect(out.elapsed < 15, "out took \(out.elapsed) s")
                    // stdout is the answer alone.
                    let answer = try JSONSerialization.jsonObject(with: out.stdout) as? [String: Any]
                    #expect((answer?["version"] as? [String: String])?["digest"] == image.manifest.digest.rawValue)
                    Self.expectLines(out.stderrString, layers: image.layers, config: image.config, verb: "push")

                    // Again: nothing moves, and each layer says so in one line.
                    let again = try FaultHarness.runTimed(
                        try builtProduct("out").path, [build.path], input: input,
                        environment: environment, scratch: directory.appending("out-2"), limit: 60)
                    try #require(again.status == 0, "out failed: \(again.stderrString)")
                    let lines = again.stderrString.split(separator: "\n").map(String.init)
                    for layer in image.layers {
                        #expect(
                            lines.contains(
                                "\(Self.short(layer)) (\(ByteCount(layer.size))) already in the repository, not sent"),
                            "\(again.stderrString)")
                    }
                    #expect(lines.contains("blobs under 1.0 MiB: 1 already in the repository"), "\(again.stderrString)")
                    #expect(!lines.contains { $0.hasPrefix("pushing") }, "\(again.stderrString)")
                }
            }
        }
    }

    @Test func inLogsEachLayerAsItIsPulled() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(name: "slow", path: "/blobs/", action: .throttle(bytesPerSecond: Self.rate))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let layout = try OCILayout.create(at: directory.appending("layout"))
                    let image = try Self.image(in: layout, seed: 12)
                    // Straight to the registry (not through the slow proxy): only the pull is timed.
                    _ = try ImageTransfer().push(
                        try layout.image(named: "latest"), with: try registry.client(),
                        to: try Repository("team/progress"), tags: [try OCI.Tag("v1")])
                    let environment = try FaultHarness.environment(directory)
                    let get = directory.appending("get")
                    let input =
                        #"{"source":{"repository":"\#(proxy.host)/team/progress","tag":"v1","insecure":true},"version":{"tag":"v1","digest":"\#(image.manifest.digest)"},"params":{"format":"oci-layout"}}"#
                    let fetched = try FaultHarness.runTimed(
                        try builtProduct("in").path, [get.path], input: input,
                        environment: environment, scratch: directory.appending("in"), limit: 60)
                    try #require(fetched.status == 0, "in failed: \(fetched.stderrString)")
                    #expect(fetched.elapsed < 15, "in took \(fetched.elapsed) s")
                    let answer = try JSONSerialization.jsonObject(with: fetched.stdout) as? [String: Any]
                    #expect((answer?["version"] as? [String: String])?["digest"] == image.manifest.digest.rawValue)
                    Self.expectLines(fetched.stderrString, layers: image.layers, config: image.config, verb: "pull")
                    for layer in image.layers {
                        let path = get.appendingPathComponent("oci/blobs/sha256/\(layer.digest.encoded)").path
                        #expect(
                            (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int).map(Int64.init)
                                == layer.size)
                    }
                }
            }
        }
    }
    /// In a terminal (run by hand; `script` gives `out` a pseudo-terminal for stderr, stdout
    /// still goes to a file): a status line redrawn in place, the end lines kept, no start
    /// or periodic lines.
    @Test func outInATerminalRedrawsOneStatusLine() async throws {
        try await withTestRegistry(.open) { registry in
            try await withFaultProxy(
                upstream: registry.baseURL,
                rules: [
                    FaultRule(name: "slow", path: "/blobs/", action: .throttle(bytesPerSecond: 4 * Self.rate))
                ]
            ) { proxy in
                try withTemporaryDirectory { directory in
                    let build = directory.appending("build")
                    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                    let image = try Self.image(in: layout, seed: 13)
                    let input = directory.appending("input.json")
                    let answer = directory.appending("answer.json")
                    try Data(
                        #"{"source":{"repository":"\#(proxy.host)/team/progress","tag":"v1","insecure":true},"params":{"image":"image/oci"}}"#
                            .utf8
                    )
                    .write(to: input)
                    let command =
                        "'\(try builtProduct("out").path)' '\(build.path)' < '\(input.path)' > '\(answer.path)'"
                    var environment = try FaultHarness.environment(directory)
                    environment["TERM"] = "xterm"
                    let run = try runProcess("script", ["-qec", command, "/dev/null"], environment: environment)
                    let screen = String(decoding: run.stdout, as: UTF8.self)
                    try #require(run.status == 0, "out failed: \(screen)")
                    let answered =
                        try JSONSerialization.jsonObject(with: try Data(contentsOf: answer)) as? [String: Any]
                    #expect((answered?["version"] as? [String: String])?["digest"] == image.manifest.digest.rawValue)
                    let big = image.layers[0]
                    #expect(
                        screen.contains("\r\u{1B}[K↑ \(big.digest.encoded.prefix(12)) "),
                        "a status line: \(screen.debugDescription)")
                    #expect(
                        screen.contains("pushed \(Self.short(big)) (\(ByteCount(big.size))) in "),
                        "\(screen.debugDescription)")
                    #expect(
                        !screen.contains("pushing \(Self.short(big))"),
                        "no start or periodic lines: \(screen.debugDescription)")
                }
            }
        }
    }
}
