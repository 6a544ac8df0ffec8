import Foundation

/// The one JSON encoding Slipway writes: keys sorted, slashes left unescaped.
///
/// A manifest's digest is the hash of its exact bytes, so every manifest, index and config
/// that Slipway pushes must come from the same encoder, or the same value would get two
/// digests. Sorted keys make the output independent of dictionary order; unescaped slashes
/// keep media types such as `application/vnd.oci.image.manifest.v1+json` readable and match
/// what other OCI tools emit. No whitespace is added.
///
/// Never re-encode a manifest fetched from a registry to find its digest: decoding drops
/// fields this module does not model. Hash the bytes as received.
///
/// See the [image spec, Canonicalization](https://github.com/opencontainers/image-spec/blob/v1.1.0/considerations.md#canonicalization).
public enum CanonicalJSON {
    /// Encodes `value` as canonical JSON bytes.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        // A fresh encoder per call: JSONEncoder is a mutable class and cannot be shared
        // across tasks safely.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// Decodes `type` from JSON bytes with the default decoding rules, the counterpart of
    /// ``encode(_:)``.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }
}
