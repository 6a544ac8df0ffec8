import BuildContext
import Console
import Foundation
import ImageLayout
import OCI
import Registry
import Transfer

/// `SKIP_IF_PUBLISHED=<repository>`: images published under their inputs digest, so
/// identical inputs on many branches build once.
///
/// After a build, build-task pushes the image to that repository as `inputs-<hex>`, the
/// inputs digest's hex (``SlipwayVocabulary/cacheTag(_:)``, which `out` uses too when it
/// pushes a labelled image): a content-addressed cache tag, found again with one HEAD request. A
/// later run with the same inputs finds it and writes it to `image/` instead of building.
/// The lookup happens before the lock and again once the lock is held, so builds of the
/// same inputs that waited on each other build once.
struct PublishedImages {
    let repository: ImageReference
    let client: RegistryClient
    let log: Log

    /// The cache tag of `inputs`, `inputs-<hex>`. An inputs digest is SHA-256 (``BuildInputs``),
    /// whose cache tag always fits; any other is refused rather than given another tag.
    static func tag(_ inputs: Digest) throws -> Tag {
        guard let tag = SlipwayVocabulary.cacheTag(inputs) else {
            throw BuildError(
                .unsupported, "the inputs digest \(inputs) has no cache tag (only a SHA-256 digest fits in a tag)")
        }
        return tag
    }

    /// The cache tag of `inputs` for a message, or the digest itself when it has none.
    static func describe(_ inputs: Digest) -> String {
        SlipwayVocabulary.cacheTag(inputs)?.rawValue ?? inputs.rawValue
    }

    /// The published image with these inputs, or nil.
    func find(_ inputs: Digest) throws -> Descriptor? {
        try client.manifestDescriptor(repository.repository, .tag(try Self.tag(inputs)))
    }

    /// Publishes `image` under its inputs tag.
    func publish(_ image: LayoutImage, inputs: Digest) throws {
        let report = try ImageTransfer(log: log, progress: ProgressReporter(log: log)).push(
            image, with: client, to: repository.repository, tags: [try Self.tag(inputs)])
        log.info("published \(repository.name):\(Self.describe(inputs)) (\(report.digest)) for SKIP_IF_PUBLISHED")
    }

    /// Writes the published image to `output/oci` (every platform) and returns it. The
    /// layout's `index.json` entry carries `org.opencontainers.image.revision` for the commit
    /// of this run, which `out` prefers to the config's label (the commit that first built it).
    func fetch(_ descriptor: Descriptor, into directory: URL, revision: String?) throws -> LayoutImage {
        let layout = try OCILayout.create(at: directory)
        let image = try ImageTransfer(log: log, progress: ProgressReporter(log: log)).pull(
            repository.repository, descriptor.digest, with: client, into: layout, platforms: .all)
        var entry = image.descriptor
        entry.annotations = [OCILayout.refName: "latest"]
        if let revision { entry.annotations?[SlipwayVocabulary.revisionLabel] = revision }
        try layout.writeIndex(ImageIndex(manifests: [entry]))
        return try layout.image(named: "latest")
    }
}
