import Console
import Foundation
import ImageLayout
import OCI
import RootFS
import Registry
import Transfer

/// `in DIR`: fetches the version's image into DIR (DESIGN §4).
///
/// Files: `repository`, `tag`, `digest`, `tags` (every tag now pointing at the digest,
/// space separated), and per `format`: `rootfs/` with `metadata.json` and `labels.json`;
/// `image.tar` (a docker-archive of one platform); or `oci/` (an OCI layout of every
/// platform, whose `index.json` of a multi-platform image hashes to the digest).
public struct In {
    public enum Format: String, Sendable, CaseIterable { case rootfs, oci, ociLayout = "oci-layout" }
    public enum Fetch: String, Sendable, CaseIterable { case auto, required, skip }

    let log: Log
    let retry: RetryPolicy

    public init(log: Log, retry: RetryPolicy = .standard) {
        self.log = log
        self.retry = retry
    }

    static let paramKeys = ["image", "format", "skip_download", "platform", "source"]

    public func run(input: Data, directory: URL) throws -> Data {
        let request = try InputObject(JSONValue.parse(input), path: "input", keys: ["source", "version", "params"])
        let source = try Source(request.raw("source"))
        let log = source.debug ? Log.standardError(verbose: true) : self.log
        let params = try InputObject(request.raw("params"), path: "params", keys: Self.paramKeys)
        if case .sourceKeyed = source.mode {
            throw InputError("source.git: source-keyed mode is not available in this build yet (see the README's Status)")
        }
        return try fetchImageMode(request: request, source: source, params: params, directory: directory, log: log)
    }

    func fetchImageMode(request: InputObject, source: Source, params: InputObject, directory: URL, log: Log) throws -> Data {
        guard let version = try ImageVersion.parse(request.raw("version")) else {
            throw InputError("version.digest is required: in fetches the version check emitted")
        }
        var fetch = try Self.enumeration(params, "image", Fetch.self) ?? .auto
        if try params.bool("skip_download") == true { fetch = .skip }
        if params.has("source") { throw params.invalid("source", "only used in source-keyed mode (source.git)") }
        let format = try Self.enumeration(params, "format", Format.self) ?? .rootfs
        var platform = source.platform
        if let override = try params.object("platform", keys: ["os", "architecture", "variant"]) {
            platform = Platform(os: try override.requiredString("os"), architecture: try override.requiredString("architecture"),
                                variant: try override.string("variant"))
        }

        try write(source.registry.isDockerHub ? "docker.io/\(source.repository)" : "\(source.registry)/\(source.repository)",
                  to: directory, "repository")
        try write(version.tag, to: directory, "tag")
        var metadata: [[String: String]] = [["name": "repository", "value": "\(source.registry)/\(source.repository)"]]
        if !version.tag.isEmpty { metadata.append(["name": "tag", "value": version.tag]) }

        if fetch != .skip {
            let client = try source.client(log: log, retry: retry)
            guard try client.manifestDescriptor(source.repository, .digest(version.digest)) != nil else {
                if fetch == .required {
                    throw InputError("\(source.registry)/\(source.repository)@\(version.digest) does not exist (params.image: required)")
                }
                log.info("\(source.repository)@\(version.digest) is not in the registry; nothing fetched (params.image: auto)")
                return try CanonicalJSON.encode(Output(version: version, metadata: metadata))
            }
            try write(version.digest.rawValue, to: directory, "digest")
            metadata.append(["name": "digest", "value": version.digest.rawValue])
            let sameDigest = try tagsPointing(at: version.digest, client: client, repository: source.repository)
            try write(sameDigest.joined(separator: " "), to: directory, "tags")
            if !sameDigest.isEmpty { metadata.append(["name": "tags", "value": sameDigest.joined(separator: " ")]) }

            let scratch = directory.appendingPathComponent(".slipway-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let transfer = ImageTransfer(log: log)
            switch format {
            case .ociLayout:
                let layout = try OCILayout.create(at: directory.appendingPathComponent("oci"))
                _ = try transfer.pull(source.repository, version.digest, with: client, into: layout, platforms: .all,
                                      name: version.tag.isEmpty ? nil : version.tag)
            case .oci:
                let layout = try OCILayout.create(at: scratch)
                let image = try transfer.pull(source.repository, version.digest, with: client, into: layout, platforms: .one(platform))
                let repoTag = "\(source.repository):\(version.tag.isEmpty ? "latest" : version.tag)"
                try DockerArchive.write(image, platform: platform, repoTags: [repoTag], to: directory.appendingPathComponent("image.tar"))
            case .rootfs:
                let layout = try OCILayout.create(at: scratch)
                let image = try transfer.pull(source.repository, version.digest, with: client, into: layout, platforms: .one(platform))
                try Self.unpack(image, platform: platform, into: directory, log: log)
            }
        }
        return try CanonicalJSON.encode(Output(version: version, metadata: metadata))
    }

    /// Applies the layers of `image`'s manifest for `platform` into `directory/rootfs`, each
    /// checked against its diff_id, then writes `metadata.json` and `labels.json` beside it.
    static func unpack(_ image: LayoutImage, platform: Platform?, into directory: URL, log: Log) throws {
        let manifest = try image.platformManifest(for: platform).manifest
        let configuration = try image.configuration(for: platform)
        let diffIDs = configuration.rootfs.diffIDs
        guard diffIDs.count == manifest.layers.count else {
            throw LayoutError("the image's config lists \(diffIDs.count) layers and its manifest \(manifest.layers.count)")
        }
        let unpacker = Unpacker(root: directory.appendingPathComponent("rootfs"), options: .init(log: log))
        for (layer, diffID) in zip(manifest.layers, diffIDs) {
            try unpacker.apply(layer: image.layout.openBlob(layer), expectedDiffID: diffID)
        }
        try ImageMetadata.write(config: configuration, to: directory)
    }

    struct Output: Encodable {
        var version: ImageVersion
        var metadata: [[String: String]]
    }

    /// Every tag of the repository that now points at `digest`, sorted.
    func tagsPointing(at digest: Digest, client: RegistryClient, repository: Repository) throws -> [String] {
        try client.tags(repository).filter { tag in
            try client.manifestDescriptor(repository, .tag(tag))?.digest == digest
        }.map(\.rawValue).sorted()
    }

    static func enumeration<E: RawRepresentable & CaseIterable>(_ params: InputObject, _ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let text = try params.string(key) else { return nil }
        guard let value = E(rawValue: text) else {
            throw params.invalid(key, "\"\(InputObject.printable(text))\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func write(_ text: String, to directory: URL, _ name: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: directory.appendingPathComponent(name))
    }
}
