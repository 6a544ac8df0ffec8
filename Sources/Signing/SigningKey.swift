import Crypto
import Errors
import Foundation

/// Why a key or a signature was not accepted. Never carries key material or a password.
public struct SigningError: SlipwayError {
    /// What kind of failure this is (one kind: the message says the rest).
    public typealias Kind = ErrorKind<SigningError>
    public var kind: Kind { .invalidKey }
    /// What failed, with which value, and what to do.
    public let message: String
    public init(_ message: String) { self.message = message }

    /// The password given does not open the encrypted key (or the key file was altered).
    public static let wrongPassword = SigningError("the password does not decrypt private_key")
}

extension SigningError: Equatable {}

/// An ECDSA P-256 private key that signs images: an unencrypted PEM, or cosign's own
/// encrypted key file (what `cosign generate-key-pair` writes).
public struct SigningKey: Sendable {
    /// The scalar (swift-crypto's key types are not `Sendable` in this release).
    let raw: Data
    var key: P256.Signing.PrivateKey { (try? P256.Signing.PrivateKey(rawRepresentation: raw))! }

    /// The PEM block labels of cosign's encrypted key files (the second is cosign's older one).
    static let encryptedLabels = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"]

    /// Whether `pem` is one of cosign's encrypted key files (it then takes a password).
    public static func isEncrypted(_ pem: String) -> Bool {
        encryptedLabels.contains { pem.contains("-----BEGIN \($0)-----") }
    }

    /// Checks that `pem` can be opened, without opening it: an unencrypted key is parsed; a
    /// cosign encrypted key's envelope (format, scrypt bounds) is read, but scrypt is not run.
    public static func check(pem: String) throws(SigningError) {
        if let label = encryptedLabels.first(where: { pem.contains("-----BEGIN \($0)-----") }) {
            _ = try CosignEncryptedKey(pem: pem, label: label)
        } else {
            _ = try SigningKey(pem: pem)
        }
    }

    /// Parses `pem`: `-----BEGIN PRIVATE KEY-----` (PKCS#8), `-----BEGIN EC PRIVATE KEY-----`
    /// (SEC 1) or cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`,
    /// opened with `password` (cosign's default is the empty one), a P-256 key.
    public init(pem: String, password: String = "") throws(SigningError) {
        if let label = Self.encryptedLabels.first(where: { pem.contains("-----BEGIN \($0)-----") }) {
            let der = try CosignEncryptedKey(pem: pem, label: label).open(password: password)
            do { raw = try P256.Signing.PrivateKey(derRepresentation: der).rawRepresentation } catch {
                throw SigningError(
                    "the decrypted \(label) is not an ECDSA P-256 (prime256v1) key; Slipway signs with P-256 keys, cosign's default"
                )
            }
            return
        }
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw SigningError(
                "an ENCRYPTED PRIVATE KEY (PKCS#8 with a password) is not read; decrypt it with `openssl pkcs8 -in key.pem -nocrypt -topk8` and keep the result in a credential manager, or give cosign's own encrypted key"
            )
        }
        guard pem.contains("-----BEGIN PRIVATE KEY-----") || pem.contains("-----BEGIN EC PRIVATE KEY-----") else {
            throw SigningError(
                "expected a PEM private key (-----BEGIN PRIVATE KEY-----, -----BEGIN EC PRIVATE KEY----- or cosign's -----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----)"
            )
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

extension ErrorKind where Owner == SigningError {
    /// A key, signature or attachment is not in a form Slipway reads or writes.
    public static var invalidKey: Self { Self("invalid key") }
}
