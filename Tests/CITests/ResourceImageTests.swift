import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `ci/resource-image` and `ci/Containerfile`: the resource-type image, built by our own
/// build-task with no network (the self-contained target), read back by umoci, and then run
/// as Concourse runs a resource type: the image's own `/opt/resource/check`, in the image's
/// root filesystem, with JSON on stdin.
@Suite("the resource-type image", .serialized)
struct ResourceImageTests {
    /// The tools the script and the test use, and nothing of the developer's environment.
    let environment = [
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": NSTemporaryDirectory(),
    ]

    @Test func offlineImageCarriesTheResourceAndItsOwnCheckAnswersFromInsideIt() async throws {
        try #require(getuid() == 0, "running the image's check needs chroot, hence root")
        let slipway = try builtProduct("slipway")
        let bin = slipway.deletingLastPathComponent()
        try await withTemporaryDirectory(prefix: "slipway-resource-image") { directory in
            let out = directory.appending("out")
            let script = CIPaths.ci.appendingPathComponent("resource-image").path
            let built = try runProcess(
                script, ["--offline", "--bin", bin.path, "--out", out.path], environment: environment)
            try #require(built.succeeded, "ci/resource-image failed: \(built.stderrString)")

            // build-task's outputs: digest names the image in oci/.
            let image = out.appendingPathComponent("image")
            let digest = try String(contentsOf: image.appendingPathComponent("digest"), encoding: .utf8)
            let layoutImage = try OCILayout(opening: image.appendingPathComponent("oci")).image(named: "latest")
            #expect(layoutImage.descriptor.digest.rawValue == digest)
            #expect(FileManager.default.fileExists(atPath: image.appendingPathComponent("image.tar").path))

            // umoci, an independent reader, unpacks it: one binary, byte for byte the one built,
            // and the four names where Concourse and a task look for them, relative links to it.
            let bundle = directory.appending("bundle")
            _ = try runProcess(
                "umoci", ["unpack", "--image", "\(image.appendingPathComponent("oci").path):latest", bundle.path],
                environment: environment
            ).checked()
            let rootfs = bundle.appendingPathComponent("rootfs")
            let inImage = rootfs.appendingPathComponent("usr/local/bin/slipway")
            #expect(FileManager.default.isExecutableFile(atPath: inImage.path), "usr/local/bin/slipway is in the image")
            #expect(
                FileManager.default.contentsEqual(atPath: inImage.path, andPath: slipway.path),
                "it is the built slipway")
            for link in ["opt/resource/check", "opt/resource/in", "opt/resource/out", "usr/local/bin/build-task"] {
                let path = rootfs.appendingPathComponent(link)
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path.path)
                #expect(target.map { !$0.hasPrefix("/") } == true, "\(link) is a relative link: \(target ?? "none")")
                #expect(
                    path.resolvingSymlinksInPath().path == inImage.resolvingSymlinksInPath().path,
                    "\(link) leads to slipway")
            }

            // The chroot has no /proc, where Swift looks for argv on Linux: the name and the
            // arguments must reach slipway all the same.
            let help = try runProcess(
                "chroot", [rootfs.path, "/usr/local/bin/build-task", "plan", "--help"],
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin", "HOME": "/root"])
            #expect(
                help.succeeded && help.stdoutString.contains("USAGE: build-task plan"),
                "\(help.stdoutString)\(help.stderrString)")

            // The image's own check, in its own root, against a registry holding one tag.
            try await withTestRegistry(.open) { registry in
                let pushed = try pushOneTag(try registry.client(), try Repository("team/app"), tag: "latest")
                let input =
                    #"{"source":{"repository":"\#(registry.host)/team/app","tag":"latest","insecure":true},"version":null}"#
                let check = try runProcess(
                    "chroot", [rootfs.path, "/opt/resource/check"], stdin: Data(input.utf8),
                    environment: ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin", "HOME": "/root", "TMPDIR": "/tmp"])
                try #require(check.succeeded, "the image's check failed: \(check.stderrString)")
                let versions = try JSONDecoder().decode([[String: String]].self, from: check.stdout)
                #expect(versions == [["tag": "latest", "digest": pushed.rawValue]])
            }
        }
    }

    /// The Debian target has no Swift runtime, so a binary that links it (test builds do)
    /// are refused before anything is built, with what to do instead.
    @Test func debianTargetRefusesBinariesThatNeedTheSwiftRuntime() throws {
        let bin = try builtProduct("slipway").deletingLastPathComponent()
        let linked = try runProcess("ldd", [bin.appendingPathComponent("slipway").path], environment: environment)
            .checked()
        guard linked.stdoutString.contains("libswiftCore.so") else { return }  // a --static-swift-stdlib test build
        try withTemporaryDirectory(prefix: "slipway-resource-image") { directory in
            let script = CIPaths.ci.appendingPathComponent("resource-image").path
            let result = try runProcess(script, ["--bin", bin.path, "--out", directory.path], environment: environment)
            #expect(result.status == 1)
            #expect(
                result.stderrString.contains("links the Swift runtime dynamically")
                    && result.stderrString.contains("--offline"),
                "\(result.stderrString)")
            #expect(!FileManager.default.fileExists(atPath: directory.appending("image").path), "nothing was built")
        }
    }
}

/// Pushes a tiny image (a config, no layers) under `tag`; returns its manifest digest.
private func pushOneTag(_ client: RegistryClient, _ repository: Repository, tag: String) throws -> Digest {
    let config = try client.uploadBlob(
        repository, data: Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8),
        mediaType: .ociConfig)
    let bytes = try CanonicalJSON.encode(
        ImageManifest(config: config, layers: [], annotations: ["seed": "resource-image"]))
    try client.putManifest(repository, .tag(try OCI.Tag(tag)), bytes: bytes, mediaType: .ociManifest)
    return Digest.sha256(bytes)
}
