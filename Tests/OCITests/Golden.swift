import Foundation
import Testing

@testable import OCI

/// The golden JSON files under `Golden/`, bundled with the tests.
enum Golden {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "golden file \(name).json is missing from the test bundle" }
    }

    static func data(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Golden") else {
            throw Missing(name: name)
        }
        return try Data(contentsOf: url)
    }

    /// Parses JSON into Foundation objects so that two documents compare by meaning:
    /// key order and whitespace do not matter, values and nesting do.
    static func object(_ data: Data) throws -> NSObject {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSObject)
    }

    /// Decodes the golden file as `type`, re-encodes with ``CanonicalJSON`` and checks that
    /// nothing was lost, added or changed.
    @discardableResult
    static func roundTrip<T: Codable & Equatable>(
        _ type: T.Type, _ name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> T {
        let original = try data(name)
        let value = try JSONDecoder().decode(type, from: original)
        let encoded = try CanonicalJSON.encode(value)
        #expect(
            try object(encoded) == object(original),
            "\(name).json changed in a round trip:\n\(String(decoding: encoded, as: UTF8.self))",
            sourceLocation: sourceLocation)
        // Decoding the canonical bytes gives the same value again.
        #expect(try JSONDecoder().decode(type, from: encoded) == value, sourceLocation: sourceLocation)
        return value
    }
}

/// Made-up digests that look real.
enum Fixtures {
    static let hexA = String(repeating: "a1b2c3d4", count: 8)
    static let hexB = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    static let digestA = "sha256:" + hexA
    static let digestB = "sha256:" + hexB
}
