import BuildContext
import Console
import Foundation
import GitSource
import HTTP
import OCI
import Registry

/// `track_base`: the base images of a commit's Dockerfile, resolved in their
/// registries and summarised in one digest (``BaseSummary``), which becomes the version's
/// `base`. A base that moves with no commit is then a new version, and the image built
/// from it a new immutable tag (`{short_ref}-{short_base}`).
///
/// Each base is resolved to the digest its tag has (the index digest of a multi-platform
/// base). The source's credentials go only to the source's own registry (the Dockerfile is
/// repository content and may name any host): another registry gets its Docker config entry,
/// if any, or nothing. `insecure` and `ca_certs` apply to every registry.
struct BaseTracker {
    let trackBase: SourceKeyed.TrackBase
    let source: Source
    let retry: RetryPolicy
    let log: Log

    /// The bases of the Dockerfile at `commit`, by reference as `FROM` writes them.
    /// `resolved` remembers them by Dockerfile text: commits that did not touch it cost no
    /// registry request.
    func bases(at commit: GitCommitID, detector: ChangeDetector, resolved: inout [String: [String: Digest]]) throws
        -> [String: Digest]
    {
        guard let data = try detector.file(trackBase.dockerfile, at: commit) else {
            throw InputError(
                "source.track_base: \(trackBase.dockerfile) does not exist at commit \(commit.short); set track_base.dockerfile"
            )
        }
        let text = String(decoding: data, as: UTF8.self)
        if let known = resolved[text] { return known }
        let bases = try bases(of: text)
        resolved[text] = bases
        return bases
    }

    func bases(at commit: GitCommitID, detector: ChangeDetector) throws -> [String: Digest] {
        var resolved: [String: [String: Digest]] = [:]
        return try bases(at: commit, detector: detector, resolved: &resolved)
    }

    func bases(of text: String) throws -> [String: Digest] {
        let stages: DockerfileStages
        do { stages = try DockerfileStages(text, buildArgs: trackBase.buildArgs) } catch {
            throw InputError("source.track_base: \(trackBase.dockerfile): \(error)")
        }
        var result: [String: Digest] = [:]
        var clients: [RegistryHost: RegistryClient] = [:]
        for written in stages.externalBases {
            let reference: ImageReference
            do { reference = try ImageReference(written) } catch {
                throw InputError("source.track_base: FROM \(written): \(error)")
            }
            if let digest = reference.digest {
                result[written] = digest
                continue
            }
            let client =
                try clients[reference.registry]
                ?? {
                    if reference.registry == source.registry { return try source.client(log: log, retry: retry) }
                    return try RegistryClient(
                        host: reference.registry, insecure: source.insecure, caCertificates: source.caCertificates,
                        retry: retry, log: log)
                }()
            clients[reference.registry] = client
            guard let found = try client.manifestDescriptor(reference.repository, reference.reference) else {
                throw InputError(
                    "source.track_base: the base image \(written) does not exist (\(reference) was not found in its registry)"
                )
            }
            result[written] = found.digest
        }
        return result
    }
}
