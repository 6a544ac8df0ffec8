import Crypto
import Foundation
import _CryptoExtras

/// cosign's encrypted private key file: a PEM block whose body is the JSON of sigstore's
/// `encrypted` package (go-securesystemslib), `{"kdf": {"name": "scrypt", "params": {"N", "r",
/// "p"}, "salt"}, "cipher": {"name": "nacl/secretbox", "nonce"}, "ciphertext"}`, byte strings in
/// standard padded base64 (Go's `[]byte` in JSON). The secretbox key is scrypt of the raw
/// password bytes, 32 bytes long; the plaintext is the key's PKCS#8 DER.
struct CosignEncryptedKey {
    struct Body: Decodable {
        struct KDF: Decodable {
            struct Params: Decodable {
                let N: Int
                let r: Int
                let p: Int
            }
            let name: String
            let params: Params
            let salt: Data
        }
        struct Cipher: Decodable {
            let name: String
            let nonce: Data
        }
        let kdf: KDF
        let cipher: Cipher
        let ciphertext: Data
    }

    /// The largest scrypt cost accepted. cosign writes N = 2^15, 2^16 or 2^17 with r = 8 and
    /// p = 1 (32 to 128 MiB); a key file is input, so it must not make `out` allocate or spin
    /// without bound.
    static let maxN = 1 << 20
    static let maxMemory = 256 << 20
    static let maxRP = 64

    let label: String
    let body: Body

    init(pem: String, label: String) throws(SigningError) {
        self.label = label
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN \(label)-----"),
            let end = lines[begin...].firstIndex(of: "-----END \(label)-----"),
            let json = Data(base64Encoded: lines[(begin + 1)..<end].joined()),
            let body = try? JSONDecoder().decode(Body.self, from: json)
        else {
            throw SigningError(
                "the \(label) is not cosign's format (a PEM of base64 JSON with kdf, cipher and ciphertext); give the file `cosign generate-key-pair` wrote, unchanged"
            )
        }
        guard body.kdf.name == "scrypt", body.cipher.name == "nacl/secretbox" else {
            throw SigningError(
                "the \(label) uses kdf \"\(body.kdf.name)\" and cipher \"\(body.cipher.name)\"; only cosign's scrypt and nacl/secretbox are read"
            )
        }
        let (n, r, p) = (body.kdf.params.N, body.kdf.params.r, body.kdf.params.p)
        guard n > 1, n <= Self.maxN, n & (n - 1) == 0, r >= 1, p >= 1, r <= Self.maxRP, p <= Self.maxRP,
            r * p <= Self.maxRP, 128 * n * r <= Self.maxMemory
        else {
            throw SigningError(
                "the \(label) asks for scrypt N=\(n), r=\(r), p=\(p): over Slipway's bounds (N a power of two up to 2^20, 128·N·r bytes up to 256 MiB, r·p up to 64); cosign writes N up to 2^17, r=8, p=1"
            )
        }
        guard body.cipher.nonce.count == SecretBox.nonceBytes, body.ciphertext.count >= SecretBox.tagBytes else {
            throw SigningError(
                "the \(label) has a nonce or ciphertext of the wrong length; give the file `cosign generate-key-pair` wrote, unchanged"
            )
        }
        self.body = body
    }

    /// The PKCS#8 DER the file seals, or `SigningError.wrongPassword`.
    func open(password: String) throws(SigningError) -> Data {
        let params = body.kdf.params
        let key: SymmetricKey
        do {
            key = try KDF.Scrypt.deriveKey(
                from: Array(password.utf8), salt: body.kdf.salt, outputByteCount: SecretBox.keyBytes,
                rounds: params.N, blockSize: params.r, parallelism: params.p)
        } catch {
            throw SigningError(
                "the \(label)'s scrypt parameters N=\(params.N), r=\(params.r), p=\(params.p) were refused by scrypt")
        }
        let keyBytes = key.withUnsafeBytes { Array($0) }
        guard let der = SecretBox.open(Array(body.ciphertext), nonce: Array(body.cipher.nonce), key: keyBytes) else {
            throw SigningError.wrongPassword
        }
        return Data(der)
    }
}
