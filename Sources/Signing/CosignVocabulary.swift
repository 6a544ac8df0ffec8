import OCI

/// Every name of cosign's storage layout that Slipway writes or reads, in one place: the
/// tags signatures and attestations live under, their media types and annotations.
///
/// cosign stores what it attaches to an image `sha256:<hex>` in the image's own repository,
/// under the tag `sha256-<hex>.<suffix>`: an OCI image manifest whose layers are the signed
/// payloads. See cosign's `pkg/oci/remote` (tag scheme) and `specs/SIGNATURE_SPEC.md`.
public enum CosignVocabulary {
    /// What is attached to an image, and the tag suffix it is stored under.
    public enum Attachment: String, Sendable, CaseIterable {
        /// Simple-signing signatures (`cosign sign`).
        case signature = "sig"
        /// DSSE-wrapped in-toto statements (`cosign attest`).
        case attestation = "att"
    }

    /// `sha256-<hex>.<suffix>`: the tag cosign keeps `attachment` of `digest` under.
    /// Nil for a digest that is not SHA-256 (cosign's scheme names only those).
    public static func tag(of attachment: Attachment, for digest: Digest) -> Tag? {
        guard digest.algorithm == "sha256" else { return nil }
        return try? Tag("sha256-\(digest.encoded).\(attachment.rawValue)")
    }

    /// The image digest and attachment kind a cosign tag stands for, or nil when `tag` is
    /// not one (so it is an ordinary tag of the repository).
    public static func attachment(of tag: Tag) -> (digest: Digest, kind: Attachment)? {
        let text = tag.rawValue
        guard text.hasPrefix("sha256-") else { return nil }
        for kind in Attachment.allCases where text.hasSuffix("." + kind.rawValue) {
            let hex = text.dropFirst("sha256-".count).dropLast(kind.rawValue.count + 1)
            guard let digest = try? Digest("sha256:" + hex), self.tag(of: kind, for: digest) == tag else { return nil }
            return (digest, kind)
        }
        return nil
    }

    /// The `artifactType` of the OCI 1.1 referrer manifest that carries `attachment`, as
    /// cosign writes it with `--registry-referrers-mode=oci-1-1`
    /// (`application/vnd.dev.cosign.artifact.<sig|att>.v1+json`).
    public static func artifactType(of attachment: Attachment) -> MediaType {
        MediaType(rawValue: "application/vnd.dev.cosign.artifact.\(attachment.rawValue).v1+json")!
    }

    /// A simple-signing payload layer of a `.sig` manifest.
    public static let simpleSigningMediaType = MediaType(rawValue: "application/vnd.dev.cosign.simplesigning.v1+json")!
    /// A DSSE envelope layer of an `.att` manifest.
    public static let dsseEnvelopeMediaType = MediaType(rawValue: "application/vnd.dsse.envelope.v1+json")!
    /// The layer annotation holding the base64 ASN.1 DER ECDSA signature of the payload
    /// (empty on attestation layers, whose signature is inside the envelope).
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    /// The attestation layer annotation naming the in-toto statement's predicate type.
    public static let predicateTypeAnnotation = "predicateType"
    /// The `critical.type` of a simple-signing payload.
    public static let simpleSigningType = "cosign container image signature"
    /// The DSSE `payloadType` of an in-toto statement.
    public static let inTotoPayloadType = "application/vnd.in-toto+json"
    /// The `_type` of an in-toto Statement v1.
    public static let inTotoStatementType = "https://in-toto.io/Statement/v1"
    /// Where build-task's statements are found next to an image, and where `in` writes the envelopes.
    public static let attestationsDirectory = "attestations"
    /// The file name ending of an in-toto statement in ``attestationsDirectory``.
    public static let statementSuffix = ".intoto.json"
}
