import Archive
import Foundation
import OCI

/// docker-archives: the `docker save` format (`manifest.json`, `repositories`, a config
/// JSON, and each layer as an uncompressed `<id>/layer.tar`), which `docker load`,
/// `podman load`, `skopeo copy docker-archive:` and oci-build-task use.
public enum DockerArchive {
    struct Entry: Codable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    /// Reads an extracted docker-archive into `layout` as an OCI image, gzip-compressing
    /// layers stored uncompressed (and checking them against the config's `diff_ids` on the
    /// way), named by the tag of its first `RepoTags` entry.
    static func importExtracted(_ directory: URL, archive: URL, into layout: OCILayout) throws -> LayoutImage {
        let entry = try readManifest(directory, archive: archive)
        func member(_ name: String) throws -> URL {
            guard let clean = ExtractedArchive.normalise(name, relativeTo: nil), !clean.isEmpty else {
                throw LayoutError("\(archive.path): manifest.json names \(quoted(name)), outside the archive")
            }
            let url = directory.appendingPathComponent(clean)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw LayoutError("\(archive.path): manifest.json names \(quoted(name)), which the archive lacks")
            }
            return url
        }
        let configBytes = try Data(contentsOf: member(entry.Config))
        let configuration: ImageConfiguration
        do { configuration = try JSONDecoder().decode(ImageConfiguration.self, from: configBytes) } catch {
            throw LayoutError("\(archive.path): \(entry.Config) is not an image configuration: \(error)")
        }
        guard configuration.rootfs.diffIDs.count == entry.Layers.count else {
            throw LayoutError(
                "\(archive.path): the config lists \(configuration.rootfs.diffIDs.count) layers, manifest.json \(entry.Layers.count)"
            )
        }
        // OCI media types: the layout is an OCI layout, and tools that read one (skopeo) look
        // only for OCI manifests in it. The blobs are the archive's, whatever the labels.
        let config = try layout.writeBlob(configBytes, mediaType: .ociConfig)

        var layers: [Descriptor] = []
        for (index, name) in entry.Layers.enumerated() {
            layers.append(
                try importLayer(
                    member(name), named: name, diffID: configuration.rootfs.diffIDs[index], archive: archive,
                    into: layout))
        }
        let manifest = ImageManifest(mediaType: .ociManifest, config: config, layers: layers)
        let descriptor = try layout.writeBlob(try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
        let name = entry.RepoTags?.first.flatMap { $0.split(separator: ":").last.map(String.init) }
        try layout.addToIndex(descriptor, name: name)
        return try layout.image(named: name)
    }

    /// The one image entry of the extracted archive's `manifest.json`.
    private static func readManifest(_ directory: URL, archive: URL) throws -> Entry {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("manifest.json").path)
        else {
            throw LayoutError("\(archive.path) is not a docker-archive: it has no manifest.json")
        }
        guard let entries = try? JSONDecoder().decode([Entry].self, from: data), let entry = entries.first else {
            throw LayoutError("\(archive.path): manifest.json is not a docker-archive manifest list")
        }
        if entries.count > 1 {
            throw LayoutError("\(archive.path) holds \(entries.count) images; Slipway reads archives of one image")
        }
        return entry
    }

    /// Writes the layer in `file` (`name` in the archive) into `layout` as it is when it is
    /// compressed, else gzip-compressed once its bytes are checked against `diffID`.
    private static func importLayer(
        _ file: URL, named name: String, diffID: Digest, archive: URL, into layout: OCILayout
    ) throws -> Descriptor {
        let probe = try FileSource(path: file.path)
        var prefix = [UInt8](repeating: 0, count: 8)
        let count = try prefix.withUnsafeMutableBytes { try probe.read(into: $0) }
        let compression = prefix.withUnsafeBytes { Compression.detect(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        switch compression {
        case .gzip:
            return try layout.writeBlob(from: FileSource(path: file.path), mediaType: .ociLayerGzip)
        case .zstd:
            return try layout.writeBlob(from: FileSource(path: file.path), mediaType: .ociLayerZstd)
        case .none:
            let uncompressed = HashingSource(try FileSource(path: file.path))
            let temporary = layout.root.appendingPathComponent("blobs/.incoming-\(UUID().uuidString)")
            defer { unlink(temporary.path) }
            let sink = HashingSink(try FileSink(path: temporary.path))
            let gzip = try GzipCompressor(sink)
            _ = try copy(from: uncompressed, to: gzip)
            try gzip.finish()
            guard uncompressed.digest == diffID else {
                throw LayoutError(
                    "\(archive.path): layer \(name) is \(uncompressed.digest), the config's diff_id says \(diffID)")
            }
            try layout.moveIntoPlace(temporary, digest: sink.digest)
            return Descriptor(mediaType: .ociLayerGzip, digest: sink.digest, size: sink.count)
        }
    }

    /// Writes the manifest for `platform` of `image` as a docker-archive.
    ///
    /// Layers are decompressed into `<diff_id hex>/layer.tar` (checked against the config's
    /// `diff_ids`), the config becomes `<hex>.json`, and `repoTags` (e.g. `team/app:latest`)
    /// go into `manifest.json` and `repositories`.
    public static func write(_ image: LayoutImage, platform: Platform? = nil, repoTags: [String], to archive: URL)
        throws
    {
        let layout = image.layout
        let (_, manifest) = try image.platformManifest(for: platform)
        let configBytes = try layout.blob(manifest.config)
        let configuration = try image.configuration(for: platform)
        guard configuration.rootfs.diffIDs.count == manifest.layers.count else {
            throw LayoutError(
                "the config lists \(configuration.rootfs.diffIDs.count) layers, the manifest \(manifest.layers.count)")
        }
        let configName = "\(manifest.config.digest.encoded).json"
        var layerNames: [String] = []
        let scratch = archive.deletingLastPathComponent().appendingPathComponent(".layer-\(UUID().uuidString)")
        defer { unlink(scratch.path) }
        try writeAtomically(archive) { writer in
            try writer.append(data: configBytes, as: configName)
            for (layer, diffID) in zip(manifest.layers, configuration.rootfs.diffIDs) {
                // The tar header needs the size first: decompress to a scratch file, checking the diff_id.
                let (plain, _) = try decompressing(try layout.openBlob(layer))
                let sink = HashingSink(try FileSink(path: scratch.path))
                _ = try copy(from: plain, to: sink)
                try sink.finish()
                guard sink.digest == diffID else {
                    throw LayoutError(
                        "layer \(layer.digest) uncompresses to \(sink.digest), the config's diff_id says \(diffID)")
                }
                let name = "\(diffID.encoded)/layer.tar"
                if !layerNames.contains(name) {
                    try writer.append(directory: "\(diffID.encoded)/")
                    try writer.append(file: scratch, as: name)
                }
                layerNames.append(name)
            }
            let entry = Entry(Config: configName, RepoTags: repoTags, Layers: layerNames)
            try writer.append(data: try CanonicalJSON.encode([entry]), as: "manifest.json")
            var repositories: [String: [String: String]] = [:]
            for repoTag in repoTags {
                guard let colon = repoTag.lastIndex(of: ":"), !repoTag[colon...].contains("/") else { continue }
                repositories[String(repoTag[..<colon]), default: [:]][String(repoTag[repoTag.index(after: colon)...])] =
                    configuration.rootfs.diffIDs.last?.encoded ?? ""
            }
            try writer.append(data: try CanonicalJSON.encode(repositories), as: "repositories")
        }
    }
}

/// Opens whatever holds an image: an OCI layout directory, an OCI archive, or a
/// docker-archive (gzip-compressed or not), as `out` must accept from build-task,
/// oci-build-task and others.
public enum ImageInput {
    /// - Parameters:
    ///   - path: a directory with `oci-layout`, or a tar file.
    ///   - scratch: an empty directory for extracting archives; removed by the caller.
    ///   - name: which image of a layout (`org.opencontainers.image.ref.name`); nil for the only one.
    public static func open(_ path: URL, scratch: URL, name: String? = nil) throws -> LayoutImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw LayoutError("\(path.path) does not exist")
        }
        if isDirectory.boolValue {
            return try OCILayout(opening: path).image(named: name)
        }
        let extracted = try ExtractedArchive.extract(path, into: scratch.appendingPathComponent("extracted"))
        // docker save since Docker 25 writes both an OCI layout and manifest.json: the layout is exact.
        if FileManager.default.fileExists(atPath: extracted.directory.appendingPathComponent("oci-layout").path) {
            let layout = try OCILayout(opening: extracted.directory)
            if let name { return try layout.image(named: name) }
            return try layout.image()
        }
        if FileManager.default.fileExists(atPath: extracted.directory.appendingPathComponent("manifest.json").path) {
            let layout = try OCILayout.create(at: scratch.appendingPathComponent("layout"))
            return try DockerArchive.importExtracted(extracted.directory, archive: path, into: layout)
        }
        throw LayoutError(
            "\(path.path) is neither an OCI archive (no oci-layout) nor a docker-archive (no manifest.json)")
    }
}

extension TarWriter {
    func append(file: URL, as name: String) throws {
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        try append(
            TarHeader(name: name, kind: .regular, mode: 0o644, size: size), body: try FileSource(path: file.path))
    }

    func append(data: Data, as name: String) throws {
        try append(TarHeader(name: name, kind: .regular, mode: 0o644, size: Int64(data.count)), body: DataSource(data))
    }

    func append(directory name: String) throws {
        try append(TarHeader(name: name, kind: .directory, mode: 0o755), body: nil)
    }
}

/// Writes a tar to a temporary file beside `archive` and renames it into place.
func writeAtomically(_ archive: URL, _ body: (TarWriter) throws -> Void) throws {
    let temporary = archive.deletingLastPathComponent().appendingPathComponent(
        ".\(archive.lastPathComponent).\(UUID().uuidString)")
    defer { unlink(temporary.path) }
    let writer = TarWriter(try FileSink(path: temporary.path))
    try body(writer)
    try writer.finish()
    guard rename(temporary.path, archive.path) == 0 else {
        throw LayoutError("cannot write \(archive.path): \(String(cString: strerror(errno)))")
    }
}
