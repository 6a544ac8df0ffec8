import Crypto
import Foundation

/// The hex SHA-1 of a file, read in 1 MiB chunks: SPDX 2.3 requires it of every file listed.
/// (In a file of its own: Crypto's `Digest` would shadow OCI's elsewhere.)
func sha1Hex(of file: URL) throws -> String? {
    guard let handle = FileHandle(forReadingAtPath: file.path) else { return nil }
    defer { try? handle.close() }
    var hasher = Insecure.SHA1()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
