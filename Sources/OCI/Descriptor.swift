import Foundation

/// A typed, sized, content-addressed pointer to a blob or manifest: what a manifest lists
/// for its config and layers, and an index for its manifests.
///
/// The size is part of the address: a client reads at most `size` bytes and checks both size
/// and digest before trusting the content.
///
/// See the [image spec, Content Descriptors](https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md).
public struct Descriptor: Codable, Hashable, Sendable {
    /// The type of the referenced content.
    public var mediaType: MediaType
    /// The digest of the referenced content's exact bytes.
    public var digest: Digest
    /// The length of the referenced content in bytes; never negative.
    public var size: Int64
    /// Other places the content may be fetched from (foreign layers).
    public var urls: [String]?
    /// Arbitrary metadata, keyed by reverse-DNS names.
    public var annotations: [String: String]?
    /// The platform of the referenced manifest; set on index entries.
    public var platform: Platform?
    /// The type of artifact the referenced manifest describes, when it is not an image.
    public var artifactType: MediaType?
    /// The content itself, base64-encoded, for small blobs embedded in the descriptor.
    ///
    /// Kept as the string sent, so that re-encoding cannot change it; see ``embeddedData``.
    public var data: String?

    /// Creates a descriptor.
    public init(
        mediaType: MediaType,
        digest: Digest,
        size: Int64,
        annotations: [String: String]? = nil,
        platform: Platform? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }

    /// The descriptor of `bytes`: their SHA-256 digest and length.
    public init(mediaType: MediaType, content bytes: Data) {
        self.init(mediaType: mediaType, digest: .sha256(bytes), size: Int64(bytes.count))
    }

    /// The empty JSON object `{}`, used as the config of an artifact manifest that has none.
    ///
    /// See the [image spec, Guidance for an Empty Descriptor](https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidance-for-an-empty-descriptor).
    public static var empty: Descriptor {
        var descriptor = Descriptor(mediaType: .ociEmpty, content: Data("{}".utf8))
        descriptor.data = "e30="
        return descriptor
    }

    /// ``data`` decoded from base64, or `nil` when absent or not valid base64.
    ///
    /// Callers must still check it against ``digest`` and ``size`` before use.
    public var embeddedData: Data? {
        data.flatMap { Data(base64Encoded: $0) }
    }

    private enum CodingKeys: String, CodingKey {
        case mediaType, digest, size, urls, annotations, platform, artifactType, data
    }

    /// Decodes a descriptor, rejecting a negative size so that no later arithmetic on sizes
    /// (range requests, progress, buffer lengths) has to defend against one.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try container.decode(MediaType.self, forKey: .mediaType)
        digest = try container.decode(Digest.self, forKey: .digest)
        size = try container.decode(Int64.self, forKey: .size)
        guard size >= 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .size, in: container,
                debugDescription: "invalid descriptor size \(size) for \(digest): expected a byte count of 0 or more"
            )
        }
        urls = try container.decodeIfPresent([String].self, forKey: .urls)
        annotations = try container.decodeIfPresent([String: String].self, forKey: .annotations)
        platform = try container.decodeIfPresent(Platform.self, forKey: .platform)
        artifactType = try container.decodeIfPresent(MediaType.self, forKey: .artifactType)
        data = try container.decodeIfPresent(String.self, forKey: .data)
    }
}
