import Foundation
import OCI
import Registry

/// Signing, attesting and verifying images in cosign's layout, on one ``AttachmentStore``.
public struct ImageSignatures: Sendable {
    public let store: AttachmentStore
    /// `registry/repository`: the docker-reference payloads name. Docker Hub's is
    /// `index.docker.io/…`, as cosign (go-containerregistry) writes and compares it.
    public let dockerReference: String
    /// The spellings of ``dockerReference`` accepted on verification (Docker Hub has two:
    /// containers/image normalises `index.docker.io` to `docker.io`).
    let acceptedReferences: Set<String>

    public init(client: RegistryClient, registry: RegistryHost, repository: Repository) {
        store = AttachmentStore(client: client, repository: repository)
        if registry.isDockerHub {
            dockerReference = "index.docker.io/\(repository)"
            acceptedReferences = [dockerReference, "docker.io/\(repository)"]
        } else {
            dockerReference = "\(registry)/\(repository)"
            acceptedReferences = [dockerReference]
        }
    }

    /// Signs `digest` with `key`: a simple-signing layer in `sha256-<hex>.sig`, unless a
    /// signature of the same payload by the same key is already there.
    /// - Returns: whether a signature was added.
    @discardableResult
    public func sign(_ digest: Digest, with key: SigningKey) throws -> Bool {
        let payload = SimpleSigningPayload(dockerReference: dockerReference, digest: digest).bytes
        let signature = try key.sign(payload).base64EncodedString()
        let descriptor = Descriptor(
            mediaType: CosignVocabulary.simpleSigningMediaType, digest: .sha256(payload), size: Int64(payload.count),
            annotations: [CosignVocabulary.signatureAnnotation: signature])
        let publicKey = key.publicKey
        return try store.append(AttachmentStore.Layer(descriptor: descriptor, content: payload), .signature, of: digest)
        { existing, new in
            guard existing.descriptor.digest == new.descriptor.digest,
                let old = existing.descriptor.annotations?[CosignVocabulary.signatureAnnotation].flatMap({
                    Data(base64Encoded: $0)
                })
            else { return false }
            return publicKey.isValid(old, for: existing.content)
        }
    }

    /// Attaches each statement (in-toto Statement v1 JSON) to `digest` in a DSSE envelope
    /// signed with `key`, after checking it is about `digest`.
    /// - Returns: how many envelopes were added.
    @discardableResult
    public func attest(_ digest: Digest, statements: [(name: String, bytes: Data)], with key: SigningKey) throws -> Int
    {
        var layers: [AttachmentStore.Layer] = []
        for (statement, bytes) in try Self.checked(statements, for: digest) {
            let envelope = try CanonicalJSON.encode(
                DSSEEnvelope.signing(bytes, payloadType: CosignVocabulary.inTotoPayloadType, with: key))
            let descriptor = Descriptor(
                mediaType: CosignVocabulary.dsseEnvelopeMediaType, digest: .sha256(envelope),
                size: Int64(envelope.count),
                annotations: [
                    CosignVocabulary.predicateTypeAnnotation: statement.predicateType,
                    CosignVocabulary.signatureAnnotation: "",
                ])
            layers.append(AttachmentStore.Layer(descriptor: descriptor, content: envelope))
        }
        guard !layers.isEmpty else { return 0 }
        let publicKey = key.publicKey
        return try store.append(layers, .attestation, of: digest) { existing, new in
            // The same statement already attested by this key (a re-run of the same put).
            guard
                existing.descriptor.annotations?[CosignVocabulary.predicateTypeAnnotation]
                    == new.descriptor.annotations?[CosignVocabulary.predicateTypeAnnotation],
                let old = try? JSONDecoder().decode(DSSEEnvelope.self, from: existing.content),
                let fresh = try? JSONDecoder().decode(DSSEEnvelope.self, from: new.content),
                old.payload == fresh.payload
            else { return false }
            return (try? old.verifiedPayload([publicKey])) != nil
        }
    }

    /// The statements parsed, each checked to be an in-toto Statement v1 whose every subject
    /// is `digest` (`subject[].digest.sha256`): run before a push, so a statement of another
    /// build stops the put before anything is published.
    public static func checked(_ statements: [(name: String, bytes: Data)], for digest: Digest) throws(SigningError)
        -> [(InTotoStatement, Data)]
    {
        var result: [(InTotoStatement, Data)] = []
        for (name, bytes) in statements {
            let statement: InTotoStatement
            do { statement = try JSONDecoder().decode(InTotoStatement.self, from: bytes) } catch {
                throw SigningError(
                    "attestation \(name) is not an in-toto statement (needs _type, subject and predicateType)")
            }
            guard statement.type == CosignVocabulary.inTotoStatementType else {
                throw SigningError(
                    "attestation \(name) has _type \"\(statement.type)\", not \(CosignVocabulary.inTotoStatementType)")
            }
            let subjects = statement.subject.map { $0.digest["sha256"] ?? "(no sha256)" }
            guard !subjects.isEmpty, subjects.allSatisfy({ $0 == digest.encoded }) else {
                throw SigningError(
                    "attestation \(name) is about sha256:\(subjects.first { $0 != digest.encoded } ?? "nothing"), not the pushed image \(digest); it was made for another build"
                )
            }
            result.append((statement, bytes))
        }
        return result
    }

    /// Why `digest` has no valid signature by any of `keys`, or nil when it has one.
    public func refusal(_ digest: Digest, keys: [VerificationKey]) throws -> String? {
        let layers = try store.layers(.signature, of: digest)
        let tag = CosignVocabulary.tag(of: .signature, for: digest)?.rawValue ?? "(none)"
        guard !layers.isEmpty else { return "\(digest) is unsigned: no \(store.repository):\(tag)" }
        var reasons: [String] = []
        for layer in layers {
            guard layer.descriptor.mediaType == CosignVocabulary.simpleSigningMediaType else {
                reasons.append("a layer of type \(layer.descriptor.mediaType) is not a simple-signing payload")
                continue
            }
            guard
                let signature = layer.descriptor.annotations?[CosignVocabulary.signatureAnnotation].flatMap({
                    Data(base64Encoded: $0)
                })
            else {
                reasons.append("a layer has no base64 \(CosignVocabulary.signatureAnnotation) annotation")
                continue
            }
            guard keys.contains(where: { $0.isValid(signature, for: layer.content) }) else {
                reasons.append(
                    "a signature does not verify with any of source.verify.public_keys (another key, or altered)")
                continue
            }
            let payload: SimpleSigningPayload
            do { payload = try SimpleSigningPayload(parsing: layer.content) } catch {
                reasons.append(error.description)
                continue
            }
            guard payload.digest == digest else {
                reasons.append("a signed payload is for \(payload.digest), another image")
                continue
            }
            guard acceptedReferences.contains(payload.dockerReference) else {
                reasons.append("a signed payload is for \(payload.dockerReference), another repository")
                continue
            }
            return nil
        }
        // The most telling reason: a valid signature for something else beats a wrong key.
        let best =
            reasons.first { $0.contains("another") && $0.hasPrefix("a signed payload") } ?? reasons.first
            ?? "no signature"
        return "\(digest) has no valid signature (\(layers.count) in \(store.repository):\(tag)): \(best)"
    }

    /// The DSSE envelopes attached to `digest`, with their predicate types; with `keys`, only
    /// those signed by one of them whose statement is about `digest`.
    public func attestations(_ digest: Digest, keys: [VerificationKey]?) throws -> [(
        predicateType: String, envelope: Data
    )] {
        try store.layers(.attestation, of: digest).compactMap { layer in
            guard layer.descriptor.mediaType == CosignVocabulary.dsseEnvelopeMediaType else { return nil }
            let type = layer.descriptor.annotations?[CosignVocabulary.predicateTypeAnnotation] ?? ""
            guard let keys else { return (type, layer.content) }
            guard let envelope = try? JSONDecoder().decode(DSSEEnvelope.self, from: layer.content),
                envelope.payloadType == CosignVocabulary.inTotoPayloadType,
                let body = try? envelope.verifiedPayload(keys),
                let statement = try? JSONDecoder().decode(InTotoStatement.self, from: body),
                statement.subject.contains(where: { $0.digest["sha256"] == digest.encoded })
            else { return nil }
            return (type, layer.content)
        }
    }

    /// Copies the signatures and attestations of `digest` here from `other` (another
    /// repository or registry), appending to what is already attached.
    /// - Returns: how many layers were added.
    @discardableResult
    public func copyAttachments(of digest: Digest, from other: ImageSignatures) throws -> Int {
        var added = 0
        for kind in CosignVocabulary.Attachment.allCases {
            let layers = try other.store.layers(kind, of: digest)
            if !layers.isEmpty { added += try store.append(layers, kind, of: digest) }
        }
        return added
    }
}
