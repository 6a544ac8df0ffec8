import Errors
import Foundation

/// Whatever a registry returns from `GET /v2/<name>/manifests/<reference>`: an image
/// manifest or an index.
///
/// See the [distribution spec, Pulling manifests](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests).
public enum Manifest: Hashable, Sendable {
    /// An OCI image manifest or Docker schema 2 manifest.
    case image(ImageManifest)
    /// An OCI image index or Docker manifest list.
    case index(ImageIndex)

    /// Why manifest bytes could not be read.
    public struct DecodeError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Manifest.DecodeError>
        public var kind: Kind { .undecodable }

        /// What was wrong, in one line.
        public var reason: String

        /// Creates an error with a one-line reason.
        public init(reason: String) {
            self.reason = reason
        }

        /// One line saying what was wrong and, where there is one, what to do.
        public var message: String { reason }

        static func schema1(_ mediaType: String?) -> DecodeError {
            let named = mediaType.map { " (\($0))" } ?? ""
            return DecodeError(
                reason:
                    "unsupported Docker schema 1 manifest\(named): schema 1 is deprecated and not supported; push the image again with a current Docker, buildah or crane to store a schema 2 or OCI manifest"
            )
        }
    }

    /// Decodes manifest bytes.
    ///
    /// The kind is taken from, in order: `mediaType` (the `Content-Type` the registry sent)
    /// when it names a manifest or index type; the body's own `mediaType` field; the body's
    /// shape (`manifests` means an index, `config` and `layers` an image). A generic
    /// `Content-Type` such as `application/json` or `application/octet-stream` is ignored,
    /// as some registries send one for every manifest.
    ///
    /// - Throws: ``Manifest/DecodeError`` for malformed JSON, schema 1 manifests, unknown
    ///   media types, a `Content-Type` that contradicts the body, a schema version other
    ///   than 2, or an invalid field (such as a bad digest).
    public static func decode(_ data: Data, mediaType: MediaType?) throws(DecodeError) -> Manifest {
        let probe = try decodeJSON(Probe.self, from: data, what: "manifest")

        if mediaType?.isSchema1Manifest == true || probe.mediaType?.isSchema1Manifest == true
            || probe.schemaVersion == 1 || probe.hasSchema1Fields
        {
            throw DecodeError.schema1(mediaType?.rawValue ?? probe.mediaType?.rawValue)
        }

        let declared: Kind? = if let mediaType { try kind(ofHeader: mediaType) } else { nil }
        var inBody: Kind?
        if let type = probe.mediaType {
            guard let kind = Kind(type) else {
                throw DecodeError(
                    reason:
                        "unsupported manifest media type \(quoted(type.rawValue)) in the manifest body: expected one of \(MediaType.manifestTypes.map(\.rawValue).joined(separator: ", "))"
                )
            }
            inBody = kind
        }
        if let declared, let inBody, declared != inBody {
            throw DecodeError(
                reason:
                    "manifest Content-Type \(quoted(mediaType?.rawValue ?? "")) says \(declared) but the body's mediaType \(quoted(probe.mediaType?.rawValue ?? "")) says \(inBody)"
            )
        }
        guard let kind = declared ?? inBody ?? probe.shape else {
            throw DecodeError(
                reason:
                    "cannot tell the manifest's type: no known Content-Type, no mediaType field, and neither a manifests list nor config and layers"
            )
        }
        guard probe.schemaVersion == 2 else {
            let found = probe.schemaVersion.map(String.init) ?? "none"
            throw DecodeError(reason: "unsupported manifest schemaVersion \(found): expected 2")
        }

        switch kind {
        case .image: return .image(try decodeJSON(ImageManifest.self, from: data, what: "image manifest"))
        case .index: return .index(try decodeJSON(ImageIndex.self, from: data, what: "index"))
        }
    }

    /// Decodes `type`, turning Foundation's multi-line errors into one line that says where
    /// in the document the problem is.
    private static func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws(DecodeError) -> T
    {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as Swift.DecodingError {
            let context: Swift.DecodingError.Context
            switch error {
            case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
                context = c
            @unknown default:
                throw DecodeError(reason: "invalid \(what): \(error)")
            }
            var reason = context.debugDescription
            if case .keyNotFound(let key, _) = error {
                reason = "missing required field \(quoted(key.stringValue))"
            }
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            let location = path.isEmpty ? "" : " at \(path)"
            throw DecodeError(reason: "invalid \(what)\(location): \(reason)")
        } catch {
            throw DecodeError(reason: "invalid \(what): \(error)")
        }
    }

    /// The effective media type: the body's `mediaType` field, else the OCI type of this
    /// kind, which is what a manifest without the field is.
    public var mediaType: MediaType {
        switch self {
        case .image(let manifest): manifest.mediaType ?? .ociManifest
        case .index(let index): index.mediaType ?? .ociIndex
        }
    }

    /// The image manifest, or `nil` for an index.
    public var image: ImageManifest? {
        if case .image(let manifest) = self { manifest } else { nil }
    }

    /// The index, or `nil` for an image manifest.
    public var index: ImageIndex? {
        if case .index(let index) = self { index } else { nil }
    }

    /// The manifest this one refers to, if any.
    public var subject: Descriptor? {
        switch self {
        case .image(let manifest): manifest.subject
        case .index(let index): index.subject
        }
    }

    /// The manifest's annotations, if any.
    public var annotations: [String: String]? {
        switch self {
        case .image(let manifest): manifest.annotations
        case .index(let index): index.annotations
        }
    }

    private enum Kind: CustomStringConvertible {
        case image, index

        init?(_ type: MediaType) {
            if type.isImageManifest { self = .image } else if type.isIndex { self = .index } else { return nil }
        }

        var description: String {
            switch self {
            case .image: "image manifest"
            case .index: "index"
            }
        }
    }

    /// Content-Types that say nothing about the manifest format.
    private static let genericTypes: Set<String> = ["application/json", "application/octet-stream", "text/plain"]

    private static func kind(ofHeader type: MediaType) throws(DecodeError) -> Kind? {
        if let kind = Kind(type) { return kind }
        if genericTypes.contains(type.essence) { return nil }
        throw DecodeError(
            reason:
                "unsupported manifest media type \(quoted(type.rawValue)): expected one of \(MediaType.manifestTypes.map(\.rawValue).joined(separator: ", "))"
        )
    }

    /// Just enough of a manifest to choose how to decode the rest.
    private struct Probe: Decodable {
        var schemaVersion: Int?
        var mediaType: MediaType?
        var shape: Kind?
        var hasSchema1Fields: Bool

        private enum CodingKeys: String, CodingKey {
            case schemaVersion, mediaType, manifests, config, layers, fsLayers, signatures
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            schemaVersion = try? container.decodeIfPresent(Int.self, forKey: .schemaVersion)
            mediaType = try container.decodeIfPresent(MediaType.self, forKey: .mediaType)
            if container.contains(.manifests) {
                shape = .index
            } else if container.contains(.config), container.contains(.layers) {
                shape = .image
            }
            hasSchema1Fields = container.contains(.fsLayers)
        }
    }
}

extension Manifest: Encodable {
    /// Encodes the underlying manifest or index.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .image(let manifest): try manifest.encode(to: encoder)
        case .index(let index): try index.encode(to: encoder)
        }
    }
}

extension ErrorKind where Owner == Manifest.DecodeError {
    /// The bytes are not a manifest or index Slipway reads.
    public static var undecodable: Self { Self("undecodable") }
}
