/// An image manifest: one image for one platform, as a config blob and an ordered list of
/// layers. Reads both OCI image manifests and Docker schema 2 manifests, which share this
/// shape and differ only in media types.
///
/// See the [image spec, Image Manifest](https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md)
/// and the [Docker schema 2 specification](https://github.com/distribution/distribution/blob/v2.8.3/docs/spec/manifest-v2-2.md).
public struct ImageManifest: Codable, Hashable, Sendable {
    /// Always 2 for the formats this type reads; 1 was Docker's withdrawn schema.
    public var schemaVersion: Int
    /// The manifest's own media type; OCI allows it to be absent, Docker requires it.
    public var mediaType: MediaType?
    /// The type of artifact this manifest describes, when it is not a runnable image.
    public var artifactType: MediaType?
    /// The image configuration blob (or the empty descriptor, for an artifact).
    public var config: Descriptor
    /// The layers, base first, to be applied in order.
    public var layers: [Descriptor]
    /// The manifest this one refers to, such as the image a signature signs.
    public var subject: Descriptor?
    /// Arbitrary metadata, keyed by reverse-DNS names.
    public var annotations: [String: String]?

    /// Creates a schema 2 manifest.
    public init(
        mediaType: MediaType? = .ociManifest,
        config: Descriptor,
        layers: [Descriptor],
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}
