import Foundation
import ImageLayout
import OCI
import Registry
import Signing
import TestSupport
import Testing
import Transfer

@testable import Resource

/// Signatures and attestations as OCI 1.1 referrers, where the registry has the API: a real
/// docker-registry behind `referrers_registry.py`, which adds the API and checks what it gets.
/// The registry alone (no API) is the fallback the other signing tests cover.
@Suite("signed images: OCI 1.1 referrers where the registry has them")
struct ReferrersTests {
    let app = try! Repository("team/app")

    func source(_ front: ReferrersRegistry, _ extra: [String: Any] = [:]) -> [String: Any] {
        var source: [String: Any] = ["repository": "\(front.host)/team/app", "insecure": true, "tag": "dev"]
        source.merge(extra) { _, new in new }
        return source
    }

    /// A build directory with `image/oci` and two in-toto statements about its image.
    func makeBuild(_ directory: TemporaryDirectory, _ name: String) throws -> (URL, Digest) {
        let build = directory.appending(name)
        let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
        try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: name + UUID().uuidString)
        let digest = try layout.image().descriptor.digest
        let folder = build.appendingPathComponent("image/attestations")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, predicate) in [
            ("provenance", "https://slsa.dev/provenance/v1"), ("sbom", "https://spdx.dev/Document"),
        ] {
            try JSONSerialization.data(withJSONObject: [
                "_type": "https://in-toto.io/Statement/v1", "predicateType": predicate,
                "subject": [["name": "app", "digest": ["sha256": digest.encoded]]],
                "predicate": ["builder": ["id": "test"]],
            ]).write(to: folder.appendingPathComponent("\(file).intoto.json"))
        }
        return (build, digest)
    }

    func put(_ source: [String: Any], in directory: URL) throws -> ProcessResult {
        try runOut(try jsonText(["source": source, "params": ["image": "image/oci"]]), directory: directory)
    }

    /// The manifest under cosign's tag for `kind` of `digest`, read from the registry itself.
    func tagged(_ registry: TestRegistry, _ kind: CosignVocabulary.Attachment, _ digest: Digest) throws
        -> ImageManifest?
    {
        let tag = try #require(CosignVocabulary.tag(of: kind, for: digest))
        guard try registry.client().manifestDescriptor(app, .tag(tag)) != nil,
            case .image(let manifest) = try registry.client().manifest(app, .tag(tag)).decode()
        else { return nil }
        return manifest
    }

    @Test func signingRecordsAReferrerOfTheImageCarryingTheSignature() async throws {
        try await withTestRegistry(.open) { registry in
            try await withReferrersRegistry(upstream: registry.baseURL) { front in
                try withTemporaryDirectory { directory in
                    let ours = try TestKeyPair(in: directory.url, name: "ours")
                    let (build, digest) = try makeBuild(directory, "a")
                    let pushed = try put(source(front, ["sign": ["private_key": ours.pkcs8]]), in: build)
                    #expect(pushed.succeeded, "\(pushed.stderrString)")
                    #expect(pushed.stderrString.contains("has the OCI referrers API"), "\(pushed.stderrString)")
                    let refusals = try front.refusals()
                    #expect(refusals.isEmpty, "\(refusals)")

                    // cosign's tag scheme is still written, and verifies independently.
                    let verified = try cosignVerify(
                        "sig", registry, "team/app", "dev", key: ours.publicFile, identity: "\(front.host)/team/app")
                    #expect(verified.succeeded, "\(verified.stdoutString)")
                    #expect(
                        try cosignVerify(
                            "att", registry, "team/app", "dev", key: ours.publicFile, identity: "\(front.host)/team/app"
                        ).succeeded)

                    let referrers = try front.referrers().filter { $0.subject == digest.rawValue }
                    #expect(
                        Set(referrers.map(\.artifactType)) == [
                            "application/vnd.dev.cosign.artifact.sig.v1+json",
                            "application/vnd.dev.cosign.artifact.att.v1+json",
                        ])
                    for (kind, referrer) in [
                        (CosignVocabulary.Attachment.signature, referrers.first { $0.artifactType.contains(".sig.") }),
                        (.attestation, referrers.first { $0.artifactType.contains(".att.") }),
                    ] {
                        let referrer = try #require(referrer)
                        guard
                            case .image(let manifest) = try registry.client().manifest(
                                app, .digest(try Digest(referrer.digest))
                            ).decode()
                        else {
                            Issue.record("the referrer is not an image manifest")
                            continue
                        }
                        #expect(manifest.subject?.digest == digest)
                        #expect(manifest.config.mediaType == .ociEmpty && manifest.config.size == 2)
                        #expect(
                            manifest.layers == (try tagged(registry, kind, digest))?.layers,
                            "the referrer carries the \(kind.rawValue) tag's layers")
                    }

                    // A re-run adds nothing, so no new referrer either.
                    #expect(try put(source(front, ["sign": ["private_key": ours.pkcs8]]), in: build).succeeded)
                    #expect(try front.referrers().filter { $0.subject == digest.rawValue }.count == 2)
                }
            }
        }
    }

    @Test func verificationAndAttestationsAreFoundThroughReferrersWhenTheTagsAreGone() async throws {
        try await withTestRegistry(.open) { registry in
            try await withReferrersRegistry(upstream: registry.baseURL) { front in
                try withTemporaryDirectory { directory in
                    let ours = try TestKeyPair(in: directory.url, name: "ours")
                    let (build, digest) = try makeBuild(directory, "a")
                    #expect(try put(source(front, ["sign": ["private_key": ours.pkcs8]]), in: build).succeeded)
                    let client = try registry.client()
                    for kind in CosignVocabulary.Attachment.allCases {
                        let tag = try #require(CosignVocabulary.tag(of: kind, for: digest))
                        let head = try #require(try client.manifestDescriptor(app, .tag(tag)))
                        try client.deleteManifest(app, head.digest)
                        #expect(try tagged(registry, kind, digest) == nil)
                    }
                    let verifying = source(front, ["verify": ["public_keys": [ours.publicPEM]]])
                    let checked = try runCheck(try jsonText(["source": verifying]))
                    #expect(
                        try decodeVersions(checked) == [["tag": "dev", "digest": digest.rawValue]],
                        "\(checked.stderrString)")
                    let get = directory.appending("get")
                    let fetched = try runIn(
                        try jsonText([
                            "source": verifying, "version": ["tag": "dev", "digest": digest.rawValue],
                            "params": ["attestations": true, "image": "skip"],
                        ]), directory: get)
                    #expect(fetched.succeeded, "\(fetched.stderrString)")
                    let envelope = try JSONDecoder().decode(
                        DSSEEnvelope.self,
                        from: Data(contentsOf: get.appendingPathComponent("attestations/1.dsse.json")))
                    #expect(envelope.payloadType == "application/vnd.in-toto+json")
                    #expect(
                        FileManager.default.fileExists(
                            atPath: get.appendingPathComponent("attestations/2.dsse.json").path))

                    // The same registry without the API: the signature is gone with its tag.
                    var direct = verifying
                    direct["repository"] = "\(registry.host)/team/app"
                    let directCheck = try runCheck(try jsonText(["source": direct]))
                    #expect(
                        try decodeVersions(directCheck).isEmpty && directCheck.stderrString.contains("is unsigned"),
                        "\(directCheck.stderrString)")
                }
            }
        }
    }

    @Test func pruneDeletesTheReferrersOfADeletedImage() async throws {
        try await withTestRegistry(.open) { registry in
            try await withReferrersRegistry(upstream: registry.baseURL) { front in
                try await withTestGitRepository { repository in
                    try withTemporaryDirectory { directory in
                        let main = try repository.commit("main", files: ["a": "1"])
                        try repository.branch("feat/gone", checkout: true)
                        let gone = try repository.commit("gone", files: ["b": "1"])
                        try repository.checkout("main")
                        let remote = try repository.bareClone()
                        try repository.push()
                        _ = try repository.git("push", "--quiet", "origin", "--delete", "feat/gone")
                        let client = try RegistryClient(
                            host: RegistryHost(front.host), credentialLookup: nil, insecure: true)
                        let images = SigningPruneTests()
                        let goneDigest = try images.labelledImage(
                            client, tags: [String(gone.prefix(12)), "feat-gone"], branch: "feat/gone", revision: gone,
                            scratch: directory.url)
                        let mainDigest = try images.labelledImage(
                            client, tags: [String(main.prefix(12)), "main"], branch: "main", revision: main,
                            scratch: directory.url)
                        let key = try SigningKey(pem: try TestKeyPair(in: directory.url, name: "k").pkcs8)
                        let signatures = ImageSignatures(
                            client: client, registry: try RegistryHost(front.host), repository: app)
                        for digest in [goneDigest, mainDigest] { try signatures.sign(digest, with: key) }
                        let goneReferrers = try front.referrers().filter { $0.subject == goneDigest.rawValue }
                        #expect(goneReferrers.count == 1)

                        let request =
                            #"{"source":{"repository":"\#(front.host)/team/app","insecure":true,"git":{"uri":"\#(remote.url.absoluteString)","branch":"main"},"tags":["{short_ref}","{branch}"]},"params":{"prune":{"dry_run":false}}}"#
                        let result = try runOut(request, directory: directory.url)
                        #expect(result.succeeded, "\(result.stderrString)")
                        #expect(try client.manifestDescriptor(app, .digest(goneDigest)) == nil)
                        for referrer in goneReferrers {
                            #expect(
                                try registry.client().manifestDescriptor(app, .digest(try Digest(referrer.digest)))
                                    == nil, "the referrer went with its image")
                        }
                        #expect(try front.referrers().filter { $0.subject == goneDigest.rawValue }.isEmpty)
                        #expect(
                            try front.referrers().filter { $0.subject == mainDigest.rawValue }.count == 1,
                            "a kept image keeps its referrer")
                        #expect(
                            result.stderrString.contains("removed 1 referrer(s) of \(goneDigest.rawValue.prefix(19))"),
                            "\(result.stderrString)")
                    }
                }
            }
        }
    }

    /// The endpoint itself: nil (no API) from distribution 2.8, the filtered list from the
    /// front, with the `+` of `…+json` types sent encoded so the filter is not read as a space.
    @Test func theClientListsReferrersOnlyWhereTheRegistryHasTheAPI() async throws {
        try await withTestRegistry(.open) { registry in
            try await withReferrersRegistry(upstream: registry.baseURL) { front in
                try withTemporaryDirectory { directory in
                    let ours = try TestKeyPair(in: directory.url, name: "ours")
                    let (build, digest) = try makeBuild(directory, "a")
                    #expect(try put(source(front, ["sign": ["private_key": ours.pkcs8]]), in: build).succeeded)
                    #expect(try registry.client().referrers(app, of: digest) == nil)
                    let client = try RegistryClient(
                        host: RegistryHost(front.host), credentialLookup: nil, insecure: true)
                    #expect(try client.referrers(app, of: digest)?.count == 2)
                    let signatures = try #require(
                        try client.referrers(
                            app, of: digest, artifactType: CosignVocabulary.artifactType(of: .signature)))
                    #expect(signatures.map(\.artifactType) == [CosignVocabulary.artifactType(of: .signature)])
                    #expect(
                        try client.referrers(app, of: .sha256(Data("nothing".utf8)))?.isEmpty == true,
                        "no referrers is an empty index, not nil")
                }
            }
        }
    }
}
