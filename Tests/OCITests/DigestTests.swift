import Foundation
import Testing

@testable import OCI

@Suite("Digest")
struct DigestTests {
    @Test(
        "accepts well-formed digests",
        arguments: [
            Fixtures.digestA,
            Fixtures.digestB,
            "sha512:" + String(repeating: "0f", count: 64),
        ])
    func valid(_ text: String) throws {
        let digest = try Digest(text)
        #expect(digest.rawValue == text)
        #expect(digest.description == text)
        #expect("\(digest.algorithm):\(digest.encoded)" == text)
    }

    @Test(
        "rejects malformed digests",
        arguments: [
            "",
            "sha256",
            "sha256:",
            "sha256:xyz",
            "sha256:abc123",
            "sha256:" + Fixtures.hexA.uppercased(),
            "sha256:" + Fixtures.hexA + "0",
            "sha256:" + String(Fixtures.hexA.dropLast()),
            "sha512:" + Fixtures.hexA,
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "SHA256:" + Fixtures.hexA,
            " sha256:" + Fixtures.hexA,
            "sha256:" + Fixtures.hexA + "\n",
            Fixtures.hexA,
        ])
    func invalid(_ text: String) {
        #expect(throws: Digest.ValidationError(value: text)) { try Digest(text) }
    }

    @Test func errorNamesTheValueAndTheForm() {
        let error = Digest.ValidationError(value: "sha256:xyz")
        #expect(
            error.description
                == #"invalid digest "sha256:xyz": expected sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex digits>"#
        )
    }

    @Test func errorEscapesControlCharacters() {
        let error = Digest.ValidationError(value: "a\nb\"c")
        #expect(!error.description.contains("\n"))
        #expect(error.description.contains(#""a\u{a}b\"c""#))
    }

    @Test func sha256OfKnownInputs() {
        #expect(
            Digest.sha256(Data()).rawValue == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digest.sha256(Data("{}".utf8)).rawValue
                == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        #expect(
            Digest.sha256([UInt8]("abc".utf8)).rawValue
                == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func sha512OfKnownInput() throws {
        let digest = Digest.sha512(Data("abc".utf8))
        #expect(digest.algorithm == "sha512")
        #expect(digest.encoded.hasPrefix("ddaf35a193617aba"))
        #expect(try Digest(digest.rawValue) == digest)
    }

    @Test func codableAsAString() throws {
        let digest = try Digest(Fixtures.digestA)
        let data = try CanonicalJSON.encode([digest])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(Fixtures.digestA)\"]")
        #expect(try JSONDecoder().decode([Digest].self, from: data) == [digest])
    }

    @Test func decodingValidates() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Digest].self, from: Data(#"["sha256:xyz"]"#.utf8))
        }
    }

    @Test("DigestHasher over chunks equals the digest of the whole", arguments: [1, 7, 64, 1000, 100_000])
    func hasherMatchesWhole(chunkSize: Int) {
        let bytes = (0..<65_537).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var hasher = DigestHasher()
        var start = 0
        while start < bytes.count {
            let end = min(start + chunkSize, bytes.count)
            if start % 2 == 0 {
                hasher.update(bytes[start..<end])
            } else {
                bytes[start..<end].withUnsafeBytes { hasher.update($0) }
            }
            start = end
        }
        #expect(hasher.finalize() == Digest.sha256(bytes))
    }

    @Test func hasherFinalizeDoesNotDisturbTheRunningDigest() {
        var hasher = DigestHasher()
        #expect(hasher.finalize() == Digest.sha256(Data()))
        hasher.update(Data("ab".utf8))
        let partial = hasher.finalize()
        #expect(partial == Digest.sha256(Data("ab".utf8)))
        let copy = hasher
        hasher.update(Data("c".utf8))
        #expect(hasher.finalize() == Digest.sha256(Data("abc".utf8)))
        #expect(copy.finalize() == partial)
    }
}
