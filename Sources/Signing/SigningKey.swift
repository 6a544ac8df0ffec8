import Crypto
import Foundation

/// Why a key or a signature was not accepted. Never carries key material or a password.
public struct SigningError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An ECDSA P-256 private key that signs images, from an unencrypted PEM.
///
/// cosign's own encrypted key files (`ENCRYPTED SIGSTORE PRIVATE KEY`, `ENCRYPTED COSIGN
/// PRIVATE KEY`) seal the key with scrypt and NaCl secretbox (XSalsa20-Poly1305); swift-crypto
/// has neither XSalsa20 nor a standalone Poly1305, and Slipway does not ship hand-written
/// ciphers, so those files are refused with the command that converts them.
public struct SigningKey: Sendable {
    /// The scalar (swift-crypto's key types are not `Sendable` in this release).
    let raw: Data
    var key: P256.Signing.PrivateKey { (try? P256.Signing.PrivateKey(rawRepresentation: raw))! }

    /// The PEM block labels of cosign's encrypted key files.
    static let encryptedLabels = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"]

    /// Parses `pem`: `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN EC PRIVATE KEY-----`
    /// (SEC 1), a P-256 key.
    public init(pem: String) throws(SigningError) {
        if let label = Self.encryptedLabels.first(where: { pem.contains("-----BEGIN \($0)-----") }) {
            throw SigningError("a \(label) (cosign's scrypt + NaCl secretbox encryption) cannot be opened: swift-crypto has no XSalsa20-Poly1305; give an unencrypted P-256 key (PRIVATE KEY or EC PRIVATE KEY PEM, e.g. `openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt`; `cosign import-key-pair` makes a cosign key of the same key) from a credential manager")
        }
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw SigningError("an ENCRYPTED PRIVATE KEY (PKCS#8 with a password) is not read; decrypt it with `openssl pkcs8 -in key.pem -nocrypt -topk8` and keep the result in a credential manager")
        }
        guard pem.contains("-----BEGIN PRIVATE KEY-----") || pem.contains("-----BEGIN EC PRIVATE KEY-----") else {
            throw SigningError("expected a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)")
        }
        do { raw = try P256.Signing.PrivateKey(pemRepresentation: pem).rawRepresentation } catch {
            throw SigningError("the PEM is not an ECDSA P-256 (prime256v1) private key; cosign keys are P-256")
        }
    }

    /// The key verifying this key's signatures.
    public var publicKey: VerificationKey { VerificationKey(key: key.publicKey) }

    /// ECDSA-SHA256 over `payload`, as ASN.1 DER (what cosign stores, base64-encoded).
    public func sign(_ payload: Data) throws -> Data {
        try key.signature(for: payload).derRepresentation
    }
}

/// An ECDSA P-256 public key that verifies image signatures, from a `PUBLIC KEY` PEM (as
/// `cosign public-key` and `openssl ec -pubout` write it).
public struct VerificationKey: Sendable {
    /// The uncompressed point (swift-crypto's key types are not `Sendable` in this release).
    let raw: Data
    var key: P256.Signing.PublicKey { (try? P256.Signing.PublicKey(x963Representation: raw))! }

    init(key: P256.Signing.PublicKey) { raw = key.x963Representation }

    public init(pem: String) throws(SigningError) {
        guard pem.contains("-----BEGIN PUBLIC KEY-----") else {
            throw SigningError("expected a PEM public key (-----BEGIN PUBLIC KEY-----)")
        }
        do { raw = try P256.Signing.PublicKey(pemRepresentation: pem).x963Representation } catch {
            throw SigningError("the PEM is not an ECDSA P-256 (prime256v1) public key")
        }
    }

    /// The key as a `PUBLIC KEY` PEM.
    public var pem: String { key.pemRepresentation }

    /// Whether `signature` (ASN.1 DER) is this key's ECDSA-SHA256 signature of `payload`.
    public func isValid(_ signature: Data, for payload: Data) -> Bool {
        guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
        return key.isValidSignature(parsed, for: payload)
    }
}
