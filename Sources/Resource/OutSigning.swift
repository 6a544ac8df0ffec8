import Console
import Foundation
import OCI
import Registry
import RootFS
import Signing

/// `source.sign` on put: what `out` attaches to an image it pushed or promoted.
extension Out {
    /// The in-toto statements that go with the image `params.image` names: the
    /// `attestations/*.intoto.json` files in the directory holding it (`image/attestations/`
    /// for `image/oci` or `image/image.tar`, as build-task writes them). Sorted by name.
    static func statements(besides imagePath: URL, in build: URL) throws -> [(name: String, bytes: Data)] {
        let directory = imagePath.deletingLastPathComponent().appendingPathComponent(
            CosignVocabulary.attestationsDirectory)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        // Read beneath the build directory: a statement that is a link out of it is refused.
        let root = BeneathDirectory(build).root.path + "/"
        let relative = directory.path.hasPrefix(root) ? String(directory.path.dropFirst(root.count)) : directory.path
        return try names.filter { $0.hasSuffix(CosignVocabulary.statementSuffix) }.sorted().map { name in
            let bytes = try paramFile(relative + "/" + name, param: "params.image", directory: build, limit: 1 << 30)
            return ("\(CosignVocabulary.attestationsDirectory)/\(name)", Data(bytes.utf8))
        }
    }

    /// Checks, before anything is pushed, that the statements are about `digest` and that
    /// there is a key to sign them with.
    static func checkStatements(
        _ statements: [(name: String, bytes: Data)], for digest: Digest, source: Source, log: Log
    ) throws {
        guard !statements.isEmpty else { return }
        guard source.trust.signs else {
            log.info(
                "\(statements.count) attestation(s) next to the image are not attached: attestations are signed, and source.sign is not set"
            )
            return
        }
        do { _ = try ImageSignatures.checked(statements, for: digest) } catch {
            throw InputError("params.image: \(error)")
        }
    }

    /// Signs `digest` in `repository` of `client` (and attaches `statements`) when
    /// `source.sign` is set. Returns metadata lines for the put.
    func sign(
        _ digest: Digest, registry: RegistryHost, repository: Repository, client: RegistryClient, source: Source,
        statements: [(name: String, bytes: Data)] = [], log: Log
    ) throws -> [[String: String]] {
        guard let key = try source.trust.signingKey() else { return [] }
        let signatures = ImageSignatures(client: client, registry: registry, repository: repository)
        let added = try signatures.sign(digest, with: key)
        let tag = CosignVocabulary.tag(of: .signature, for: digest)?.rawValue ?? ""
        log.info(
            added
                ? "signed \(registry)/\(repository)@\(digest) (\(tag))"
                : "\(registry)/\(repository)@\(digest) is already signed by this key")
        var metadata = [["name": "signature", "value": "\(repository):\(tag)"]]
        if !statements.isEmpty {
            let attached = try signatures.attest(digest, statements: statements, with: key)
            let attTag = CosignVocabulary.tag(of: .attestation, for: digest)?.rawValue ?? ""
            log.info("attested \(registry)/\(repository)@\(digest): \(attached) new of \(statements.count) (\(attTag))")
            metadata.append(["name": "attestations", "value": "\(repository):\(attTag)"])
        }
        if let referrers = try signatures.store.referrers(.signature, of: digest) {
            log.info(
                "\(registry) has the OCI referrers API: \(referrers.count) signature referrer(s) of \(digest) listed there too"
            )
            metadata.append(["name": "referrers", "value": "\(repository)@\(digest)"])
        }
        return metadata
    }

    /// A promotion to another repository or registry: the signatures and attestations the
    /// image has where it comes from go with it (appended to any already there).
    func copyAttachments(
        _ digest: Digest, from client: RegistryClient, _ source: Source, to destination: RegistryClient,
        registry: RegistryHost, repository: Repository, log: Log
    ) throws {
        guard registry != source.registry || repository != source.repository else { return }
        let here = ImageSignatures(client: destination, registry: registry, repository: repository)
        let there = ImageSignatures(client: client, registry: source.registry, repository: source.repository)
        let copied = try here.copyAttachments(of: digest, from: there)
        if copied > 0 {
            log.info("copied \(copied) signature/attestation layer(s) of \(digest) to \(registry)/\(repository)")
        }
    }

    /// Prune: deletes the OCI 1.1 referrers of the deleted image `digest` (listed before it
    /// went), so no signature or attestation is left referring to nothing.
    func deleteReferrers(
        _ referrers: [Digest], of digest: Digest, client: RegistryClient, repository: Repository, log: Log
    ) throws {
        for referrer in referrers {
            do { try client.deleteManifest(repository, referrer) } catch let error as RegistryError
                where error.kind == .notFound
            {}
        }
        if !referrers.isEmpty {
            log.info(
                "removed \(referrers.count) referrer(s) of \(digest.rawValue.prefix(19))… (signatures, attestations)")
        }
    }
}
