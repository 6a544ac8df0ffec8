import Foundation
import OCI

/// The SLSA provenance `build-task` writes beside each image (`attestations/provenance.intoto.json`).
///
/// Recorded: the Dockerfile (relative to the context), target, platforms, labels, build args
/// (values only for names that do not look secret), image args, the context's commit and
/// origin, each base by digest, the inputs digest, the builder and the run's times.
/// Never recorded: `BUILDKIT_SECRET_*` / `BUILDKIT_SECRETTEXT_*` (not their ids, paths or
/// values), registry or lock credentials; a value holding a secret text is redacted wherever it is.
enum Provenance {
    /// What a `build-task` provenance's `buildDefinition` means (documented in docs/reference.md).
    static let buildType = "https://slipway.dev/build-task/v1"
    static let builderID = "https://slipway.dev/build-task"
    /// Slipway has no release numbering yet: this names the build format the documents follow.
    static let slipwayVersion = "1"

    /// Build args recorded by name only: a name with one of these words may carry a credential.
    static let secretWords = ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL", "AUTH"]

    static func looksSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return secretWords.contains { upper.contains($0) }
    }

    /// What the run knew, for ``statement(_:)``.
    struct Facts {
        var subject: StatementSubject
        var context: URL
        var dockerfile: URL
        var target: String?
        var buildArgs: [String: String]
        var imageArgs: [String: String]
        var platforms: [String]
        var labels: [String: String]
        /// Secret texts: any value holding one is redacted.
        var secretTexts: [String]
        var revision: String?
        var origin: String?
        var branch: String?
        var bases: [BaseImage]
        var inputs: Digest
        var builder: String
        var buildahVersion: String?
        var reused: Bool
        var invocationID: String?
        var started: Date
        var finished: Date
    }

    static func statement(_ facts: Facts) -> InTotoStatement<SLSAProvenance> {
        func holdsSecret(_ value: String) -> Bool { facts.secretTexts.contains { !$0.isEmpty && value.contains($0) } }
        var buildArgs: [String: String] = [:]
        var redacted: [String] = []
        for (name, value) in facts.buildArgs {
            if looksSecret(name) || holdsSecret(value) { redacted.append(name) } else { buildArgs[name] = value }
        }
        let labels = facts.labels.filter { !holdsSecret($0.value) }
        let external = SLSAProvenance.ExternalParameters(
            dockerfile: relativePath(facts.dockerfile, to: facts.context), target: facts.target, buildArgs: buildArgs,
            redactedBuildArgs: redacted.sorted(), imageArgs: facts.imageArgs, platforms: facts.platforms, labels: labels
        )

        var dependencies: [ResourceDescriptor] = []
        if let revision = facts.revision {
            dependencies.append(
                ResourceDescriptor(
                    uri: facts.origin.map { "git+" + $0 + (facts.branch.map { "@refs/heads/" + $0 } ?? "") },
                    digest: ["gitCommit": revision], name: "context"))
        }
        for base in facts.bases {
            dependencies.append(
                ResourceDescriptor(
                    uri: base.name.flatMap { SBOM.dockerPURL($0, digest: base.digest) },
                    digest: [base.digest.algorithm: base.digest.encoded],
                    name: base.reference))
        }
        dependencies.append(
            ResourceDescriptor(uri: nil, digest: [facts.inputs.algorithm: facts.inputs.encoded], name: "slipway-inputs")
        )

        var versions = ["slipway": slipwayVersion]
        if let buildah = facts.buildahVersion { versions["buildah"] = buildah }
        let formatter = ISO8601DateFormatter()
        let predicate = SLSAProvenance(
            buildDefinition: .init(
                buildType: buildType, externalParameters: external,
                internalParameters: .init(builder: facts.builder, inputs: facts.inputs.rawValue, reused: facts.reused),
                resolvedDependencies: dependencies),
            runDetails: .init(
                builder: .init(id: builderID, version: versions),
                metadata: .init(
                    invocationId: facts.invocationID, startedOn: formatter.string(from: facts.started),
                    finishedOn: formatter.string(from: max(facts.finished, facts.started)))))
        return InTotoStatement(
            subject: [facts.subject], predicateType: SLSAProvenance.predicateType, predicate: predicate)
    }

    /// `file` relative to `directory` when inside it, else its absolute path.
    static func relativePath(_ file: URL, to directory: URL) -> String {
        let base = directory.standardizedFileURL.path
        let path = file.standardizedFileURL.path
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
