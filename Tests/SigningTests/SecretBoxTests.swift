import Foundation
import Testing

@testable import Signing

func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter(\.isHexDigit))
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// XSalsa20-Poly1305 and its parts against published vectors, so the hand-written ciphers
/// that open cosign's keys are known to be NaCl's.
@Suite("NaCl secretbox: HSalsa20, Salsa20, Poly1305 against published vectors")
struct SecretBoxTests {
    // NaCl's and libsodium's `tests/secretbox.c` / `secretbox_easy.c` (`firstkey`, `nonce`, `m`)
    // and their expected output (`secretbox.exp`): the Poly1305 tag, then the ciphertext.
    static let firstkey = hex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
    static let nonce = hex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
    static let message = hex(
        """
        be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f4
        1db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52
        f0a089bc76897040e082f937763848645e0705
        """)
    static let box = hex(
        """
        f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b
        4da7f011ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da
        99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5
        """)

    @Test func naclSecretboxVectorOpens() {
        #expect(Self.message.count == 131 && Self.box.count == 147)
        #expect(SecretBox.open(Self.box, nonce: Self.nonce, key: Self.firstkey) == Self.message)
    }

    @Test func anyChangeToTheBoxKeyOrNonceIsRefused() {
        for index in [0, 15, 16, 146] {
            var tampered = Self.box
            tampered[index] ^= 0x01
            #expect(SecretBox.open(tampered, nonce: Self.nonce, key: Self.firstkey) == nil, "byte \(index)")
        }
        var key = Self.firstkey
        key[31] ^= 0x80
        #expect(SecretBox.open(Self.box, nonce: Self.nonce, key: key) == nil)
        var nonce = Self.nonce
        nonce[23] ^= 0x01
        #expect(SecretBox.open(Self.box, nonce: nonce, key: Self.firstkey) == nil)
        // Wrong sizes are refused, never a crash.
        #expect(SecretBox.open(Array(Self.box.prefix(15)), nonce: Self.nonce, key: Self.firstkey) == nil)
        #expect(SecretBox.open(Self.box, nonce: Array(Self.nonce.prefix(23)), key: Self.firstkey) == nil)
        #expect(SecretBox.open(Self.box, nonce: Self.nonce, key: Array(Self.firstkey.prefix(16))) == nil)
    }

    /// NaCl's `tests/core1.c` (libsodium `test/default/core1.c` and `core1.exp`): HSalsa20 of the
    /// shared secret of the box test's key pairs and a zero input is `firstkey`.
    @Test func hsalsa20MakesNaclsFirstkey() {
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(SecretBox.hsalsa20(key: shared, input: [UInt8](repeating: 0, count: 16)) == Self.firstkey)
    }

    /// RFC 8439, section 2.5.2 (Poly1305 example and test vector).
    @Test func poly1305Rfc8439Vector() {
        let key = hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
        let tag = SecretBox.poly1305(Array("Cryptographic Forum Research Group".utf8), key: key)
        #expect(tag == hex("a8061dc1305136c6c22b8baf0c0127a9"))
    }

    /// poly1305-donna's "wrap" vector: an accumulator of 2^130 - 2 reduces to 3.
    @Test func poly1305ReducesModuloTheprime() {
        let key = [2] + [UInt8](repeating: 0, count: 31)
        #expect(
            SecretBox.poly1305([UInt8](repeating: 0xff, count: 16), key: key) == [3] + [UInt8](repeating: 0, count: 15))
    }

    /// Hostile key files: scrypt costs over the bounds are refused before any work, in one line.
    @Test func scryptBoundsAreEnforcedBeforeDerivation() throws {
        func pem(n: Int, r: Int, p: Int) -> String {
            let json =
                #"{"kdf":{"name":"scrypt","params":{"N":\#(n),"r":\#(r),"p":\#(p)},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"\#(Data(count: 24).base64EncodedString())"},"ciphertext":"\#(Data(count: 48).base64EncodedString())"}"#
            return
                "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n\(Data(json.utf8).base64EncodedString())\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
        }
        for (n, r, p) in [
            (1 << 30, 8, 1), (1 << 20, 8, 1), (1 << 16, 8, 1_000_000), (1000, 8, 1), (0, 8, 1), (1 << 15, 0, 1),
        ] {
            #expect(throws: SigningError.self) { try SigningKey(pem: pem(n: n, r: r, p: p), password: "") }
            do { _ = try SigningKey(pem: pem(n: n, r: r, p: p)) } catch {
                #expect(
                    error.description.contains("over Slipway's bounds") && !error.description.contains("\n"), "\(error)"
                )
            }
        }
        // Within the bounds, a box that does not open is the wrong password.
        #expect(throws: SigningError.wrongPassword) { try SigningKey(pem: pem(n: 1 << 10, r: 8, p: 1), password: "x") }
    }
}
