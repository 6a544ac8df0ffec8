/// An image index: a list of manifests, usually one image per platform. Reads both OCI image
/// indexes and Docker manifest lists, which share this shape.
///
/// See the [image spec, Image Index](https://github.com/opencontainers/image-spec/blob/v1.1.0/image-index.md)
/// and the [Docker manifest list](https://github.com/distribution/distribution/blob/v2.8.3/docs/spec/manifest-v2-2.md#manifest-list).
public struct ImageIndex: Codable, Hashable, Sendable {
    /// Always 2 for the formats this type reads.
    public var schemaVersion: Int
    /// The index's own media type; OCI allows it to be absent, Docker requires it.
    public var mediaType: MediaType?
    /// The type of artifact this index describes, when it is not a set of images.
    public var artifactType: MediaType?
    /// The manifests listed, each usually with a ``Descriptor/platform``.
    public var manifests: [Descriptor]
    /// The manifest this one refers to.
    public var subject: Descriptor?
    /// Arbitrary metadata, keyed by reverse-DNS names.
    public var annotations: [String: String]?

    /// Creates a schema 2 index.
    public init(
        mediaType: MediaType? = .ociIndex,
        manifests: [Descriptor],
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }

    /// The first listed image manifest whose platform matches `platform`, in index order.
    ///
    /// Entries without a platform, and entries that are not image manifests (nested indexes,
    /// attestations with platform `unknown/unknown`), are skipped.
    public func manifest(for platform: Platform) -> Descriptor? {
        manifests.first { entry in
            entry.mediaType.isImageManifest && (entry.platform?.matches(platform) ?? false)
        }
    }
}
