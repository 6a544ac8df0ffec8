import Archive
import Foundation
import ImageLayout
import OCI

/// Builds small real images into layouts: gzip'd tar layers written by our own writers.
public enum ImageFixture {
    /// Writes a layer whose files are `files` (path → content) and returns (descriptor, diff_id).
    public static func layer(_ files: [String: String], into layout: OCILayout, compression: Compression = .gzip) throws
        -> (Descriptor, Digest)
    {
        try layer(files.mapValues { Data($0.utf8) }, into: layout, compression: compression)
    }

    /// Writes a layer whose files are `files` (path → bytes) and returns (descriptor, diff_id).
    public static func layer(_ files: [String: Data], into layout: OCILayout, compression: Compression = .gzip) throws
        -> (Descriptor, Digest)
    {
        let tar = DataSink()
        let writer = TarWriter(tar)
        for (path, bytes) in files.sorted(by: { $0.key < $1.key }) {
            try writer.append(
                TarHeader(name: path, kind: .regular, mode: 0o644, size: Int64(bytes.count)), body: DataSource(bytes))
        }
        try writer.finish()
        let compressed: Data
        if compression == .zstd {
            // By the zstd CLI: Slipway never writes zstd.
            compressed = try runProcess("zstd", ["-q", "-c"], stdin: tar.data).checked().stdout
        } else {
            let sink = DataSink()
            let compressor = try GzipCompressor(sink)
            try tar.data.withUnsafeBytes { try compressor.write($0) }
            try compressor.finish()
            compressed = sink.data
        }
        let descriptor = try layout.writeBlob(
            compressed, mediaType: compression == .zstd ? .ociLayerZstd : .ociLayerGzip)
        return (descriptor, Digest.sha256(tar.data))
    }

    /// A one-platform image of `layerCount` layers, added to the layout's index as `name`.
    @discardableResult
    public static func image(
        in layout: OCILayout, name: String?, platform: Platform = Platform(os: "linux", architecture: "amd64"),
        layerCount: Int = 2, seed: String = "x", labels: [String: String] = [:], addToIndex: Bool = true
    ) throws -> Descriptor {
        var layers: [Descriptor] = []
        var diffIDs: [Digest] = []
        for index in 0..<layerCount {
            let (descriptor, diffID) = try layer(
                [
                    "etc/layer\(index)": "\(seed) \(index) \(platform)\n",
                    "data/\(index).txt": String(repeating: "\(index)", count: 5000),
                ], into: layout)
            layers.append(descriptor)
            diffIDs.append(diffID)
        }
        let configuration = ImageConfiguration(
            created: "1970-01-01T00:00:00Z", author: nil, platform: platform,
            config: ImageConfiguration.Config(
                env: ["PATH=/usr/bin:/bin"], cmd: ["/bin/sh"], labels: labels.merging(["seed": seed]) { $1 }),
            rootfs: .init(type: "layers", diffIDs: diffIDs), history: nil)
        let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
        let manifest = try layout.writeBlob(
            try CanonicalJSON.encode(ImageManifest(config: config, layers: layers)), mediaType: .ociManifest)
        var described = manifest
        described.platform = platform
        if addToIndex { try layout.addToIndex(described, name: name) }
        return described
    }
}
