import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing
import Transfer

/// Runs the built `out DIR` with `input` on stdin, as Concourse does.
func runOut(_ input: String, directory: URL) throws -> ProcessResult {
    try runProcess(
        try builtProduct("out").path, [directory.path], stdin: Data(input.utf8),
        environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()])
}

func outVersion(_ result: ProcessResult) throws -> [String: String] {
    try #require(result.succeeded, "out failed: \(result.stderrString)")
    let json = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    return try #require(json["version"] as? [String: String])
}

@Suite("out, image mode, as Concourse runs it")
struct OutImageModeTests {
    let app = try! Repository("team/app")

    func source(_ registry: TestRegistry, _ extra: String = #""tag":"dev""#) -> String {
        var text = #""repository":"\#(registry.host)/team/app","insecure":true"#
        if let username = registry.username, let password = registry.password {
            text += #","username":"\#(username)","password":"\#(password)""#
        }
        return "{\(text),\(extra)}"
    }

    /// The build directory a task would leave: image/oci (layout), image/oci.tar, image/image.tar (docker-archive).
    func buildDirectory(_ directory: TemporaryDirectory) throws -> (URL, Digest) {
        let build = directory.appending("build")
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        try ImageFixture.image(in: layout, name: "latest", layerCount: 2, seed: UUID().uuidString)
        _ = try runProcess(
            "skopeo",
            [
                "copy", "oci:\(layout.root.path):latest",
                "oci-archive:\(build.appendingPathComponent("image/oci.tar").path):latest",
            ]
        ).checked()
        try DockerArchive.write(
            try layout.image(), repoTags: ["team/app:latest"], to: build.appendingPathComponent("image/image.tar"))
        return (build, try layout.image().descriptor.digest)
    }

    @Test func pushesEveryInputFormAndCheckSeesTheSameVersion() async throws {
        try await withTestRegistry(.basic()) { registry in
            try withTemporaryDirectory { directory in
                let (build, digest) = try buildDirectory(directory)
                for image in ["image/oci", "image/oci.ta?"] {
                    let version = try outVersion(
                        runOut(#"{"source":\#(source(registry)),"params":{"image":"\#(image)"}}"#, directory: build))
                    #expect(version == ["tag": "dev", "digest": digest.rawValue], "\(image)")
                }
                let checked = try decodeVersions(runCheck(#"{"source":\#(source(registry))}"#))
                #expect(checked == [["tag": "dev", "digest": digest.rawValue]])

                // A docker-archive becomes an image with the same layers (the manifest is new).
                try Data("a b".utf8).write(to: build.appendingPathComponent("tags"))
                let docker = try outVersion(
                    runOut(
                        #"{"source":\#(source(registry, #""tag":"from-docker""#)),"params":{"image":"image/image.tar","additional_tags":"tags","tag_prefix":"x-"}}"#,
                        directory: build))
                #expect(
                    try registry.client().manifestDescriptor(app, .tag(try OCI.Tag("x-b")))?.digest.rawValue
                        == docker["digest"])
                let pushed = try registry.client().manifest(app, .tag(try OCI.Tag("from-docker")))
                #expect(docker["digest"] == pushed.digest.rawValue)
            }
        }
    }

    @Test func versionAliasesAndAdditionalTags() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (build, digest) = try buildDirectory(directory)
                try pushTinyImage(try registry.client(), app, tags: ["1.3.0"], seed: "newer")
                try Data("extra1 extra2\nextra3".utf8).write(to: build.appendingPathComponent("tags"))
                let semver = source(registry, #""variant":null"#).replacingOccurrences(
                    of: #","variant":null"#, with: "")
                let version = try outVersion(
                    runOut(
                        #"{"source":\#(semver),"params":{"image":"image/oci","version":"v1.2.3","bump_aliases":true,"additional_tags":"tags","tag_prefix":"t-"}}"#,
                        directory: build))
                #expect(version["digest"] == digest.rawValue)
                let tags = Set(try registry.client().tags(app).map(\.rawValue))
                #expect(
                    tags == ["1.3.0", "1.2.3", "v1.2.3", "1.2", "t-extra1", "t-extra2", "t-extra3"],
                    "1 and latest stay with 1.3.0")
            }
        }
    }

    /// registry-image tags the version itself with the variant (`2.0.0-alpine`) and returns
    /// that tag, which is the version `check` with the same `variant` emits for the image.
    @Test func variantSuffixesTheVersionTagAndCheckFindsThePutsVersion() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (build, digest) = try buildDirectory(directory)
                let alpine = source(registry, #""variant":"alpine""#)
                let version = try outVersion(
                    runOut(
                        #"{"source":\#(alpine),"params":{"image":"image/oci","version":"2.0.0","bump_aliases":true}}"#,
                        directory: build))
                #expect(version == ["tag": "2.0.0-alpine", "digest": digest.rawValue])
                let tags = Set(try registry.client().tags(app).map(\.rawValue))
                #expect(tags == ["2.0.0-alpine", "2.0-alpine", "2-alpine", "alpine"])
                let checked = try decodeVersions(runCheck(#"{"source":\#(alpine)}"#))
                #expect(checked == [version])
            }
        }
    }

    /// registry-image's mirroring: a multi-platform get with `format: oci-layout`, put to
    /// another repository as `image: <get>/oci`, is the same index with every platform.
    @Test func putsBackAMultiPlatformOCILayoutGet() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = try OCILayout.create(at: directory.appending("source-layout"))
                let platforms = [
                    Platform(os: "linux", architecture: "amd64"),
                    Platform(os: "linux", architecture: "arm64", variant: "v8"),
                ]
                let children = try platforms.enumerated().map { offset, platform in
                    try ImageFixture.image(
                        in: layout, name: nil, platform: platform, seed: "mirror-\(offset)", addToIndex: false)
                }
                let index = try layout.writeBlob(
                    try CanonicalJSON.encode(ImageIndex(manifests: children)), mediaType: .ociIndex)
                try layout.addToIndex(index, name: "multi")
                _ = try ImageTransfer().push(
                    try layout.image(named: "multi"), with: try registry.client(), to: app, tags: [try OCI.Tag("multi")]
                )

                let build = directory.appending("build")
                let get =
                    #"{"source":\#(source(registry, #""tag":"multi""#)),"version":{"tag":"multi","digest":"\#(index.digest)"},"params":{"format":"oci-layout"}}"#
                let got = try runIn(get, directory: build.appendingPathComponent("got"))
                try #require(got.succeeded, "in failed: \(got.stderrString)")
                let mirror = source(registry, #""tag":"mirrored""#).replacingOccurrences(
                    of: "team/app", with: "team/mirror")
                let version = try outVersion(
                    runOut(#"{"source":\#(mirror),"params":{"image":"got/oci"}}"#, directory: build))
                #expect(version == ["tag": "mirrored", "digest": index.digest.rawValue])
                let raw = try runProcess(
                    "skopeo",
                    ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/team/mirror:mirrored"]
                ).checked()
                #expect(Digest.sha256(raw.stdout) == index.digest)
                for platform in platforms {
                    let variant = platform.variant.map { ["--override-variant", $0] } ?? []
                    let inspected = try runProcess(
                        "skopeo",
                        ["inspect", "--tls-verify=false", "--override-arch", platform.architecture] + variant
                            + ["docker://\(registry.host)/team/mirror:mirrored"]
                    ).checked()
                    let json = try #require(try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])
                    #expect(json["Architecture"] as? String == platform.architecture)
                }
            }
        }
    }

    @Test func promoteWithinARepositoryAndAcrossRegistries() async throws {
        try await withTestRegistry(.basic()) { registry in
            try await withTestRegistry(.token()) { other in
                try withTemporaryDirectory { directory in
                    let (build, digest) = try buildDirectory(directory)
                    _ = try outVersion(
                        runOut(#"{"source":\#(source(registry)),"params":{"image":"image/oci"}}"#, directory: build))
                    let promoted = try outVersion(
                        runOut(
                            #"{"source":\#(source(registry)),"params":{"promote":{"from":"dev","to":["test","staging"]}}}"#,
                            directory: build))
                    #expect(promoted == ["tag": "dev", "digest": digest.rawValue])
                    for tag in ["test", "staging"] {
                        #expect(try registry.client().manifestDescriptor(app, .tag(try OCI.Tag(tag)))?.digest == digest)
                    }
                    // From a get directory's digest file, to another registry with its own credentials.
                    try FileManager.default.createDirectory(
                        at: build.appendingPathComponent("got"), withIntermediateDirectories: true)
                    try Data(digest.rawValue.utf8).write(to: build.appendingPathComponent("got/digest"))
                    let params =
                        #"{"promote":{"from":"got","to":["prod"],"repository":"\#(other.host)/release/app","username":"\#(other.username!)","password":"\#(other.password!)"}}"#
                    _ = try outVersion(
                        runOut(#"{"source":\#(source(registry)),"params":\#(params)}"#, directory: build))
                    let copied = try other.client().manifestDescriptor(
                        try Repository("release/app"), .tag(try OCI.Tag("prod")))
                    #expect(copied?.digest == digest)
                    _ = try runProcess(
                        "skopeo",
                        [
                            "copy", "--src-tls-verify=false", "--src-creds", "\(other.username!):\(other.password!)",
                            "docker://\(other.host)/release/app:prod", "oci:\(directory.appending("pulled").path):prod",
                        ]
                    ).checked()
                }
            }
        }
    }

    @Test func badParamsAreOneClearLine() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let (build, _) = try buildDirectory(directory)
                let cases: [(String, String)] = [
                    (#"{"image":"nothing/*"}"#, "no file or directory matches"),
                    (#"{"image":"image/*"}"#, "matches 3 paths"),
                    (#"{"image":"image/oci","version":"one"}"#, #"params.version: "one" is not a semantic version"#),
                    (#"{"image":"image/oci","bump_aliases":true}"#, "params.bump_aliases: needs params.version"),
                    (#"{"promote":{"from":"absent","to":["x"]}}"#, "does not exist"),
                    (#"{"promote":{"from":"dev"}}"#, "params.promote.to is required"),
                    (#"{"imag":"x"}"#, #"did you mean "image"?"#),
                    (#"{}"#, "params.image is required"),
                ]
                for (params, expected) in cases {
                    let result = try runOut(#"{"source":\#(source(registry)),"params":\#(params)}"#, directory: build)
                    #expect(result.status == 1 && result.stdout.isEmpty)
                    #expect(result.stderrString.hasPrefix("out: "), "\(params): \(result.stderrString)")
                    #expect(result.stderrString.contains(expected), "\(params): \(result.stderrString)")
                }
            }
        }
    }
}
