/// An identifier backed by a string that is validated once, when parsed, and so can never
/// hold an invalid value. Codable as a plain JSON string, validated on decode, so a
/// malformed value in a manifest fails at the decode rather than later at a registry URL.
public protocol ValidatedString: Codable, Hashable, Sendable, CustomStringConvertible {
    associatedtype ValidationError: Error, CustomStringConvertible
    /// The value exactly as parsed.
    var rawValue: String { get }
    /// Parses and validates `rawValue`.
    init(_ rawValue: String) throws(ValidationError)
}

extension ValidatedString {
    /// The same as `rawValue`.
    public var description: String { rawValue }

    /// Decodes a JSON string and validates it.
    public init(from decoder: any Decoder) throws { try self.init(validatingFrom: decoder) }

    /// Encodes as a single JSON string.
    public func encode(to encoder: any Encoder) throws { try encodeRawValue(to: encoder) }

    /// The decoding behind `init(from:)`, for a type whose other conformances (such as
    /// `RawRepresentable`) would otherwise get Codable synthesised instead.
    public init(validatingFrom decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            try self.init(string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// The encoding behind `encode(to:)`.
    public func encodeRawValue(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
