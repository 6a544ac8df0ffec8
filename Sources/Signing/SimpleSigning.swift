import Foundation
import OCI

/// The payload cosign signs for an image: Red Hat's simple-signing format with cosign's type.
///
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},
/// "type":"cosign container image signature"},"optional":null}`. Verifiers (cosign, and
/// containers/image's `sigstoreSigned` policy) check the signature over these exact bytes,
/// then that the digest is the image's and the reference names the repository asked for.
/// See containers/image `docs/containers-signature.5.md` and cosign `specs/SIGNATURE_SPEC.md`.
public struct SimpleSigningPayload: Sendable, Equatable {
    /// `registry/repository`, without tag or digest.
    public var dockerReference: String
    public var digest: Digest

    public init(dockerReference: String, digest: Digest) {
        self.dockerReference = dockerReference
        self.digest = digest
    }

    /// The bytes that are signed, in cosign's field order.
    public var bytes: Data {
        Data(
            #"{"critical":{"identity":{"docker-reference":\#(Self.quoted(dockerReference))},"image":{"docker-manifest-digest":\#(Self.quoted(digest.rawValue))},"type":\#(Self.quoted(CosignVocabulary.simpleSigningType))},"optional":null}"#
                .utf8)
    }

    /// A JSON string as cosign's Go encoder writes it for these values (slashes as they are).
    static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    /// Reads a payload by containers/image's rules: `critical` with exactly `type`, `image`
    /// and `identity`; the type cosign's; `optional` absent, null or an object.
    public init(parsing data: Data) throws(SigningError) {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let critical = object["critical"] as? [String: Any]
        else {
            throw SigningError("the payload is not a simple-signing JSON object with a critical section")
        }
        guard Set(critical.keys) == ["type", "image", "identity"] else {
            throw SigningError(
                "the payload's critical section has fields \(critical.keys.sorted()), not exactly type, image and identity"
            )
        }
        guard critical["type"] as? String == CosignVocabulary.simpleSigningType else {
            throw SigningError("the payload's critical.type is not \"\(CosignVocabulary.simpleSigningType)\"")
        }
        if let optional = object["optional"], !(optional is NSNull), !(optional is [String: Any]) {
            throw SigningError("the payload's optional section is neither null nor an object")
        }
        guard let image = critical["image"] as? [String: Any], image.count == 1,
            let digestText = image["docker-manifest-digest"] as? String, let digest = try? Digest(digestText)
        else {
            throw SigningError("the payload's critical.image has no valid docker-manifest-digest")
        }
        guard let identity = critical["identity"] as? [String: Any], identity.count == 1,
            let reference = identity["docker-reference"] as? String
        else {
            throw SigningError("the payload's critical.identity has no docker-reference")
        }
        self.init(dockerReference: reference, digest: digest)
    }
}

/// A DSSE envelope (Dead Simple Signing Envelope), as cosign stores attestations.
/// See https://github.com/secure-systems-lab/dsse/blob/master/envelope.md and `protocol.md`.
public struct DSSEEnvelope: Codable, Sendable, Equatable {
    public struct Signature: Codable, Sendable, Equatable {
        public var keyid: String
        /// Base64 of the ASN.1 DER ECDSA signature over ``DSSEEnvelope/pae(_:_:)``.
        public var sig: String
    }

    public var payloadType: String
    /// Base64 of the payload bytes.
    public var payload: String
    public var signatures: [Signature]

    /// The pre-authentication encoding DSSE signs:
    /// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimals of bytes.
    public static func pae(_ type: String, _ body: Data) -> Data {
        var data = Data("DSSEv1 \(type.utf8.count) \(type) \(body.count) ".utf8)
        data.append(body)
        return data
    }

    /// `payload` of `payloadType`, signed with `key`.
    public static func signing(_ payload: Data, payloadType: String, with key: SigningKey) throws -> DSSEEnvelope {
        let signature = try key.sign(pae(payloadType, payload))
        return DSSEEnvelope(
            payloadType: payloadType, payload: payload.base64EncodedString(),
            signatures: [Signature(keyid: "", sig: signature.base64EncodedString())])
    }

    /// The payload, when one of the signatures verifies with one of `keys`.
    public func verifiedPayload(_ keys: [VerificationKey]) throws(SigningError) -> Data {
        guard let body = Data(base64Encoded: payload) else {
            throw SigningError("the envelope's payload is not base64")
        }
        let signed = Self.pae(payloadType, body)
        for signature in signatures {
            guard let der = Data(base64Encoded: signature.sig) else { continue }
            if keys.contains(where: { $0.isValid(der, for: signed) }) { return body }
        }
        throw SigningError("no signature of the envelope verifies with the given public keys")
    }
}

/// The parts of an in-toto Statement v1 that attaching it needs.
/// See https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md.
public struct InTotoStatement: Decodable, Sendable {
    public struct Subject: Decodable, Sendable {
        public var name: String?
        public var digest: [String: String]
    }

    public var type: String
    public var subject: [Subject]
    public var predicateType: String

    enum CodingKeys: String, CodingKey {
        case type = "_type"
        case subject, predicateType
    }
}
