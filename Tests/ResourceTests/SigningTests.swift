import Foundation
import ImageLayout
import OCI
import Registry
import Signing
import TagPolicy
import TestSupport
import Testing
import Transfer

@testable import Resource

/// An ECDSA P-256 key pair made by openssl: the private key as SEC 1 (`EC PRIVATE KEY`) and
/// PKCS#8 (`PRIVATE KEY`), the public key as `PUBLIC KEY`.
struct TestKeyPair {
    let ec: String
    let pkcs8: String
    let publicPEM: String
    let publicFile: URL

    init(in directory: URL, name: String) throws {
        let ecFile = directory.appendingPathComponent("\(name).ec.pem")
        let pkcs8File = directory.appendingPathComponent("\(name).pem")
        publicFile = directory.appendingPathComponent("\(name).pub")
        _ = try runProcess("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ecFile.path])
            .checked()
        _ = try runProcess("openssl", ["pkcs8", "-topk8", "-nocrypt", "-in", ecFile.path, "-out", pkcs8File.path])
            .checked()
        _ = try runProcess("openssl", ["ec", "-in", ecFile.path, "-pubout", "-out", publicFile.path]).checked()
        ec = try String(contentsOf: ecFile, encoding: .utf8)
        pkcs8 = try String(contentsOf: pkcs8File, encoding: .utf8)
        publicPEM = try String(contentsOf: publicFile, encoding: .utf8)
    }
}

/// The independent verifier (`Tests/Fixtures/servers/cosign_verify.py`, python3-cryptography):
/// `sig` or `att` of `repository:reference`, against `key`, for `identity`.
func cosignVerify(
    _ mode: String, _ registry: TestRegistry, _ repository: String, _ reference: String, key: URL, identity: String
) throws -> ProcessResult {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/servers/cosign_verify.py")
    return try runProcess(
        "/usr/bin/python3",
        [script.path, mode, registry.baseURL.absoluteString, repository, reference, key.path, "--identity", identity])
}

/// `pkcs8` sealed in cosign's encrypted key format with `password` by an independent producer
/// (`Tests/Fixtures/servers/cosign_encrypt_key.py`: hashlib's scrypt and PyNaCl's secretbox).
func cosignEncryptedKey(_ pkcs8: String, password: String, in directory: URL, label: String? = nil) throws -> String {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/servers/cosign_encrypt_key.py")
    let plain = directory.appendingPathComponent("plain-\(UUID().uuidString).pem")
    let sealed = directory.appendingPathComponent("sealed-\(UUID().uuidString).pem")
    try Data(pkcs8.utf8).write(to: plain)
    _ = try runProcess(
        "/usr/bin/python3", [script.path, plain.path, password, sealed.path] + (label.map { ["--label", $0] } ?? [])
    ).checked()
    return try String(contentsOf: sealed, encoding: .utf8)
}

/// JSON text of `value` (PEM keys hold newlines).
func jsonText(_ value: Any) throws -> String {
    String(
        decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]),
        as: UTF8.self)
}

@Suite("signed images: cosign's layout, checked by an independent verifier")
struct SigningTests {
    let app = try! Repository("team/app")

    func source(_ registry: TestRegistry, _ extra: [String: Any] = [:], repository: String = "team/app") -> [String:
        Any]
    {
        var source: [String: Any] = ["repository": "\(registry.host)/\(repository)", "insecure": true, "tag": "dev"]
        source.merge(extra) { _, new in new }
        return source
    }

    /// A build directory with `image/oci` (a fresh image); returns it and the image's digest.
    func makeBuild(_ directory: TemporaryDirectory, _ name: String) throws -> (URL, Digest) {
        let build = directory.appending(name)
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: name + UUID().uuidString)
        return (build, try layout.image().descriptor.digest)
    }

    func put(_ source: [String: Any], _ params: [String: Any], in directory: URL) throws -> ProcessResult {
        try runOut(try jsonText(["source": source, "params": params]), directory: directory)
    }

    func sigLayers(_ registry: TestRegistry, _ digest: Digest, repository: Repository? = nil) throws -> [Descriptor] {
        let tag = try #require(CosignVocabulary.tag(of: .signature, for: digest))
        guard case .image(let manifest) = try registry.client().manifest(repository ?? app, .tag(tag)).decode() else {
            return []
        }
        return manifest.layers
    }

    @Test func outSignsWhatAnIndependentVerifierAcceptsAndOnlyThat() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let other = try TestKeyPair(in: directory.url, name: "other")
                let (build, digest) = try makeBuild(directory, "a")
                let signing = source(registry, ["sign": ["private_key": ours.pkcs8]])
                let pushed = try put(signing, ["image": "image/oci"], in: build)
                #expect(try outVersion(pushed)["digest"] == digest.rawValue)
                #expect(!pushed.stderrString.contains("PRIVATE KEY") && !pushed.stdoutString.contains("PRIVATE KEY"))
                let identity = "\(registry.host)/team/app"

                let accepted = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                #expect(accepted.succeeded, "\(accepted.stdoutString)")
                let otherKey = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: other.publicFile, identity: identity)
                #expect(
                    !otherKey.succeeded && otherKey.stdoutString.contains("does not verify"), "\(otherKey.stdoutString)"
                )
                let otherRepository = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: "\(registry.host)/team/other")
                #expect(
                    !otherRepository.succeeded && otherRepository.stdoutString.contains("names \(identity)"),
                    "\(otherRepository.stdoutString)")

                // The same put again (Concourse retries) adds no second signature by the same key;
                // a put signing with another key (SEC 1 form) appends its own.
                #expect(try put(signing, ["image": "image/oci"], in: build).succeeded)
                #expect(try sigLayers(registry, digest).count == 1)
                #expect(
                    try put(source(registry, ["sign": ["private_key": other.ec]]), ["image": "image/oci"], in: build)
                        .succeeded)
                #expect(try sigLayers(registry, digest).count == 2)
                #expect(
                    try cosignVerify("sig", registry, "team/app", "dev", key: other.publicFile, identity: identity)
                        .succeeded)

                // The tag moved to an image nobody signed: the verifier rejects it.
                let (unsigned, _) = try makeBuild(directory, "b")
                #expect(try put(source(registry), ["image": "image/oci"], in: unsigned).succeeded)
                let moved = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                #expect(!moved.succeeded && moved.stdoutString.contains("has no signature"), "\(moved.stdoutString)")
            }
        }
    }

    @Test func cosignsEncryptedKeySignsWithItsPasswordAndAWrongPasswordIsOneLine() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let password = "correct horse battery staple"
                let sealed = try cosignEncryptedKey(ours.pkcs8, password: password, in: directory.url)
                #expect(sealed.hasPrefix("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"))
                let identity = "\(registry.host)/team/app"

                let (build, digest) = try makeBuild(directory, "a")
                let pushed = try put(
                    source(registry, ["sign": ["private_key": sealed, "password": password]]), ["image": "image/oci"],
                    in: build)
                #expect(try outVersion(pushed)["digest"] == digest.rawValue, "\(pushed.stderrString)")
                let verified = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                #expect(verified.succeeded, "\(verified.stdoutString)")
                #expect(try sigLayers(registry, digest).count == 1)

                // A wrong password, or none for a key sealed with one: refused in one line, before
                // anything is pushed, showing neither the password nor the key.
                let (other, otherDigest) = try makeBuild(directory, "b")
                for sign in [["private_key": sealed, "password": "hunter2"], ["private_key": sealed]] {
                    let refused = try put(source(registry, ["sign": sign]), ["image": "image/oci"], in: other)
                    #expect(refused.status == 1)
                    let expected =
                        sign["password"] == nil
                        ? "source.sign: private_key is encrypted and the empty password does not decrypt it; set source.sign.password"
                        : "source.sign: the password does not decrypt private_key"
                    #expect(refused.stderrString.contains(expected), "\(refused.stderrString)")
                    #expect(refused.stderrString.filter { $0 == "\n" }.count == 1, "\(refused.stderrString)")
                    let output = refused.stderrString + refused.stdoutString
                    #expect(
                        !output.contains("hunter2") && !output.contains(password) && !output.contains("PRIVATE KEY"))
                    #expect(!output.contains(String(sealed.split(separator: "\n")[1].prefix(20))))
                }
                #expect(try registry.client().manifestDescriptor(app, .digest(otherDigest)) == nil)
                // check and in never open the key (scrypt is for out): a check with the same
                // source still works.
                let checked = try runCheck(
                    try jsonText(["source": source(registry, ["sign": ["private_key": sealed, "password": "hunter2"]])])
                )
                #expect(checked.succeeded, "\(checked.stderrString)")

                // cosign's default empty password (COSIGN_PASSWORD=""), given or left out, and the
                // older ENCRYPTED COSIGN PRIVATE KEY label.
                let empty = try cosignEncryptedKey(
                    ours.pkcs8, password: "", in: directory.url, label: "ENCRYPTED COSIGN PRIVATE KEY")
                for sign in [["private_key": empty], ["private_key": empty, "password": ""]] {
                    let (build, digest) = try makeBuild(directory, "c")
                    let signed = try put(source(registry, ["sign": sign]), ["image": "image/oci"], in: build)
                    #expect(try outVersion(signed)["digest"] == digest.rawValue, "\(signed.stderrString)")
                    #expect(
                        try cosignVerify("sig", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                            .succeeded)
                }

                // A password with an unencrypted key is refused in one line.
                let plain = try put(
                    source(registry, ["sign": ["private_key": ours.pkcs8, "password": "hunter2"]]),
                    ["image": "image/oci"], in: other)
                #expect(
                    plain.status == 1
                        && plain.stderrString.contains("source.sign.password: private_key is not encrypted"),
                    "\(plain.stderrString)")
                #expect(!plain.stderrString.contains("hunter2"))
            }
        }
    }

    @Test func aMultiPlatformImageIsSignedAsItsIndex() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let build = directory.appending("multi")
                let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                let amd64 = try ImageFixture.image(
                    in: layout, name: nil, platform: Platform(os: "linux", architecture: "amd64"), seed: "a",
                    addToIndex: false)
                let arm64 = try ImageFixture.image(
                    in: layout, name: nil, platform: Platform(os: "linux", architecture: "arm64", variant: "v8"),
                    seed: "b", addToIndex: false)
                let index = try layout.writeBlob(
                    try CanonicalJSON.encode(ImageIndex(manifests: [amd64, arm64])), mediaType: .ociIndex)
                try layout.addToIndex(index, name: "latest")
                let version = try outVersion(
                    put(source(registry, ["sign": ["private_key": ours.pkcs8]]), ["image": "image/oci"], in: build))
                #expect(version["digest"] == index.digest.rawValue, "the index is what is pushed")
                #expect(try sigLayers(registry, index.digest).count == 1)
                let verified = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: "\(registry.host)/team/app")
                #expect(
                    verified.succeeded && verified.stdoutString.contains(index.digest.rawValue),
                    "\(verified.stdoutString)")
                let verifying = source(registry, ["verify": ["public_keys": [ours.publicPEM]]])
                #expect(
                    try decodeVersions(runCheck(try jsonText(["source": verifying]))) == [
                        ["tag": "dev", "digest": index.digest.rawValue]
                    ])
            }
        }
    }

    /// Source-keyed mode: the immutable tag's image is signed before the floating tags move;
    /// check with require_image and verify counts only signed images as published; in verifies.
    @Test func sourceKeyedPutsAreSignedAndVerified() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let ours = try TestKeyPair(in: directory.url, name: "ours")
                    let other = try TestKeyPair(in: directory.url, name: "other")
                    let remote = try repository.bareClone()
                    let commit = try repository.commit("app", files: ["images/app/Dockerfile": "FROM scratch\n"])
                    try repository.push()
                    let build = directory.appending("b1")
                    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
                    try ImageFixture.image(
                        in: layout, name: "latest", layerCount: 1, seed: "b1",
                        labels: ["org.opencontainers.image.revision": commit])
                    let digest = try layout.image().descriptor.digest
                    func keyed(_ extra: [String: Any]) -> [String: Any] {
                        var source: [String: Any] = [
                            "repository": "\(registry.host)/team/app", "insecure": true,
                            "git": ["uri": remote.url.absoluteString, "branch": "main", "paths": ["images/app/"]],
                        ]
                        source.merge(extra) { _, new in new }
                        return source
                    }
                    let pushed = try put(
                        keyed(["sign": ["private_key": ours.pkcs8]]), ["image": "image/oci"], in: build)
                    let version = try outVersion(pushed)
                    #expect(try JSONSerialization.jsonObject(with: pushed.stdout) is [String: Any])
                    #expect(
                        pushed.stdoutString.contains("sha256-\(digest.encoded).sig"),
                        "metadata names the signature: \(pushed.stdoutString)")
                    let identity = "\(registry.host)/team/app"
                    for tag in [String(commit.prefix(12)), "main"] {
                        let verified = try cosignVerify(
                            "sig", registry, "team/app", tag, key: ours.publicFile, identity: identity)
                        #expect(verified.succeeded, "\(tag): \(verified.stdoutString)")
                    }
                    let required = try decodeVersions(
                        runCheck(
                            try jsonText([
                                "source": keyed(["require_image": true, "verify": ["public_keys": [ours.publicPEM]]])
                            ])))
                    #expect(required == [version])
                    #expect(
                        try decodeVersions(
                            runCheck(
                                try jsonText([
                                    "source": keyed([
                                        "require_image": true, "verify": ["public_keys": [other.publicPEM]],
                                    ])
                                ]))) == [])
                    let refused = try runIn(
                        try jsonText([
                            "source": keyed(["verify": ["public_keys": [other.publicPEM]]]), "version": version,
                            "params": ["source": false],
                        ]),
                        directory: directory.appending("get"))
                    #expect(
                        refused.status == 1 && refused.stderrString.contains(digest.rawValue), "\(refused.stderrString)"
                    )
                    let fetched = try runIn(
                        try jsonText([
                            "source": keyed(["verify": ["public_keys": [ours.publicPEM]]]), "version": version,
                            "params": ["source": false],
                        ]),
                        directory: directory.appending("get2"))
                    #expect(fetched.succeeded, "\(fetched.stderrString)")
                }
            }
        }
    }

    @Test func checkEmitsOnlySignedImagesAndInRefusesTheRestInOneLine() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let other = try TestKeyPair(in: directory.url, name: "other")
                let (signedBuild, signed) = try makeBuild(directory, "signed")
                #expect(
                    try put(
                        source(registry, ["sign": ["private_key": ours.pkcs8]]), ["image": "image/oci"], in: signedBuild
                    ).succeeded)
                let verifying = source(registry, ["verify": ["public_keys": [other.publicPEM, ours.publicPEM]]])
                let wrongKey = source(registry, ["verify": ["public_keys": [other.publicPEM]]])

                #expect(
                    try decodeVersions(runCheck(try jsonText(["source": verifying]))) == [
                        ["tag": "dev", "digest": signed.rawValue]
                    ])
                #expect(try decodeVersions(runCheck(try jsonText(["source": wrongKey]))) == [])
                let get = directory.appending("get")
                let fetched = try runIn(
                    try jsonText(["source": verifying, "version": ["tag": "dev", "digest": signed.rawValue]]),
                    directory: get)
                #expect(fetched.succeeded, "\(fetched.stderrString)")

                let refused = try runIn(
                    try jsonText(["source": wrongKey, "version": ["tag": "dev", "digest": signed.rawValue]]),
                    directory: directory.appending("get2"))
                #expect(refused.status == 1)
                #expect(
                    refused.stderrString.contains(signed.rawValue) && refused.stderrString.contains("does not verify"),
                    "\(refused.stderrString)")
                #expect(refused.stderrString.filter { $0 == "\n" }.count == 1, "\(refused.stderrString)")

                // The tag moves to an unsigned image: check keeps to the signed one, in refuses the new one.
                let (unsignedBuild, unsigned) = try makeBuild(directory, "unsigned")
                #expect(try put(source(registry), ["image": "image/oci"], in: unsignedBuild).succeeded)
                let since = try jsonText(["source": verifying, "version": ["tag": "dev", "digest": signed.rawValue]])
                #expect(try decodeVersions(runCheck(since)) == [["tag": "dev", "digest": signed.rawValue]])
                let unsignedGet = try runIn(
                    try jsonText(["source": verifying, "version": ["tag": "dev", "digest": unsigned.rawValue]]),
                    directory: directory.appending("get3"))
                #expect(unsignedGet.status == 1)
                #expect(unsignedGet.stderrString.contains("\(unsigned) is unsigned"), "\(unsignedGet.stderrString)")
                #expect(
                    !FileManager.default.fileExists(atPath: directory.appending("get3/rootfs").path),
                    "nothing of it is written")

                // A signature copied from another repository names that repository: refused here.
                let elsewhere = try Repository("team/elsewhere")
                let signatures = ImageSignatures(
                    client: try registry.client(), registry: try RegistryHost(registry.host), repository: elsewhere)
                try signatures.sign(unsigned, with: try SigningKey(pem: ours.pkcs8))
                let store = AttachmentStore(client: try registry.client(), repository: elsewhere)
                try AttachmentStore(client: try registry.client(), repository: app).append(
                    try store.layers(.signature, of: unsigned), .signature, of: unsigned)
                let foreign = try runIn(
                    try jsonText(["source": verifying, "version": ["tag": "dev", "digest": unsigned.rawValue]]),
                    directory: directory.appending("get4"))
                #expect(foreign.status == 1)
                #expect(
                    foreign.stderrString.contains("for \(registry.host)/team/elsewhere, another repository"),
                    "\(foreign.stderrString)")

                // A valid signature of another image, copied under this image's .sig tag: refused.
                let (copiedBuild, copied) = try makeBuild(directory, "copied")
                #expect(try put(source(registry, ["tag": "copied"]), ["image": "image/oci"], in: copiedBuild).succeeded)
                let here = AttachmentStore(client: try registry.client(), repository: app)
                try here.append(try here.layers(.signature, of: signed), .signature, of: copied)
                let misplaced = try runIn(
                    try jsonText(["source": verifying, "version": ["tag": "copied", "digest": copied.rawValue]]),
                    directory: directory.appending("get5"))
                #expect(misplaced.status == 1)
                #expect(
                    misplaced.stderrString.contains("a signed payload is for \(signed), another image"),
                    "\(misplaced.stderrString)")
            }
        }
    }

    @Test func attestationsAreSignedDSSEEnvelopesOfTheirImageOnly() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let (build, digest) = try makeBuild(directory, "a")
                let folder = build.appendingPathComponent("image/attestations")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                func statement(_ subject: String, _ predicate: String) throws -> Data {
                    try JSONSerialization.data(withJSONObject: [
                        "_type": "https://in-toto.io/Statement/v1", "predicateType": predicate,
                        "subject": [["name": "\(registry.host)/team/app", "digest": ["sha256": subject]]],
                        "predicate": ["builder": ["id": "test"]],
                    ])
                }
                let signing = source(registry, ["sign": ["private_key": ours.pkcs8]])
                // A statement about another image stops the put before anything is pushed.
                try statement(String(repeating: "ab", count: 32), "https://slsa.dev/provenance/v1").write(
                    to: folder.appendingPathComponent("provenance.intoto.json"))
                let refused = try put(signing, ["image": "image/oci"], in: build)
                #expect(
                    refused.status == 1
                        && refused.stderrString.contains("attestations/provenance.intoto.json is about sha256:abab"),
                    "\(refused.stderrString)")
                #expect(refused.stderrString.filter { $0 == "\n" }.count == 1)
                #expect(try registry.client().manifestDescriptor(app, .digest(digest)) == nil)

                try statement(digest.encoded, "https://slsa.dev/provenance/v1").write(
                    to: folder.appendingPathComponent("provenance.intoto.json"))
                try statement(digest.encoded, "https://spdx.dev/Document").write(
                    to: folder.appendingPathComponent("sbom.intoto.json"))
                #expect(try put(signing, ["image": "image/oci"], in: build).succeeded)
                let verified = try cosignVerify(
                    "att", registry, "team/app", "dev", key: ours.publicFile, identity: "\(registry.host)/team/app")
                #expect(
                    verified.succeeded
                        && verified.stdoutString.contains("https://slsa.dev/provenance/v1 https://spdx.dev/Document"),
                    "\(verified.stdoutString)")
                #expect(try put(signing, ["image": "image/oci"], in: build).succeeded, "a re-run adds nothing")
                let attTag = try #require(CosignVocabulary.tag(of: .attestation, for: digest))
                guard case .image(let att) = try registry.client().manifest(app, .tag(attTag)).decode() else {
                    Issue.record("no .att manifest")
                    return
                }
                #expect(att.layers.count == 2)

                let get = directory.appending("get")
                let fetched = try runIn(
                    try jsonText([
                        "source": source(registry, ["verify": ["public_keys": [ours.publicPEM]]]),
                        "version": ["tag": "dev", "digest": digest.rawValue],
                        "params": ["attestations": true, "image": "skip"],
                    ]), directory: get)
                #expect(fetched.succeeded, "\(fetched.stderrString)")
                let envelope = try JSONDecoder().decode(
                    DSSEEnvelope.self, from: Data(contentsOf: get.appendingPathComponent("attestations/1.dsse.json")))
                #expect(envelope.payloadType == "application/vnd.in-toto+json")
                #expect(
                    FileManager.default.fileExists(atPath: get.appendingPathComponent("attestations/2.dsse.json").path))
            }
        }
    }

    @Test func promotionSignsForTheNewRepositoryAndCarriesTheOldSignatures() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let release = try TestKeyPair(in: directory.url, name: "release")
                let (build, digest) = try makeBuild(directory, "a")
                #expect(
                    try put(source(registry, ["sign": ["private_key": ours.pkcs8]]), ["image": "image/oci"], in: build)
                        .succeeded)
                let promoted = try put(
                    source(registry, ["sign": ["private_key": release.pkcs8]]),
                    ["promote": ["from": "dev", "to": ["1.0.0"], "repository": "\(registry.host)/team/prod"]], in: build
                )
                #expect(promoted.succeeded, "\(promoted.stderrString)")
                let prod = "\(registry.host)/team/prod"
                #expect(
                    try cosignVerify("sig", registry, "team/prod", "1.0.0", key: release.publicFile, identity: prod)
                        .succeeded)
                // The build's signature came along (it names team/app, where it was made).
                #expect(
                    try cosignVerify(
                        "sig", registry, "team/prod", "1.0.0", key: ours.publicFile,
                        identity: "\(registry.host)/team/app"
                    ).succeeded)
                #expect(try sigLayers(registry, digest, repository: try Repository("team/prod")).count == 2)
            }
        }
    }

    @Test func keysAreRefusedInOneLineWithoutShowingThem() throws {
        let encrypted =
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
        for (sign, expected) in [
            (
                ["private_key": encrypted, "password": "hunter2"],
                "source.sign.private_key: the ENCRYPTED SIGSTORE PRIVATE KEY is not cosign's format"
            ),
            (["private_key": "not a key"], "source.sign.private_key: expected a PEM private key"),
            (["password": "hunter2"], "source.sign.private_key"),
        ] {
            let result = try runCheck(
                try jsonText(["source": ["repository": "127.0.0.1:1/team/app", "tag": "dev", "sign": sign]]))
            #expect(result.status == 1)
            #expect(result.stderrString.contains(expected), "\(result.stderrString)")
            #expect(result.stderrString.filter { $0 == "\n" }.count == 1)
            #expect(!result.stderrString.contains("c2VjcmV0") && !result.stderrString.contains("hunter2"))
        }
        // A key given as a string where the object belongs is not echoed either.
        let flat = try runCheck(
            try jsonText(["source": ["repository": "127.0.0.1:1/team/app", "tag": "dev", "sign": encrypted]]))
        #expect(
            flat.status == 1 && flat.stderrString.contains("source.sign") && !flat.stderrString.contains("BEGIN"),
            "\(flat.stderrString)")
        let badPublic = try runCheck(
            try jsonText([
                "source": ["repository": "127.0.0.1:1/team/app", "tag": "dev", "verify": ["public_keys": ["x"]]]
            ]))
        #expect(
            badPublic.stderrString.contains("source.verify.public_keys[0]: expected a PEM public key"),
            "\(badPublic.stderrString)")
    }

    @Test func vocabularyRoundTripsAndThePayloadIsCosignsBytes() throws {
        let digest = Digest.sha256(Data("x".utf8))
        let tag = try #require(CosignVocabulary.tag(of: .signature, for: digest))
        #expect(tag.rawValue == "sha256-\(digest.encoded).sig")
        #expect(CosignVocabulary.attachment(of: tag)?.digest == digest)
        #expect(CosignVocabulary.attachment(of: try Tag("sha256-abc.sig")) == nil)
        #expect(CosignVocabulary.attachment(of: try Tag("latest")) == nil)
        let payload = SimpleSigningPayload(dockerReference: "registry.example/team/app", digest: digest)
        #expect(
            String(decoding: payload.bytes, as: UTF8.self)
                == #"{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":{"docker-manifest-digest":"\#(digest)"},"type":"cosign container image signature"},"optional":null}"#
        )
        #expect(try SimpleSigningPayload(parsing: payload.bytes) == payload)
        #expect(DSSEEnvelope.pae("a/b", Data("hi".utf8)) == Data("DSSEv1 3 a/b 2 hi".utf8))
        // The envelope's wire form, as DSSE's spec and cosign write it, round-trips.
        let golden =
            #"{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"keyid":"","sig":"MEUC"}]}"#
        let envelope = try JSONDecoder().decode(DSSEEnvelope.self, from: Data(golden.utf8))
        #expect(String(decoding: try CanonicalJSON.encode(envelope), as: UTF8.self) == golden)
    }
}

/// The reaper and cosign's tags: they go with their image, never on their own.
@Suite("prune: signatures and attestations follow their image")
struct SigningPruneTests {
    let app = try! Repository("team/app")

    func labelledImage(_ client: RegistryClient, tags: [String], branch: String, revision: String, scratch: URL) throws
        -> Digest
    {
        let layout = try OCILayout.create(at: scratch.appendingPathComponent("layout-\(revision.prefix(8))"))
        let labels = [
            "dev.slipway.branch": branch, "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.created": ISO8601DateFormatter().string(
                from: Date().addingTimeInterval(-30 * 86400)),
        ]
        try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: revision, labels: labels)
        return try ImageTransfer().push(
            try layout.image(named: "latest"), with: client, to: app, tags: try tags.map { try OCI.Tag($0) }
        ).digest
    }

    @Test func theSignaturesOfADeletedImageGoAndAKeptImagesStay() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    let main = try repository.commit("main", files: ["a": "1"])
                    try repository.branch("feat/gone", checkout: true)
                    let gone = try repository.commit("gone", files: ["b": "1"])
                    try repository.checkout("main")
                    let remote = try repository.bareClone()
                    try repository.push()
                    _ = try repository.git("push", "--quiet", "origin", "--delete", "feat/gone")
                    let client = try registry.client()
                    let goneDigest = try labelledImage(
                        client, tags: [String(gone.prefix(12)), "feat-gone"], branch: "feat/gone", revision: gone,
                        scratch: directory.url)
                    let mainDigest = try labelledImage(
                        client, tags: [String(main.prefix(12)), "main"], branch: "main", revision: main,
                        scratch: directory.url)
                    let keys = try TestKeyPair(in: directory.url, name: "k")
                    let key = try SigningKey(pem: keys.pkcs8)
                    let signatures = ImageSignatures(
                        client: client, registry: try RegistryHost(registry.host), repository: app)
                    for digest in [goneDigest, mainDigest] {
                        try signatures.sign(digest, with: key)
                        let statement = try JSONSerialization.data(withJSONObject: [
                            "_type": "https://in-toto.io/Statement/v1",
                            "predicateType": "https://slsa.dev/provenance/v1",
                            "subject": [["name": "x", "digest": ["sha256": digest.encoded]]], "predicate": [:],
                        ])
                        try signatures.attest(digest, statements: [("p.intoto.json", statement)], with: key)
                    }
                    func exists(_ kind: CosignVocabulary.Attachment, _ digest: Digest) throws -> Bool {
                        try client.manifestDescriptor(app, .tag(#require(CosignVocabulary.tag(of: kind, for: digest))))
                            != nil
                    }

                    let request =
                        #"{"source":{"repository":"\#(registry.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"},"tags":["{short_ref}","{branch}"]},"params":{"prune":{"dry_run":false}}}"#
                    let result = try runOut(request, directory: directory.url)
                    #expect(result.succeeded, "\(result.stderrString)")
                    #expect(try client.manifestDescriptor(app, .digest(goneDigest)) == nil)
                    #expect(
                        try !exists(.signature, goneDigest) && !exists(.attestation, goneDigest),
                        "they went with their image")
                    #expect(
                        try exists(.signature, mainDigest) && exists(.attestation, mainDigest),
                        "a kept image keeps them")
                    #expect(
                        result.stderrString.contains("the signatures of \(goneDigest.rawValue.prefix(19))"),
                        "\(result.stderrString)")
                }
            }
        }
    }

    @Test func plannerNeverSelectsCosignTagsOnTheirOwn() throws {
        let image = Digest.sha256(Data("image".utf8))
        let kept = Digest.sha256(Data("kept".utf8))
        let commit = String(repeating: "f", count: 40)
        let mainCommit = String(repeating: "a", count: 40)
        func state(_ tag: String, _ digest: Digest, branch: String? = nil, revision: String? = nil) throws
            -> PrunePlanner.TagState
        {
            PrunePlanner.TagState(
                tag: try Tag(tag), digest: digest, branch: branch, revision: revision,
                created: Date(timeIntervalSince1970: 0))
        }
        var options = PrunePlanner.Options()
        options.dryRun = false
        let planner = PrunePlanner(templates: try [TagTemplate("{short_ref}")], options: options, now: Date())
        let sig = try #require(CosignVocabulary.tag(of: .signature, for: image)).rawValue
        let keptSig = try #require(CosignVocabulary.tag(of: .signature, for: kept)).rawValue
        let plan = planner.plan(
            [
                try state(String(commit.prefix(12)), image, branch: "gone", revision: commit),
                try state(String(mainCommit.prefix(12)), kept, branch: "main", revision: mainCommit),
                try state(sig, Digest.sha256(Data("sig".utf8))),
                try state(keptSig, Digest.sha256(Data("kept sig".utf8))),
            ],
            live: ["main"])
        #expect(plan.delete.map(\.digest) == [image])
        #expect(plan.attachments.map(\.tag.rawValue) == [sig])
        #expect(
            plan.kept.map(\.rawValue) == [String(mainCommit.prefix(12))], "a cosign tag is not a version, kept or not")
    }
}
