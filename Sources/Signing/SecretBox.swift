/// NaCl's `crypto_secretbox_open` (XSalsa20-Poly1305), the cipher cosign seals its private
/// keys with. swift-crypto has neither XSalsa20 nor a standalone Poly1305, so the three small
/// primitives are here, each checked against its published test vectors (see SigningUnitTests).
///
/// Only opening is needed: Slipway reads cosign keys, it never writes them.
/// https://nacl.cr.yp.to/secretbox.html, https://cr.yp.to/snuffle/xsalsa-20110204.pdf
public enum SecretBox {
    public static let keyBytes = 32
    public static let nonceBytes = 24
    public static let tagBytes = 16

    /// The plaintext of `box` (the 16-byte Poly1305 tag, then the ciphertext, as NaCl's
    /// `crypto_secretbox_easy` and Go's `secretbox.Seal` write it), or nil when the key, nonce
    /// or box does not fit or the tag does not authenticate it.
    public static func open(_ box: [UInt8], nonce: [UInt8], key: [UInt8]) -> [UInt8]? {
        guard key.count == keyBytes, nonce.count == nonceBytes, box.count >= tagBytes else { return nil }
        let subkey = hsalsa20(key: key, input: Array(nonce[0..<16]))
        let streamNonce = Array(nonce[16..<24])
        // The first 32 bytes of the stream key Poly1305; the message is XORed with the rest.
        let firstBlock = salsa20Block(key: subkey, nonce: streamNonce, counter: 0)
        let tag = Array(box[0..<tagBytes])
        let ciphertext = Array(box[tagBytes...])
        guard constantTimeEqual(poly1305(ciphertext, key: Array(firstBlock[0..<32])), tag) else { return nil }

        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        var block = firstBlock
        var used = 32
        var counter: UInt64 = 0
        for index in ciphertext.indices {
            if used == 64 {
                counter += 1
                block = salsa20Block(key: subkey, nonce: streamNonce, counter: counter)
                used = 0
            }
            plaintext[index] = ciphertext[index] ^ block[used]
            used += 1
        }
        return plaintext
    }

    /// Whether `a` and `b` are equal, in time that depends only on their lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    // MARK: Salsa20 and HSalsa20

    /// "expand 32-byte k", the diagonal of every Salsa20 state.
    static let sigma: [UInt32] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]

    /// The 20-round Salsa20 permutation of `state` (without the final addition).
    static func rounds(_ state: [UInt32]) -> [UInt32] {
        var x = state
        func quarter(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
            x[b] ^= (x[a] &+ x[d]).rotated(7)
            x[c] ^= (x[b] &+ x[a]).rotated(9)
            x[d] ^= (x[c] &+ x[b]).rotated(13)
            x[a] ^= (x[d] &+ x[c]).rotated(18)
        }
        for _ in 0..<10 {
            quarter(0, 4, 8, 12)
            quarter(5, 9, 13, 1)
            quarter(10, 14, 2, 6)
            quarter(15, 3, 7, 11)
            quarter(0, 1, 2, 3)
            quarter(5, 6, 7, 4)
            quarter(10, 11, 8, 9)
            quarter(15, 12, 13, 14)
        }
        return x
    }

    /// The Salsa20 state of a 32-byte key and a 16-byte input (nonce and counter).
    static func state(key: [UInt8], input: [UInt8]) -> [UInt32] {
        let k = words(key)
        let n = words(input)
        return [
            sigma[0], k[0], k[1], k[2], k[3], sigma[1], n[0], n[1], n[2], n[3], sigma[2], k[4], k[5], k[6], k[7],
            sigma[3],
        ]
    }

    /// HSalsa20: the 32-byte subkey XSalsa20 derives from `key` and the first 16 nonce bytes.
    public static func hsalsa20(key: [UInt8], input: [UInt8]) -> [UInt8] {
        let x = rounds(state(key: key, input: input))
        return bytes([x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9]])
    }

    /// One 64-byte block of the Salsa20 stream of `key`, an 8-byte `nonce` and block `counter`.
    public static func salsa20Block(key: [UInt8], nonce: [UInt8], counter: UInt64) -> [UInt8] {
        let input = nonce + bytes([UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32)])
        let initial = state(key: key, input: input)
        let mixed = rounds(initial)
        return bytes(zip(mixed, initial).map { $0 &+ $1 })
    }

    // MARK: Poly1305 (26-bit limbs, as in poly1305-donna's 32-bit version)

    /// The Poly1305 tag of `message` under the one-time 32-byte `key` (RFC 8439, section 2.5).
    ///
    /// Kept whole: key clamping, the block loop, the final reduction and the addition of `s`
    /// follow the RFC's steps in order on the same limbs, and helpers would only pass them around.
    public static func poly1305(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        let mask: UInt32 = 0x3ff_ffff
        let r0 = load32(key, 0) & 0x3ff_ffff
        let r1 = (load32(key, 3) >> 2) & 0x3ff_ff03
        let r2 = (load32(key, 6) >> 4) & 0x3ff_c0ff
        let r3 = (load32(key, 9) >> 6) & 0x3f0_3fff
        let r4 = (load32(key, 12) >> 8) & 0x00f_ffff
        let s1 = UInt64(r1 * 5)
        let s2 = UInt64(r2 * 5)
        let s3 = UInt64(r3 * 5)
        let s4 = UInt64(r4 * 5)
        let (R0, R1, R2, R3, R4) = (UInt64(r0), UInt64(r1), UInt64(r2), UInt64(r3), UInt64(r4))
        var h0: UInt32 = 0
        var h1: UInt32 = 0
        var h2: UInt32 = 0
        var h3: UInt32 = 0
        var h4: UInt32 = 0

        var offset = 0
        while offset < message.count {
            var block = [UInt8](repeating: 0, count: 17)
            let length = min(16, message.count - offset)
            block[0..<length] = message[offset..<offset + length]
            // A full block's 2^128 bit sits above its 16 bytes; a short block's 1 follows its bytes.
            block[length] = 1
            let high: UInt32 = length == 16 ? 1 << 24 : 0
            h0 &+= load32(block, 0) & mask
            h1 &+= (load32(block, 3) >> 2) & mask
            h2 &+= (load32(block, 6) >> 4) & mask
            h3 &+= (load32(block, 9) >> 6) & mask
            h4 &+= (load32(block, 12) >> 8) | high

            let H0 = UInt64(h0)
            let H1 = UInt64(h1)
            let H2 = UInt64(h2)
            let H3 = UInt64(h3)
            let H4 = UInt64(h4)
            let d0 = H0 * R0 + H1 * s4 + H2 * s3 + H3 * s2 + H4 * s1
            var d1 = H0 * R1 + H1 * R0 + H2 * s4 + H3 * s3 + H4 * s2
            var d2 = H0 * R2 + H1 * R1 + H2 * R0 + H3 * s4 + H4 * s3
            var d3 = H0 * R3 + H1 * R2 + H2 * R1 + H3 * R0 + H4 * s4
            var d4 = H0 * R4 + H1 * R3 + H2 * R2 + H3 * R1 + H4 * R0
            var carry = d0 >> 26
            h0 = UInt32(d0 & UInt64(mask))
            d1 += carry
            carry = d1 >> 26
            h1 = UInt32(d1 & UInt64(mask))
            d2 += carry
            carry = d2 >> 26
            h2 = UInt32(d2 & UInt64(mask))
            d3 += carry
            carry = d3 >> 26
            h3 = UInt32(d3 & UInt64(mask))
            d4 += carry
            carry = d4 >> 26
            h4 = UInt32(d4 & UInt64(mask))
            h0 &+= UInt32(carry) &* 5
            let c = h0 >> 26
            h0 &= mask
            h1 &+= c
            offset += 16
        }

        // Full carry, then h mod 2^130 - 5 without branches on secret data.
        var c = h1 >> 26
        h1 &= mask
        h2 &+= c
        c = h2 >> 26
        h2 &= mask
        h3 &+= c
        c = h3 >> 26
        h3 &= mask
        h4 &+= c
        c = h4 >> 26
        h4 &= mask
        h0 &+= c &* 5
        c = h0 >> 26
        h0 &= mask
        h1 &+= c
        var g0 = h0 &+ 5
        c = g0 >> 26
        g0 &= mask
        var g1 = h1 &+ c
        c = g1 >> 26
        g1 &= mask
        var g2 = h2 &+ c
        c = g2 >> 26
        g2 &= mask
        var g3 = h3 &+ c
        c = g3 >> 26
        g3 &= mask
        var g4 = h4 &+ c &- (1 << 26)
        var select = (g4 >> 31) &- 1  // all ones when h >= 2^130 - 5 (take g), else zero
        g0 &= select
        g1 &= select
        g2 &= select
        g3 &= select
        g4 &= select
        select = ~select
        h0 = (h0 & select) | g0
        h1 = (h1 & select) | g1
        h2 = (h2 & select) | g2
        h3 = (h3 & select) | g3
        h4 = (h4 & select) | g4

        let w0 = h0 | (h1 << 26)
        let w1 = (h1 >> 6) | (h2 << 20)
        let w2 = (h2 >> 12) | (h3 << 14)
        let w3 = (h3 >> 18) | (h4 << 8)
        var f = UInt64(w0) + UInt64(load32(key, 16))
        let t0 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w1) + UInt64(load32(key, 20)) + (f >> 32)
        let t1 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w2) + UInt64(load32(key, 24)) + (f >> 32)
        let t2 = UInt32(truncatingIfNeeded: f)
        f = UInt64(w3) + UInt64(load32(key, 28)) + (f >> 32)
        let t3 = UInt32(truncatingIfNeeded: f)
        return bytes([t0, t1, t2, t3])
    }

    // MARK: Little-endian words

    static func load32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(
            bytes[offset + 3]) << 24
    }

    static func words(_ bytes: [UInt8]) -> [UInt32] {
        stride(from: 0, to: bytes.count, by: 4).map { load32(bytes, $0) }
    }

    static func bytes(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }
}

extension UInt32 {
    fileprivate func rotated(_ count: UInt32) -> UInt32 { (self << count) | (self >> (32 - count)) }
}
