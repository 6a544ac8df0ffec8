import Console
import Foundation
import OCI
import Registry
import Signing

/// `source.verify` on get: only images signed by one of the keys are versions, and `in`
/// fetches nothing else; `params.attestations` writes the image's attestations.
extension Source {
    /// The signatures of this source's repository, read with `client` (the origin, or a
    /// mirror): payloads must name the origin's `registry/repository`.
    func signatures(_ client: RegistryClient) -> ImageSignatures {
        ImageSignatures(client: client, registry: registry, repository: repository)
    }

    /// `versions` without those whose image has no valid signature (each dropped one logged).
    /// All of them when `verify` is not set.
    func verified(_ versions: [ImageVersion], client: RegistryClient, log: Log) throws -> [ImageVersion] {
        guard let keys = trust.verificationKeys else { return versions }
        let signatures = signatures(client)
        var refusals: [Digest: String?] = [:]
        return try versions.filter { version in
            if refusals[version.digest] == nil {
                refusals[version.digest] = .some(try signatures.refusal(version.digest, keys: keys))
            }
            guard let refusal = refusals[version.digest] ?? nil else { return true }
            log.info("not emitting \(version.tag.isEmpty ? "" : version.tag + " ")\(refusal)")
            return false
        }
    }

    /// Throws one line naming `digest` and why, unless it has a valid signature by one of
    /// the `verify` keys (or `verify` is not set).
    func requireSignature(_ digest: Digest, client: RegistryClient) throws {
        guard let keys = trust.verificationKeys else { return }
        if let refusal = try signatures(client).refusal(digest, keys: keys) {
            throw InputError("source.verify: refusing \(registry)/\(repository)@\(digest): \(refusal)")
        }
    }
}

extension In {
    /// `params.attestations: true`: the DSSE envelopes attached to `digest`, as
    /// `attestations/<n>.dsse.json` (with `verify` set, only those signed by its keys and
    /// about this image). Returns metadata lines.
    func writeAttestations(_ digest: Digest, source: Source, client: RegistryClient, directory: URL, log: Log) throws
        -> [[String: String]]
    {
        let found = try source.signatures(client).attestations(digest, keys: source.trust.verificationKeys)
        let folder = directory.appendingPathComponent(CosignVocabulary.attestationsDirectory)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (index, attestation) in found.enumerated() {
            try attestation.envelope.write(
                to: folder.appendingPathComponent("\(index + 1).dsse.json"), options: .atomic)
        }
        log.info("wrote \(found.count) attestation(s) of \(digest) to \(CosignVocabulary.attestationsDirectory)/")
        return [["name": "attestations", "value": found.map(\.predicateType).joined(separator: " ")]]
    }
}
