import Foundation
import OCI
import Registry
import TestSupport

/// A small real image: gzip'd tar layers made by the system's tar and gzip, a config whose
/// diff_ids are the uncompressed tars' digests, and an OCI manifest over them, all on disk.
struct TestImage {
    struct Blob {
        var descriptor: Descriptor
        var file: URL
    }

    var layers: [Blob]
    var config: Blob
    var manifestBytes: Data
    var manifestDigest: Digest { Digest.sha256(manifestBytes) }

    /// `layerSizes` bytes of random content per layer (random data does not compress, so
    /// the blob is about that size).
    static func make(
        in directory: TemporaryDirectory, layerSizes: [Int] = [3000, 70_000, 250_000], seed: String = UUID().uuidString
    ) throws -> TestImage {
        var layers: [Blob] = []
        var diffIDs: [Digest] = []
        for (index, size) in layerSizes.enumerated() {
            let root = directory.appending("layer\(index)-root")
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent("data"), withIntermediateDirectories: true)
            var bytes = Data(count: size)
            bytes.withUnsafeMutableBytes { raw in
                var generator = SystemRandomNumberGenerator()
                for i in 0..<raw.count { raw[i] = UInt8.random(in: 0...255, using: &generator) }
            }
            try bytes.write(to: root.appendingPathComponent("data/file\(index)"))
            try Data("\(seed) layer \(index)\n".utf8).write(to: root.appendingPathComponent("data/seed\(index).txt"))
            let tar = directory.appending("layer\(index).tar")
            _ = try runProcess(
                "tar",
                ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-cf", tar.path, "-C", root.path, "data"]
            ).checked()
            diffIDs.append(Digest.sha256(try Data(contentsOf: tar)))
            _ = try runProcess("gzip", ["-n", "-k", tar.path]).checked()
            let gz = URL(fileURLWithPath: tar.path + ".gz")
            let content = try Data(contentsOf: gz)
            layers.append(
                Blob(
                    descriptor: Descriptor(
                        mediaType: .ociLayerGzip, digest: .sha256(content), size: Int64(content.count)), file: gz))
        }
        let configuration = ImageConfiguration(
            created: "1970-01-01T00:00:00Z", author: nil, platform: Platform(os: "linux", architecture: "amd64"),
            config: nil, rootfs: .init(type: "layers", diffIDs: diffIDs), history: nil)
        let configBytes = try CanonicalJSON.encode(configuration)
        let configFile = directory.appending("config.json")
        try configBytes.write(to: configFile)
        let config = Blob(
            descriptor: Descriptor(mediaType: .ociConfig, digest: .sha256(configBytes), size: Int64(configBytes.count)),
            file: configFile)
        let manifest = ImageManifest(
            config: config.descriptor, layers: layers.map(\.descriptor), annotations: ["seed": seed])
        return TestImage(layers: layers, config: config, manifestBytes: try CanonicalJSON.encode(manifest))
    }

    /// Pushes every blob, then the manifest under `tag`.
    @discardableResult
    func push(with client: RegistryClient, to repository: Repository, tag: String) throws -> Digest {
        for blob in layers + [config] {
            try client.uploadBlob(repository, blob.descriptor, from: blob.file)
        }
        return try client.putManifest(repository, .tag(try OCI.Tag(tag)), bytes: manifestBytes, mediaType: .ociManifest)
    }

    /// Writes the image as an OCI image layout (for skopeo to read), tagged `tag`.
    func writeLayout(at directory: URL, tag: String) throws {
        let blobs = directory.appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        for blob in layers + [config] {
            try FileManager.default.copyItem(
                at: blob.file, to: blobs.appendingPathComponent(blob.descriptor.digest.encoded))
        }
        try manifestBytes.write(to: blobs.appendingPathComponent(manifestDigest.encoded))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: directory.appendingPathComponent("oci-layout"))
        let index = ImageIndex(manifests: [
            Descriptor(
                mediaType: .ociManifest, digest: manifestDigest, size: Int64(manifestBytes.count),
                annotations: ["org.opencontainers.image.ref.name": tag])
        ])
        try CanonicalJSON.encode(index).write(to: directory.appendingPathComponent("index.json"))
    }
}
