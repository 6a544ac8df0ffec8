import Archive
import BuildContext
import Console
import Foundation
import ImageLayout
import OCI
import Registry

/// A base image of a build, resolved to the exact digest the build uses.
public struct BaseImage: Sendable, Equatable {
    /// How the inputs digest names it: the reference `FROM` gives after `ARG` substitution,
    /// or `image-arg:<name>` for an `IMAGE_ARG_<name>` directory (whose path varies by run).
    public var reference: String
    /// The fully qualified name for `org.opencontainers.image.base.name`; nil for an image
    /// arg whose directory names no repository (its reference is unknown).
    public var name: String?
    public var digest: Digest
    /// The digest its reference had in the registry (an index's own digest), for ``BaseSummary``.
    public var summaryDigest: Digest? = nil

    static let nameKey = "org.opencontainers.image.base.name"
    static let digestKey = "org.opencontainers.image.base.digest"

    /// The `org.opencontainers.image.base.*` keys of an image built on `base` (none for
    /// scratch; no name when it is unknown), for its config's labels and its manifests'
    /// annotations alike, so the two never disagree.
    static func keys(_ base: BaseImage?) -> [String: String] {
        guard let base else { return [:] }
        var keys = [digestKey: base.digest.rawValue]
        if let name = base.name { keys[nameKey] = name }
        return keys
    }

    /// A built manifest's annotations with buildah's base keys (the temporary link it read an
    /// image arg through, the digest of its local copy, or ones inherited from the base's own
    /// manifest) replaced by the image's base labels (``keys(_:)``, or a `LABEL_*` that overrides them).
    static func annotations(_ annotations: [String: String], labels: [String: String]) -> [String: String] {
        let isBaseKey = { (key: String) in key == nameKey || key == digestKey }
        return annotations.filter { !isBaseKey($0.key) }.merging(labels.filter { isBaseKey($0.key) }) { $1 }
    }
}

/// The bases of a build and the Dockerfile buildah is given.
///
/// Each external `FROM` (not `scratch`, not an earlier stage), once `ARG` defaults and build
/// args are applied, is resolved in its registry to a digest: the manifest for the build's
/// platform when the base is an index and one platform is built, else the index. The
/// Dockerfile handed to buildah names `repository@digest` instead, so the image is built
/// from exactly the bases its inputs digest and labels name, even if a tag moves meanwhile.
///
/// `IMAGE_ARG_<name>=<dir>` gives a base from a get directory (our `in`, registry-image or
/// oci-build-task output: an OCI layout, `oci/`, or `image.tar` as OCI or docker archive):
/// the build arg `<name>` becomes buildah's `oci:`/`oci-archive:`/`docker-archive:`
/// reference to it, so `FROM ${name}` reads it from disk with no registry access.
struct BaseResolution {
    var bases: [BaseImage]
    /// The bases by the reference `FROM` wrote, for build.json.
    var baseDigests: [String: Digest] {
        Dictionary(bases.map { ($0.reference, $0.digest) }, uniquingKeysWith: { first, _ in first })
    }
    /// The base of the stage the build ends with, for the base labels (nil: scratch).
    var final: BaseImage?
    /// The build args for buildah: the configured ones plus the image args' references.
    var buildArgs: [String: String]
    /// The Dockerfile to build: the pinned copy, or the original when nothing was pinned.
    var dockerfile: URL
    /// Registries buildah pulls from, for its auth file.
    var hosts: [RegistryHost]
    /// The stages buildah builds, per target platform, for ``Emulation``.
    var targetBuilds: [Emulation.TargetBuild] = []
    /// What each stage up to the target is built on, for the inputs digest.
    var stageBases: [BuildInputs.StageBase] = []
    /// Build args only FROM lines read (``DockerfileStages/fromOnlyArgs``): `stageBases` says what they decided.
    var fromOnlyArgs: Set<String> = []
    /// Where each external base (by the name its `FROM` gives after substitution) is read
    /// from, for the assembler.
    var sources: [String: BaseSource] = [:]
    /// The Dockerfile up to the target, parsed per target platform, for the assembler.
    var assemblyStages: [(target: Platform, stages: DockerfileStages)] = []
    /// The Dockerfile's parser directives (`# escape=`, `# syntax=`).
    var directives: [String: String] = [:]

    /// The ``BaseSummary`` of the registry bases, for the `dev.slipway.base` label.
    var summary: Digest {
        BaseSummary.digest(
            Dictionary(
                bases.compactMap { base in base.summaryDigest.map { (base.reference, $0) } },
                uniquingKeysWith: { first, _ in first }))
    }
}

/// Where the assembler reads a base image from.
enum BaseSource: Sendable, Equatable {
    /// `repository@digest` in its registry (a manifest, or an index to choose a platform from).
    case registry(ImageReference, Digest)
    /// An `IMAGE_ARG_<name>` layout or archive.
    case directory(URL)
}

struct BaseResolver {
    let configuration: BuildConfiguration
    let access: RegistryAccess
    let log: Log
    /// buildah's `BUILDPLATFORM`: the platform of the machine it runs on.
    var host: Platform = .host

    /// - Parameter links: a directory with a lowercase path: buildah names an `oci:` base
    ///   after its path and refuses one with capitals, so image args are reached through links here.
    func resolve(scratch: URL, links: URL) throws -> BaseResolution {
        var (buildArgs, local, sources) = try imageArguments(scratch: scratch, links: links)

        let text: String
        do { text = try String(contentsOf: configuration.dockerfile, encoding: .utf8) } catch {
            throw BuildError(.unreadableFile, "cannot read the Dockerfile \(configuration.dockerfile.path)")
        }
        // The automatic platform args (`$BUILDPLATFORM`, `$TARGETARCH`, …) have a value per
        // target platform, as buildah gives them; with none given, buildah builds for the host.
        let targets = configuration.platforms.isEmpty ? [host] : configuration.platforms
        var perTarget: [(target: Platform, stages: DockerfileStages)] = []
        do {
            for target in targets {
                perTarget.append(
                    (
                        target,
                        try DockerfileStages(text, buildArgs: buildArgs, platforms: .init(build: host, target: target))
                    ))
            }
        } catch {
            // buildah's own message says it best; the build fails there, with no bases resolved.
            log.info("\(configuration.dockerfile.lastPathComponent): \(error)")
            return BaseResolution(
                bases: [], final: nil, buildArgs: buildArgs, dockerfile: configuration.dockerfile, hosts: [])
        }

        let considered = Self.upToTarget(perTarget[0].stages, target: configuration.target)
        let targetBuilds = perTarget.map {
            Emulation.TargetBuild(
                target: $0.target, stages: Self.upToTarget($0.stages, target: configuration.target).stages)
        }
        // buildah 1.28 gives RUN steps BUILDPLATFORM & co. but expands them as empty in a
        // FROM line (measured: FROM --platform=$BUILDPLATFORM then takes the target's
        // manifest), so they are passed as build args, as BuildKit defines them.
        if considered.stages.contains(where: \.usesBuildPlatformArgs) {
            let automatic = DockerfileStages.Platforms(build: host, target: targets[0]).arguments.filter {
                $0.key.hasPrefix("BUILD")
            }
            buildArgs.merge(automatic) { given, _ in given }
        }
        try Self.requireSameBases(targetBuilds, targets: targets)
        let keepIndex = Self.basesKeepingIndex(considered, host: host, target: targets[0])
        let (resolved, replacements, hosts) = try registryBases(
            considered, local: local, keepIndex: keepIndex, sources: &sources)

        let dockerfile =
            replacements.isEmpty
            ? configuration.dockerfile
            : try pinnedDockerfile(
                text, buildArgs: buildArgs, target: targets[0], replacements: replacements, scratch: scratch)
        let bases = considered.externalBases.compactMap { resolved[$0] }
        return BaseResolution(
            bases: bases, final: finalBase(considered, resolved), buildArgs: buildArgs, dockerfile: dockerfile,
            hosts: hosts,
            targetBuilds: targetBuilds, stageBases: try Self.stageBases(considered, resolved),
            fromOnlyArgs: perTarget[0].stages.fromOnlyArgs, sources: sources,
            assemblyStages: perTarget.map { ($0.target, Self.upToTarget($0.stages, target: configuration.target)) },
            directives: DockerfileStages.directives(text))
    }

    /// The Dockerfile with each registry base replaced by its digest, written to the
    /// scratch directory: what buildah builds, so it builds what was resolved.
    func pinnedDockerfile(
        _ text: String, buildArgs: [String: String], target: Platform, replacements: [String: String], scratch: URL
    ) throws -> URL {
        let pinned: String
        do {
            pinned = try DockerfileStages.pinning(
                text, buildArgs: buildArgs, platforms: .init(build: host, target: target), replacements: replacements)
        } catch {
            throw BuildError(.invalidDockerfile, "\(configuration.dockerfile.lastPathComponent): \(error)")
        }
        let file = scratch.appendingPathComponent("Dockerfile.pinned")
        try Data(pinned.utf8).write(to: file)
        return file
    }

    /// The image args, each opened from its directory: the build args naming them as
    /// buildah's references, and each one's base and source under that reference.
    func imageArguments(scratch: URL, links: URL) throws
        -> (buildArgs: [String: String], local: [String: BaseImage], sources: [String: BaseSource])
    {
        var buildArgs = configuration.buildArgs
        var local: [String: BaseImage] = [:]  // buildah reference → base
        var sources: [String: BaseSource] = [:]
        for (name, directory) in configuration.imageArgs.sorted(by: { $0.key < $1.key }) {
            let argument = try ImageArgument(
                name: name, directory: directory, scratch: scratch.appendingPathComponent("image-arg-\(local.count)"),
                links: links)
            buildArgs[name] = argument.buildahReference
            sources[argument.buildahReference] = .directory(argument.image)
            local[argument.buildahReference] = BaseImage(
                reference: "image-arg:\(name)", name: argument.baseName, digest: argument.digest)
            log.info("base \(name) from \(directory.path): \(argument.digest)")
        }
        return (buildArgs, local, sources)
    }

    /// The stages up to `target` (every stage when it names none): stages after the target
    /// are never built (a stage can only use earlier ones), so their bases are not resolved.
    static func upToTarget(_ stages: DockerfileStages, target: String?) -> DockerfileStages {
        var considered = stages
        if let target = target?.lowercased(), let end = stages.stages.firstIndex(where: { $0.name == target }) {
            considered.stages = Array(stages.stages[...end])
        }
        return considered
    }

    /// One Dockerfile is pinned for every platform, so every platform must name the same bases.
    static func requireSameBases(_ targetBuilds: [Emulation.TargetBuild], targets: [Platform]) throws {
        if let other = targetBuilds.dropFirst().first(where: {
            $0.stages.map(\.base) != targetBuilds[0].stages.map(\.base)
        }) {
            let differing = zip(targetBuilds[0].stages, other.stages).first { $0.base != $1.base }
            throw BuildError(
                .unsupported,
                "FROM on line \(differing?.0.line ?? 0) names a different image per platform (\(differing?.0.base ?? "?") for \(targets[0]), \(differing?.1.base ?? "?") for \(other.target)); use one multi-platform base, or build each platform separately"
            )
        }
    }

    /// The bases pinned to their whole index: a stage with its own --platform
    /// (FROM --platform=$BUILDPLATFORM …) uses another platform's manifest than the target's.
    static func basesKeepingIndex(_ considered: DockerfileStages, host: Platform, target: Platform) -> Set<String> {
        Set(
            considered.stages.filter { stage in
                guard stage.platformFlag != nil else { return false }
                let own = stage.onBuildPlatform ? host : (try? Platform(stage.platform ?? ""))
                return own.map { !$0.matches(target) } ?? true
            }.map(\.base))
    }

    /// Each external base resolved in the Dockerfile's order: an image arg from `local`, a
    /// registry image to its digest (added to `sources`), with the replacements that pin it
    /// and the registries it came from.
    func registryBases(
        _ considered: DockerfileStages, local: [String: BaseImage], keepIndex: Set<String>,
        sources: inout [String: BaseSource]
    ) throws
        -> (resolved: [String: BaseImage], replacements: [String: String], hosts: [RegistryHost])
    {
        var resolved: [String: BaseImage] = [:]  // FROM's base → base
        var replacements: [String: String] = [:]
        var hosts: [RegistryHost] = []
        for written in considered.externalBases {
            if let base = local[written] {
                resolved[written] = base
                continue
            }
            let reference: ImageReference
            do { reference = try ImageReference(written) } catch {
                throw BuildError(.invalidDockerfile, "FROM \(written): \(error)")
            }
            // A docker.io base may come from a mirror; it keeps its docker.io name (buildah's
            // registries.conf sends its pull to the same mirror).
            let source = access.located(reference, digest: configuration.baseDigests?[written])
            let (digest, top) = try pinnedOrResolved(source, written: written, narrow: !keepIndex.contains(written))
            resolved[written] = BaseImage(
                reference: written, name: reference.description, digest: digest, summaryDigest: top)
            replacements[written] = "\(reference.name)@\(digest)"
            sources[written] = .registry(source, digest)
            for host in [reference.registry, source.registry] where !hosts.contains(host) { hosts.append(host) }
            log.info("base \(written): \(digest)")
        }
        return (resolved, replacements, hosts)
    }

    /// Each stage's base as the inputs digest records it: an earlier stage by its index
    /// (as ``DockerfileStages/externalBases`` tells them apart), else scratch, else the digest.
    static func stageBases(_ stages: DockerfileStages, _ resolved: [String: BaseImage]) throws -> [BuildInputs
        .StageBase]
    {
        try stages.stages.enumerated().map { index, stage in
            let lowered = stage.base.lowercased()
            if lowered == "scratch" { return .scratch }
            if let earlier = stages.stages[..<index].firstIndex(where: { $0.name == lowered }) {
                return .stage(earlier)
            }
            guard let base = resolved[stage.base] else {
                throw BuildError(.unresolvedBase, "FROM \(stage.base) on line \(stage.line) was not resolved")
            }
            return .image(base.digest)
        }
    }

    /// The digest to build from and the digest its reference has: from `BASE_DIGESTS_FILE`
    /// when given (exactly what check saw), else from the registry.
    /// - Parameter narrow: whether a one-platform build may use the target's manifest of an index.
    func pinnedOrResolved(_ reference: ImageReference, written: String, narrow: Bool = true) throws -> (Digest, Digest)
    {
        if let pinned = configuration.baseDigests {
            guard let digest = pinned[written] else {
                throw BuildError(
                    .unresolvedBase,
                    "BASE_DIGESTS_FILE has no digest for FROM \(written) (it has: \(pinned.keys.sorted().joined(separator: ", "))); do source.track_base.build_args match the task's build args?"
                )
            }
            return (digest, digest)
        }
        if let digest = reference.digest { return (digest, digest) }
        do {
            let client = try access.client(for: reference.registry)
            guard let top = try client.manifestDescriptor(reference.repository, reference.reference) else {
                throw BuildError(
                    .missingBase,
                    "the base image \(written) does not exist (\(reference) was not found in its registry)")
            }
            return (
                narrow ? try resolve(reference, written: written, top: top, client: client) : top.digest, top.digest
            )
        } catch let error as BuildError {
            throw error
        } catch let error as RegistryError
            where [.unauthorized, .denied].contains(error.kind) && configuration.registryUsername != nil
            && access.configuredCredentials(for: reference.registry) == nil
        {
            // The rule is new to anyone who used REGISTRY_* for a private base elsewhere: say it.
            throw BuildError(
                .unresolvedBase,
                "cannot resolve the base image \(written): \(error); REGISTRY_USERNAME/REGISTRY_PASSWORD go only to the registries of TAG, SKIP_IF_PUBLISHED and CACHE_REPOSITORY: give \(reference.registry) an entry in DOCKER_CONFIG's config.json"
            )
        } catch {
            throw BuildError(.unresolvedBase, "cannot resolve the base image \(written): \(error)")
        }
    }

    /// The digest of `reference` in its registry; for one platform, that platform's manifest.
    func resolve(_ reference: ImageReference, written: String, top: Descriptor, client: RegistryClient) throws -> Digest
    {
        if let digest = reference.digest { return digest }
        do {
            guard top.mediaType.isIndex, configuration.platforms.count <= 1 else { return top.digest }
            let response = try client.manifest(reference.repository, .digest(top.digest))
            guard case .index(let index) = try response.decode() else { return top.digest }
            return try index.choose(configuration.platforms.first, image: written).digest
        } catch let error as BuildError {
            throw error
        } catch {
            throw BuildError(.unresolvedBase, "cannot resolve the base image \(written): \(error)")
        }
    }

    /// The base of the stage the build ends with (`TARGET`, else the last), following
    /// stages built on earlier stages; nil when that chain starts from scratch.
    func finalBase(_ stages: DockerfileStages, _ resolved: [String: BaseImage]) -> BaseImage? {
        var stage = stages.stages.last
        if let target = configuration.target?.lowercased() {
            stage = stages.stages.first { $0.name == target } ?? stage
        }
        var seen = 0
        while let current = stage, seen < stages.stages.count {
            if let base = resolved[current.base] { return base }
            stage = stages.stages.first { $0.name != nil && $0.name == current.base.lowercased() }
            seen += 1
        }
        return nil
    }
}

/// An `IMAGE_ARG_<name>` directory: a get of our resource, registry-image or oci-build-task.
struct ImageArgument {
    var buildahReference: String
    /// The layout or archive it holds, for the assembler.
    var image: URL
    var digest: Digest
    /// The reference the get wrote, for `org.opencontainers.image.base.name`; nil without a `repository` file.
    var baseName: String?

    init(name: String, directory: URL, scratch: URL, links: URL) throws {
        let manager = FileManager.default
        func exists(_ path: String) -> Bool { manager.fileExists(atPath: directory.appendingPathComponent(path).path) }
        func read(_ file: String) -> String? {
            (try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        }
        var isDirectory: ObjCBool = false
        manager.fileExists(atPath: directory.path, isDirectory: &isDirectory)
        if !isDirectory.boolValue {
            image = directory
        } else if exists("oci-layout") {
            image = directory
        } else if exists("oci/oci-layout") {
            image = directory.appendingPathComponent("oci")
        } else if exists("image/oci-layout") {
            image = directory.appendingPathComponent("image")  // oci-build-task's (and our) OUTPUT_OCI output
        } else if exists("image.tar") {
            image = directory.appendingPathComponent("image.tar")
        } else if exists("rootfs") {
            throw BuildError(
                .unsupported,
                "image arg \(name): \(directory.path) holds only rootfs/; get the image with format: oci (image.tar) or oci-layout (oci/)"
            )
        } else {
            throw BuildError(
                .missingBase,
                "image arg \(name): \(directory.path) holds no image (an OCI layout, oci/, image/ or image.tar)")
        }

        var isLayout: ObjCBool = false
        manager.fileExists(atPath: image.path, isDirectory: &isLayout)
        let link = links.appendingPathComponent(
            name.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
                + "-\(UUID().uuidString.prefix(8).lowercased())")
        try manager.createSymbolicLink(at: link, withDestinationURL: image)
        if isLayout.boolValue {
            let layout = try OCILayout(opening: image)
            let entry = try layout.image()
            let refName = try layout.index().manifests.first?.annotations?[OCILayout.refName]
            buildahReference = "oci:\(link.path)" + (refName.map { ":\($0)" } ?? "")
            digest = entry.descriptor.digest
        } else {
            let oci = try Self.isOCIArchive(image)
            buildahReference = (oci ? "oci-archive:" : "docker-archive:") + link.path
            // The registry's digest when the get wrote one; else the archive's own.
            if let text = read("digest"), let recorded = try? Digest(text) {
                digest = recorded
            } else {
                try manager.createDirectory(at: scratch, withIntermediateDirectories: true)
                digest = try ImageInput.open(image, scratch: scratch).descriptor.digest
            }
        }
        if isDirectory.boolValue, let text = read("digest"), let recorded = try? Digest(text) { digest = recorded }
        baseName =
            isDirectory.boolValue
            ? Self.reference(repository: read("repository"), tag: read("tag"), digest: digest) : nil
    }

    /// The reference a get directory's files name (as our `in` and registry-image write
    /// them): `repository:tag`, else `repository@digest`; nil with no repository, since
    /// neither the argument's name nor the path buildah read it from is a reference.
    static func reference(repository: String?, tag: String?, digest: Digest) -> String? {
        guard let repository, !repository.isEmpty else { return nil }
        if let tag, !tag.isEmpty { return "\(repository):\(tag)" }
        return "\(repository)@\(digest)"
    }

    /// An OCI archive has `oci-layout` at its root; a docker-archive has `manifest.json`
    /// (Docker 25 writes both: docker-archive then, which buildah reads either way).
    static func isOCIArchive(_ file: URL) throws -> Bool {
        let (source, _) = try decompressing(try FileSource(path: file.path))
        let reader = TarReader(source)
        var sawLayout = false
        while let header = try reader.next() {
            let name = header.name.hasPrefix("./") ? String(header.name.dropFirst(2)) : header.name
            if name == "manifest.json" { return false }
            if name == "oci-layout" { sawLayout = true }
        }
        return sawLayout
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}

/// Runs `body` with a new, empty directory whose path has no capitals (buildah names an
/// `oci:` base after its path and refuses capitals), removed afterwards.
func withLowercaseTemporaryDirectory<R>(_ prefix: String, _ body: (URL) throws -> R) throws -> R {
    let temporary = NSTemporaryDirectory().lowercased() == NSTemporaryDirectory() ? NSTemporaryDirectory() : "/tmp"
    let directory = URL(fileURLWithPath: temporary).appendingPathComponent(
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}
