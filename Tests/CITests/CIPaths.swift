import Foundation

/// The repository's root and its `ci/` directory, found from this file's location.
enum CIPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let ci = root.appendingPathComponent("ci")
}
