import Errors
import Foundation

/// A media type such as `application/vnd.oci.image.manifest.v1+json`, which tells a client
/// how to read a blob or manifest.
///
/// The raw value is kept exactly as written, parameters included, because a media type is
/// echoed back to registries and into manifests, where a rewritten string would change a
/// digest. Comparisons of meaning (``isIndex``, ``isImageManifest``) use ``essence``.
///
/// See [RFC 6838 §4.2](https://www.rfc-editor.org/rfc/rfc6838#section-4.2) and the
/// [image spec, Media Types](https://github.com/opencontainers/image-spec/blob/v1.1.0/media-types.md).
public struct MediaType: ValidatedString, RawRepresentable {
    /// Why a string is not a media type.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<MediaType.ValidationError>
        public var kind: Kind { .invalidMediaType }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted form.
        public var message: String {
            "invalid media type \(quoted(value)): expected type/subtype[+suffix][;name=value…], each name at most 127 of A-Z a-z 0-9 !#$&-^_.+ starting with a letter or digit"
        }
    }

    /// The media type exactly as written, including any parameters.
    public let rawValue: String

    /// Parses a media type, checking the `type/subtype` part against RFC 6838 and that any
    /// parameters have the shape `name=value`.
    ///
    /// - Throws: ``MediaType/ValidationError`` naming `rawValue`.
    public init(_ rawValue: String) throws(ValidationError) {
        var parts = rawValue.split(separator: ";", omittingEmptySubsequences: false)
        var essence = parts.removeFirst()
        if !parts.isEmpty {
            // RFC 9110 allows whitespace before the semicolon in a Content-Type header.
            while essence.last == " " || essence.last == "\t" { essence.removeLast() }
        }
        let halves = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, halves.allSatisfy(isRestrictedName) else {
            throw ValidationError(value: rawValue)
        }
        for parameter in parts {
            // ...and after it.
            let trimmed = parameter.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "="),
                isRestrictedName(trimmed[..<equals]),
                trimmed.index(after: equals) != trimmed.endIndex
            else { throw ValidationError(value: rawValue) }
        }
        self.rawValue = rawValue
    }

    /// Parses like ``init(_:)`` but returns `nil` instead of throwing, as `RawRepresentable`
    /// requires.
    public init?(rawValue: String) {
        guard let parsed = try? MediaType(rawValue) else { return nil }
        self = parsed
    }

    /// For the constants below, which are spelled correctly by construction.
    private init(known rawValue: String) {
        self.rawValue = rawValue
    }

    /// `type/subtype` in lowercase, without parameters: the part that identifies the format.
    ///
    /// Type and subtype are case-insensitive (RFC 6838 §4.2), and registries may add
    /// parameters such as `charset` to a Content-Type header.
    public var essence: String {
        let end = rawValue.firstIndex(of: ";") ?? rawValue.endIndex
        return rawValue[..<end].trimmingCharacters(in: .whitespaces).lowercased()
    }

}

extension MediaType {
    // Spelled out: with RawRepresentable, Codable would otherwise be synthesised as {"rawValue": …}.
    public init(from decoder: any Decoder) throws { try self.init(validatingFrom: decoder) }
    public func encode(to encoder: any Encoder) throws { try encodeRawValue(to: encoder) }

    /// An OCI image manifest.
    public static let ociManifest = MediaType(known: "application/vnd.oci.image.manifest.v1+json")
    /// An OCI image index, which lists manifests, usually one per platform.
    public static let ociIndex = MediaType(known: "application/vnd.oci.image.index.v1+json")
    /// An OCI image configuration.
    public static let ociConfig = MediaType(known: "application/vnd.oci.image.config.v1+json")
    /// An uncompressed OCI layer tar.
    public static let ociLayer = MediaType(known: "application/vnd.oci.image.layer.v1.tar")
    /// A gzip-compressed OCI layer tar.
    public static let ociLayerGzip = MediaType(known: "application/vnd.oci.image.layer.v1.tar+gzip")
    /// A zstd-compressed OCI layer tar.
    public static let ociLayerZstd = MediaType(known: "application/vnd.oci.image.layer.v1.tar+zstd")
    /// The empty descriptor's type: the two bytes `{}`, used as the config of an artifact.
    ///
    /// See the [image spec, Guidance for an Empty Descriptor](https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidance-for-an-empty-descriptor).
    public static let ociEmpty = MediaType(known: "application/vnd.oci.empty.v1+json")

    /// A Docker image manifest, schema 2.
    ///
    /// See the [Docker schema 2 specification](https://github.com/distribution/distribution/blob/v2.8.3/docs/spec/manifest-v2-2.md).
    public static let dockerManifest = MediaType(known: "application/vnd.docker.distribution.manifest.v2+json")
    /// A Docker manifest list, Docker's multi-platform counterpart of an OCI index.
    public static let dockerManifestList = MediaType(known: "application/vnd.docker.distribution.manifest.list.v2+json")
    /// A Docker image configuration.
    public static let dockerConfig = MediaType(known: "application/vnd.docker.container.image.v1+json")
    /// A gzip-compressed Docker layer tar.
    public static let dockerLayerGzip = MediaType(known: "application/vnd.docker.image.rootfs.diff.tar.gzip")
    /// A Docker layer that registries must not store (Windows base layers); fetched from its `urls`.
    public static let dockerForeignLayerGzip = MediaType(
        known: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")

    /// A Docker schema 1 manifest, unsigned. Deprecated and unsupported; named only so it can
    /// be recognised and refused with a clear message.
    ///
    /// See [distribution's deprecation notice](https://distribution.github.io/distribution/spec/deprecated-schema-v1/).
    public static let dockerManifestSchema1 = MediaType(known: "application/vnd.docker.distribution.manifest.v1+json")
    /// A signed Docker schema 1 manifest. Deprecated and unsupported, as ``dockerManifestSchema1``.
    public static let dockerManifestSchema1Signed = MediaType(
        known: "application/vnd.docker.distribution.manifest.v1+prettyjws")

    /// The four manifest and index types Slipway reads, OCI first: the value of the `Accept`
    /// header on manifest requests, since a registry may only serve a type the client lists.
    ///
    /// See the [distribution spec, Pulling manifests](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests).
    public static let manifestTypes: [MediaType] = [.ociManifest, .ociIndex, .dockerManifest, .dockerManifestList]

    /// Whether this is an OCI image index or a Docker manifest list.
    public var isIndex: Bool {
        let essence = essence
        return essence == MediaType.ociIndex.rawValue || essence == MediaType.dockerManifestList.rawValue
    }

    /// Whether this is an OCI image manifest or a Docker schema 2 manifest.
    public var isImageManifest: Bool {
        let essence = essence
        return essence == MediaType.ociManifest.rawValue || essence == MediaType.dockerManifest.rawValue
    }

    /// Whether this is a Docker schema 1 manifest, signed or not.
    public var isSchema1Manifest: Bool {
        let essence = essence
        return essence == MediaType.dockerManifestSchema1.rawValue
            || essence == MediaType.dockerManifestSchema1Signed.rawValue
    }
}

/// RFC 6838 `restricted-name`: a letter or digit, then up to 126 of the allowed characters.
private func isRestrictedName(_ name: Substring) -> Bool {
    let bytes = Array(name.utf8)
    guard let first = bytes.first, bytes.count <= 127, isAlphanumeric(first) else { return false }
    return bytes.dropFirst().allSatisfy { isAlphanumeric($0) || "!#$&-^_.+".utf8.contains($0) }
}

extension ErrorKind where Owner == MediaType.ValidationError {
    /// The text is not a media type.
    public static var invalidMediaType: Self { Self("invalid media type") }
}
