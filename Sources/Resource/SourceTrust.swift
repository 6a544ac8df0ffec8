import Foundation
import Signing

/// `source.sign` and `source.verify`: signed images in cosign's layout (see docs, "Trust").
struct Trust: Sendable {
    /// `sign.private_key`: `out` signs every image it pushes or promotes.
    var signingKey: SigningKey?
    /// `verify.public_keys`: `check` emits and `in` fetches only images signed by one of them.
    var verificationKeys: [VerificationKey]?

    static let signKeys = ["private_key", "password"]
    static let verifyKeys = ["public_keys"]

    init(_ source: InputObject) throws(InputError) {
        if let sign = try source.object("sign", keys: Self.signKeys, secrets: ["private_key", "password"]) {
            let pem = try sign.requiredString("private_key")
            let password = try sign.string("password")
            if !SigningKey.isEncrypted(pem), let password, !password.isEmpty {
                throw sign.invalid("password", "private_key is not encrypted (a password opens only cosign's ENCRYPTED SIGSTORE PRIVATE KEY); remove password")
            }
            // An encrypted key without a password is tried with the empty one: cosign's
            // default when COSIGN_PASSWORD is empty.
            do { signingKey = try SigningKey(pem: pem, password: password ?? "") } catch {
                if error == .wrongPassword {
                    throw InputError(password == nil ? "source.sign: private_key is encrypted and the empty password does not decrypt it; set source.sign.password" : "source.sign: \(error)")
                }
                throw InputError("source.sign.private_key: \(error)")
            }
        }
        if let verify = try source.object("verify", keys: Self.verifyKeys) {
            guard let pems = try verify.strings("public_keys"), !pems.isEmpty else {
                throw InputError("source.verify.public_keys is required: one or more PEM public keys (-----BEGIN PUBLIC KEY-----)")
            }
            verificationKeys = try pems.enumerated().map { index, pem throws(InputError) in
                do { return try VerificationKey(pem: pem) } catch { throw InputError("source.verify.public_keys[\(index)]: \(error)") }
            }
        }
    }

    init() {}
}
