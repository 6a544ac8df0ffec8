import Foundation
import OCI
import TestSupport
import Testing

extension SigningTests {
    /// build-task → put with `sign`, as a pipeline runs them: the provenance and SBOM that
    /// build-task wrote beside the image are attached as signed attestations of exactly the
    /// pushed image, and the image's signature verifies, both by the independent verifier.
    @Test func aBuiltImagesProvenanceAndSBOMArePutAsSignedAttestations() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let ours = try TestKeyPair(in: directory.url, name: "ours")
                let context = directory.appending("context")
                try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
                try Data("FROM scratch\nCOPY hello /hello\n".utf8).write(
                    to: context.appendingPathComponent("Dockerfile"))
                try Data("hello\n".utf8).write(to: context.appendingPathComponent("hello"))
                let build = directory.appending("build")
                let built = try runProcess(
                    try builtProduct("build-task").path, [],
                    environment: [
                        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory.url.path, "CONTEXT": context.path,
                        "OUTPUT": build.appendingPathComponent("image").path,
                        "CACHE": build.appendingPathComponent("cache").path,
                    ], currentDirectory: build.deletingLastPathComponent())
                try #require(built.succeeded, "\(built.stderrString)")
                let digest = try String(contentsOf: build.appendingPathComponent("image/digest"), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)

                let put = try self.put(
                    source(registry, ["sign": ["private_key": ours.pkcs8]]), ["image": "image/oci"], in: build)
                #expect(try outVersion(put) == ["tag": "dev", "digest": digest])
                let identity = "\(registry.host)/team/app"
                let signature = try cosignVerify(
                    "sig", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                #expect(signature.succeeded, "\(signature.stdoutString)")
                let attestations = try cosignVerify(
                    "att", registry, "team/app", "dev", key: ours.publicFile, identity: identity)
                #expect(attestations.succeeded, "\(attestations.stdoutString)")
                #expect(attestations.stdoutString.contains("https://slsa.dev/provenance/v1"))
                #expect(attestations.stdoutString.contains("https://spdx.dev/Document"))
            }
        }
    }
}
