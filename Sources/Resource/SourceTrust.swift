import Foundation
import Signing
import Synchronization

/// `source.sign` and `source.verify`: signed images in cosign's layout (see docs, "Trust").
struct Trust: Sendable {
    /// `sign.private_key`: `out` signs every image it pushes or promotes. An encrypted key is
    /// opened on first use (``signingKey()``), not when the source is read: scrypt costs
    /// 32–128 MiB and about 0.1 s, which every `check` and `in` would pay for nothing.
    private var signing: SigningKeyText?
    /// Whether `source.sign` is set.
    var signs: Bool { signing != nil }
    /// `verify.public_keys`: `check` emits and `in` fetches only images signed by one of them.
    var verificationKeys: [VerificationKey]?

    static let signKeys = ["private_key", "password"]
    static let verifyKeys = ["public_keys"]

    init(_ source: InputObject) throws(InputError) {
        if let sign = try source.object("sign", keys: Self.signKeys, secrets: ["private_key", "password"]) {
            let pem = try sign.requiredString("private_key")
            let password = try sign.string("password")
            if !SigningKey.isEncrypted(pem), let password, !password.isEmpty {
                throw sign.invalid(
                    "password",
                    "private_key is not encrypted (a password opens only cosign's ENCRYPTED SIGSTORE PRIVATE KEY); remove password"
                )
            }
            // What is cheap to check is checked now, by every command; scrypt waits for out.
            do { try SigningKey.check(pem: pem) } catch { throw InputError("source.sign.private_key: \(error)") }
            signing = SigningKeyText(pem: pem, password: password)
        }
        if let verify = try source.object("verify", keys: Self.verifyKeys) {
            guard let pems = try verify.strings("public_keys"), !pems.isEmpty else {
                throw InputError(
                    "source.verify.public_keys is required: one or more PEM public keys (-----BEGIN PUBLIC KEY-----)")
            }
            verificationKeys = try pems.enumerated().map { index, pem throws(InputError) in
                do { return try VerificationKey(pem: pem) } catch {
                    throw InputError("source.verify.public_keys[\(index)]: \(error)")
                }
            }
        }
    }

    init() {}

    /// The signing key, opened once per process; nil without `source.sign`. `out` asks for it
    /// before pushing anything, so a wrong password stops the put first.
    func signingKey() throws(InputError) -> SigningKey? {
        try signing?.key()
    }
}

/// `source.sign` as written, and the key once opened.
final class SigningKeyText: Sendable {
    let pem: String
    let password: String?
    private let opened = Mutex<SigningKey?>(nil)

    init(pem: String, password: String?) {
        self.pem = pem
        self.password = password
    }

    func key() throws(InputError) -> SigningKey {
        if let key = opened.withLock({ $0 }) { return key }
        let key: SigningKey
        // An encrypted key without a password is tried with the empty one: cosign's
        // default when COSIGN_PASSWORD is empty.
        do { key = try SigningKey(pem: pem, password: password ?? "") } catch {
            if error == .wrongPassword {
                throw InputError(
                    password == nil
                        ? "source.sign: private_key is encrypted and the empty password does not decrypt it; set source.sign.password"
                        : "source.sign: \(error)")
            }
            throw InputError("source.sign.private_key: \(error)")
        }
        opened.withLock { $0 = key }
        return key
    }
}
