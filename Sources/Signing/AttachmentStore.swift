import Foundation
import OCI
import Registry

/// What cosign attaches to images, read and written in one repository of a registry.
///
/// Each attachment manifest (`sha256-<hex>.sig`, `.att`) is an OCI image manifest whose
/// layers are small JSON blobs; adding one appends a layer, so signatures by other keys and
/// earlier attestations stay. Blobs are small by construction and read whole, up to
/// ``blobLimit``.
///
/// Where the registry has the OCI 1.1 referrers API, each change is also pushed as a
/// referrer of the image: a manifest with the same layers, `subject` = the image,
/// `artifactType` = ``CosignVocabulary/artifactType(of:)`` and the empty config, as cosign's
/// `--registry-referrers-mode=oci-1-1` writes it. Reading takes the layers of both places.
public struct AttachmentStore: Sendable {
    public let client: RegistryClient
    public let repository: Repository

    /// An attachment blob larger than this is refused (cosign's payloads are a few hundred bytes).
    static let blobLimit: Int64 = 4 << 20

    public init(client: RegistryClient, repository: Repository) {
        self.client = client
        self.repository = repository
    }

    /// One layer of an attachment manifest with its content.
    public struct Layer: Sendable {
        public var descriptor: Descriptor
        public var content: Data
    }

    /// The layers of `kind` attached to `digest`, each checked against its descriptor;
    /// empty when nothing is attached.
    public func layers(_ kind: CosignVocabulary.Attachment, of digest: Digest) throws -> [Layer] {
        try layers(kind, of: digest, referrers: referrerManifests(kind, of: digest))
    }

    /// The layers of the tag's manifest and of `referrers`, each once, in that order.
    func layers(_ kind: CosignVocabulary.Attachment, of digest: Digest, referrers: [ImageManifest]?) throws -> [Layer] {
        var descriptors: [Descriptor] = []
        for manifest in [try manifest(kind, of: digest)].compactMap({ $0 }) + (referrers ?? []) {
            for descriptor in manifest.layers where !descriptors.contains(descriptor) { descriptors.append(descriptor) }
        }
        return try descriptors.map { descriptor in Layer(descriptor: descriptor, content: try blob(descriptor)) }
    }

    /// The referrers of `digest` with `kind`'s artifact type as the registry lists them, or
    /// nil when it has no referrers API.
    public func referrers(_ kind: CosignVocabulary.Attachment, of digest: Digest) throws -> [Descriptor]? {
        try client.referrers(repository, of: digest, artifactType: CosignVocabulary.artifactType(of: kind))
    }

    /// The referrer manifests of `kind` of `digest` (only image manifests whose `subject` is
    /// `digest` and whose `artifactType` is `kind`'s), or nil when the registry has no referrers API.
    func referrerManifests(_ kind: CosignVocabulary.Attachment, of digest: Digest) throws -> [ImageManifest]? {
        guard let listed = try referrers(kind, of: digest) else { return nil }
        return try listed.compactMap { descriptor -> ImageManifest? in
            guard descriptor.mediaType == .ociManifest else { return nil }
            let fetched: ManifestResponse
            do { fetched = try client.manifest(repository, .digest(descriptor.digest)) } catch let error
                as RegistryError where error.kind == .notFound
            {
                return nil  // deleted since the listing
            }
            guard case .image(let manifest) = try fetched.decode(), manifest.subject?.digest == digest,
                manifest.artifactType == CosignVocabulary.artifactType(of: kind)
            else { return nil }
            return manifest
        }
    }

    /// Every manifest that refers to `digest` (of any artifact type), or none when the
    /// registry has no referrers API: what goes when the image is deleted.
    public func allReferrers(of digest: Digest) throws -> [Digest] {
        try client.referrers(repository, of: digest)?.map(\.digest) ?? []
    }

    /// Appends `layer` to the `kind` manifest of `digest` unless an existing layer is the same
    /// descriptor or `isDuplicate` says it stands for it. Returns whether it was added.
    @discardableResult
    public func append(
        _ layer: Layer, _ kind: CosignVocabulary.Attachment, of digest: Digest,
        isDuplicate: (_ existing: Layer, _ new: Layer) -> Bool = { _, _ in false }
    ) throws -> Bool {
        try append([layer], kind, of: digest, isDuplicate: isDuplicate) > 0
    }

    /// Appends each of `layers` not already there (see ``append(_:_:of:isDuplicate:)``); returns how many were added.
    @discardableResult
    public func append(
        _ layers: [Layer], _ kind: CosignVocabulary.Attachment, of digest: Digest,
        isDuplicate: (_ existing: Layer, _ new: Layer) -> Bool = { _, _ in false }
    ) throws -> Int {
        guard let tag = CosignVocabulary.tag(of: kind, for: digest) else {
            throw SigningError("\(digest) is not a SHA-256 digest; cosign's tags name only those")
        }
        let referrers = try referrerManifests(kind, of: digest)
        let existing = try self.layers(kind, of: digest, referrers: referrers)
        var descriptors = existing.map(\.descriptor)
        var added = 0
        for layer in layers {
            let same = existing.contains { $0.descriptor == layer.descriptor || isDuplicate($0, layer) }
            if same { continue }
            try client.uploadBlob(repository, data: layer.content, mediaType: layer.descriptor.mediaType)
            descriptors.append(layer.descriptor)
            added += 1
        }
        guard added > 0 else { return 0 }
        let config = try CanonicalJSON.encode(AttachmentConfig(layers: descriptors))
        let configDescriptor = try client.uploadBlob(repository, data: config, mediaType: .ociConfig)
        let manifest = ImageManifest(mediaType: .ociManifest, config: configDescriptor, layers: descriptors)
        try client.putManifest(
            repository, .tag(tag), bytes: try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
        if referrers != nil { try pushReferrer(kind, of: digest, layers: descriptors) }
        return added
    }

    /// Pushes, by digest, the referrer manifest of `kind` of `digest` holding `layers` (all of
    /// them so far: earlier referrers stay and are read together with it).
    ///
    /// Called only where the referrers API answered, so the registry indexes the subject.
    /// The spec's fallback for registries without it (an index under the tag `sha256-<hex>`)
    /// is not written: cosign's own tag above is the fallback every cosign client reads.
    func pushReferrer(_ kind: CosignVocabulary.Attachment, of digest: Digest, layers: [Descriptor]) throws {
        guard let image = try client.manifestDescriptor(repository, .digest(digest)) else {
            throw SigningError(
                "\(repository)@\(digest) is not in the registry; a signature must refer to a pushed image")
        }
        let config = Descriptor.empty
        try client.uploadBlob(repository, data: Data("{}".utf8), mediaType: config.mediaType)
        var manifest = ImageManifest(mediaType: .ociManifest, config: config, layers: layers)
        manifest.artifactType = CosignVocabulary.artifactType(of: kind)
        manifest.subject = Descriptor(mediaType: image.mediaType, digest: image.digest, size: image.size)
        _ = try client.putReferrer(repository, bytes: try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
    }

    /// The `kind` manifest of `digest`, or nil when there is none.
    func manifest(_ kind: CosignVocabulary.Attachment, of digest: Digest) throws -> ImageManifest? {
        guard let tag = CosignVocabulary.tag(of: kind, for: digest),
            try client.manifestDescriptor(repository, .tag(tag)) != nil
        else { return nil }
        guard case .image(let manifest) = try client.manifest(repository, .tag(tag)).decode() else {
            throw SigningError("\(repository):\(tag) is an index, not cosign's \(kind) manifest")
        }
        return manifest
    }

    /// The digest of the `kind` manifest of `digest`, or nil.
    public func manifestDigest(_ kind: CosignVocabulary.Attachment, of digest: Digest) throws -> Digest? {
        guard let tag = CosignVocabulary.tag(of: kind, for: digest) else { return nil }
        return try client.manifestDescriptor(repository, .tag(tag))?.digest
    }

    func blob(_ descriptor: Descriptor) throws -> Data {
        guard descriptor.size <= Self.blobLimit else {
            throw SigningError(
                "attachment layer \(descriptor.digest) is \(descriptor.size) bytes; more than \(Self.blobLimit) is not read"
            )
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "slipway-attachment-\(UUID().uuidString.prefix(8))")
        defer { unlink(file.path) }
        try client.downloadBlob(repository, descriptor, to: file)
        return try Data(contentsOf: file)
    }
}

/// cosign's config for an attachment manifest: an empty image whose layers are the payloads.
struct AttachmentConfig: Encodable {
    struct RootFS: Encodable {
        var type = "layers"
        var diff_ids: [String]
    }
    struct History: Encodable { var created = "0001-01-01T00:00:00Z" }
    struct Empty: Encodable {}

    var architecture = ""
    var os = ""
    var created = "0001-01-01T00:00:00Z"
    var config = Empty()
    var history = [History()]
    var rootfs: RootFS

    init(layers: [Descriptor]) { rootfs = RootFS(diff_ids: layers.map(\.digest.rawValue)) }
}
