import Foundation
import OCI

/// One digest that summarises the base images of a build (`track_base`): the
/// SHA-256 of `base <reference> <digest>` lines, sorted, one per external `FROM` image as
/// written after `ARG` substitution, with the digest its registry gave for that reference
/// (the index digest of a multi-platform base). `check`, `in`, build-task and `out` all
/// compute it this way, so the version check emits is the version `out` returns.
public enum BaseSummary {
    public static func digest(_ bases: [String: Digest]) -> Digest {
        let lines = bases.sorted { $0.key < $1.key }.map { "base \($0.key) \($0.value)\n" }
        return Digest.sha256(Data(("slipway-bases 1\n" + lines.joined()).utf8))
    }

    /// `base_digests.json`, as `in` writes it and build-task's `BASE_DIGESTS_FILE` reads it.
    public static func encode(_ bases: [String: Digest]) throws -> Data {
        try CanonicalJSON.encode(bases.mapValues(\.rawValue))
    }

    public static func decode(_ data: Data) throws -> [String: Digest] {
        let raw = try JSONDecoder().decode([String: String].self, from: data)
        return try raw.mapValues { try Digest($0) }
    }
}
