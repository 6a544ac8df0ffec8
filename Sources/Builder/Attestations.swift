import Foundation
import ImageLayout
import OCI
import Spawn

/// `attestations/` in `image/`: in-toto Statements about the image in `oci/`, whose subject
/// is the image's digest (the index's for several platforms, as in `digest`). `out` signs
/// and attaches them; build-task only writes them.
extension ImageBuild {
    static let attestationsDirectory = "attestations"
    static let provenanceFile = "provenance.intoto.json"
    static let sbomFile = "sbom.intoto.json"

    /// The subject every statement of this run names: the repository the image is for (`--tag`,
    /// else `SKIP_IF_PUBLISHED`), else the name `image.tar` gives it.
    func attestationSubject(_ image: LayoutImage) -> StatementSubject {
        let name =
            (configuration.tag ?? configuration.skipIfPublished).map(\.name) ?? String(repoTag.prefix { $0 != ":" })
        return .init(name: name, digest: [image.descriptor.digest.algorithm: image.descriptor.digest.encoded])
    }

    /// Writes `provenance.intoto.json` and `sbom.intoto.json`; `builder` nil: a reused image.
    func writeAttestations(image: LayoutImage, run: Run, builder: Producer?, output: URL) throws {
        let directory = output.appendingPathComponent(Self.attestationsDirectory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let subject = attestationSubject(image)
        let buildahVersion: String? = if case .buildah = builder { self.buildahVersion() } else { nil }
        let builderName =
            switch builder {
            case .none: "reused"
            case .assemble: "assembler"
            case .buildah: "buildah" + (buildahVersion.map { " " + $0 } ?? "")
            }
        let secretTexts = configuration.secrets.compactMap { secret -> String? in
            if case .text(let text) = secret.source { return text.value }
            return nil
        }
        let imageArgs = Dictionary(
            uniqueKeysWithValues: configuration.imageArgs.keys.map { name in
                (
                    name,
                    run.bases.bases.first { $0.reference == "image-arg:\(name)" }.flatMap(\.name) ?? "image-arg:\(name)"
                )
            })
        let facts = Provenance.Facts(
            subject: subject, context: configuration.context, dockerfile: configuration.dockerfile,
            target: configuration.target,
            buildArgs: configuration.buildArgs, imageArgs: imageArgs,
            platforms: configuration.platforms.map(\.description),
            labels: configuration.labels, secretTexts: secretTexts, revision: run.source.revision,
            origin: run.source.origin,
            branch: run.source.branch, bases: run.bases.bases, inputs: run.inputs, builder: builderName,
            buildahVersion: buildahVersion,
            reused: builder == nil, invocationID: UUID().uuidString.lowercased(), started: run.started, finished: Date()
        )
        try Self.writeJSON(
            Provenance.statement(facts), to: directory.appendingPathComponent(Self.provenanceFile),
            secretTexts: secretTexts)

        let files = try SBOM.contextFiles(
            Self.inputs(configuration, bases: run.bases), stages: run.bases.assemblyStages.first?.stages,
            values: configuration.buildArgs)
        let scans: [SBOM.PlatformScan]
        do { scans = try SBOM.scan(image) } catch {
            throw BuildError(.unreadableFile, "cannot read the package databases of the image for its SBOM: \(error)")
        }
        let document = SBOM.document(
            subject: subject, repository: (configuration.tag ?? configuration.skipIfPublished)?.name,
            digest: image.descriptor.digest, scans: scans,
            bases: run.bases.bases, files: files, created: Date())
        let sbom = InTotoStatement(subject: [subject], predicateType: SPDXDocument.predicateType, predicate: document)
        try Self.writeJSON(sbom, to: directory.appendingPathComponent(Self.sbomFile), secretTexts: secretTexts)
    }

    /// `buildah --version`'s number ("buildah version 1.28.2 (image-spec …)" → "1.28.2").
    func buildahVersion() -> String? {
        guard let result = try? runner.run(Command("buildah", ["--version"])), result.succeeded else { return nil }
        let words = result.outputText.split(separator: " ")
        guard let index = words.firstIndex(of: "version"), index + 1 < words.count else { return nil }
        return String(words[index + 1]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A secret text shorter than this is not looked for in a whole document: it would be
    /// found by chance in a digest or a package name and fail builds for nothing.
    static let shortestSecretLookedFor = 6

    /// Canonical JSON, refused if a secret text got into it by any way not foreseen.
    static func writeJSON(_ value: some Encodable, to file: URL, secretTexts: [String]) throws {
        let data = try CanonicalJSON.encode(value)
        let text = String(decoding: data, as: UTF8.self)
        if secretTexts.contains(where: { $0.count >= shortestSecretLookedFor && text.contains($0) }) {
            throw BuildError(
                .secretInOutput,
                "\(file.lastPathComponent) would hold the value of a BUILDKIT_SECRETTEXT_* secret; not written (is the secret also a build arg, label or file name?)"
            )
        }
        try data.write(to: file, options: .atomic)
    }
}
