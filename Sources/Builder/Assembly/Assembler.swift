import BuildContext
import Console
import Foundation
import ImageLayout
import OCI
import Registry
import Transfer

/// Builds an image without executing anything: for a Dockerfile whose stages only copy
/// files and set configuration (``AssemblyPlan``), the layers and configs buildah would
/// write are written directly, as ko, jib and swift-container-plugin do. It needs no
/// namespaces, no mounts and no emulation, so it works in Concourse's default
/// (non-privileged) task and builds every platform on any worker.
///
/// For each target platform, each planned stage starts from its base (a registry image's
/// manifest for that platform, an image arg, `scratch`, or an earlier stage), applies its
/// instructions to the image config, and makes one layer per `COPY`/`ADD` (which also
/// carries the directories earlier `WORKDIR`s made, as buildah's does). Every time is the build's
/// timestamp (the commit time, buildah's `--timestamp`), so the same inputs give the same
/// bytes. The result is an OCI layout named `latest`: a manifest, or an index for several
/// platforms.
struct Assembler {
    let plan: AssemblyPlan
    let bases: BaseResolution
    let configuration: BuildConfiguration
    let access: RegistryAccess
    let log: Log
    /// The labels ImageBuild gives every image, applied after the Dockerfile's, as buildah's `--label`.
    let labels: [String: String]
    /// Seconds since 1970; nil (no git): now, as buildah does without `--timestamp`.
    let timestamp: Int?
    let scratch: URL
    /// The build platform (`FROM --platform=$BUILDPLATFORM` stages take its manifest).
    var host: Platform = .host

    /// What a stage is, as far as it has been assembled.
    struct StageState {
        var config: ImageConfiguration
        var layers: [(descriptor: Descriptor, file: URL)]
        var tree: FileTree
        /// Directories `WORKDIR` made, waiting for the next `COPY`'s layer.
        var pending: [String: FileTree.Node] = [:]
    }

    var time: Date { timestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? Date() }
    var created: String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: time)
    }

    /// Assembles every platform into `output` (an empty directory) and returns the layout.
    func assemble(into output: URL) throws -> OCILayout {
        let work = try OCILayout.openOrCreate(at: scratch.appendingPathComponent("assembled"))
        var images: [(Descriptor, Platform)] = []
        for (target, stages) in bases.assemblyStages {
            let state = try assemble(for: target, stages: stages, work: work)
            let descriptor = try writeImage(state, into: work)
            images.append((descriptor, state.config.platform))
        }
        let layout = try OCILayout.create(at: output)
        for (descriptor, _) in images { try copyBlobs(of: descriptor, from: work, to: layout) }
        if images.count == 1 {
            try layout.addToIndex(images[0].0, name: "latest")
        } else {
            let manifests = images.map { descriptor, platform in
                Descriptor(
                    mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size,
                    platform: platform)
            }
            let index = try layout.writeBlob(
                try CanonicalJSON.encode(ImageIndex(manifests: manifests)), mediaType: .ociIndex)
            try layout.addToIndex(index, name: "latest")
        }
        return layout
    }

    // MARK: Stages

    /// The target stage for one platform, every planned stage assembled in order, with
    /// ImageBuild's labels and the build's time.
    func assemble(for target: Platform, stages: DockerfileStages, work: OCILayout) throws -> StageState {
        var states: [Int: StageState] = [:]
        let imageStages = plan.imageStages
        for planned in plan.stages {
            var state: StageState
            if let earlier = planned.baseStage, let built = states[earlier] {
                state = built
            } else {
                state = try base(stages.stages[planned.index], target: target, work: work)
            }
            try applySteps(
                of: planned, to: &state, states: states, globalArgs: stages.globalArgs,
                writesLayers: imageStages.contains(planned.index), work: work)
            states[planned.index] = state
        }
        guard var final = states[plan.stages[plan.target].index] else {
            throw AssemblyRefusal("internal: the target stage was not assembled")
        }
        var config = final.config.config ?? ImageConfiguration.Config()
        config.labels = (config.labels ?? [:]).merging(labels) { $1 }
        final.config.config = config
        final.config.created = created
        return final
    }

    /// Applies a stage's instructions in order: a `COPY`/`ADD` makes a layer (written only
    /// when `writesLayers`), every other instruction an empty-layer history entry.
    func applySteps(
        of planned: AssemblyPlan.Stage, to state: inout StageState, states: [Int: StageState],
        globalArgs: [String: String],
        writesLayers: Bool, work: OCILayout
    ) throws {
        var arguments: [String: String] = [:]
        var cmdSet = false
        for (instruction, step) in planned.steps {
            var values = arguments
            for entry in state.config.config?.env ?? [] {
                let pair = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                if let name = pair.first, !name.isEmpty { values[name] = pair.count > 1 ? pair[1] : "" }
            }
            var config = state.config.config ?? ImageConfiguration.Config()
            var layer: [String: FileTree.Node]?
            switch step {
            case .copy(let copy):
                layer = try apply(copy, to: &state, states: states, values: values, workdir: config.workingDir ?? "/")
            case .workdir(let text):
                let written = DockerfileStages.words(text, values: values).joined(separator: " ")
                let joined = written.hasPrefix("/") ? written : (config.workingDir ?? "/") + "/" + written
                let clean = "/" + (FileTree.resolve(joined, followLast: false) { _ in nil } ?? "")
                config.workingDir = clean
                makeWorkdir(clean, in: &state)
            case .arg(let text):
                for declaration in text.split(whereSeparator: \.isWhitespace) {
                    let parts = declaration.split(separator: "=", maxSplits: 1).map(String.init)
                    let fallback =
                        parts.count > 1 ? DockerfileStages.words(parts[1], values: values).joined(separator: " ") : nil
                    if let value = bases.buildArgs[parts[0]] ?? fallback ?? globalArgs[parts[0]] {
                        arguments[parts[0]] = value
                    }
                }
            case .ignored:
                log.info(
                    "Dockerfile line \(instruction.line): \(instruction.keyword) is not part of an OCI image (buildah drops it too); ignored"
                )
            default:
                try Self.configure(&config, step, line: instruction.line, values: values, cmdSet: &cmdSet)
            }
            state.config.config = config
            if layer != nil, !writesLayers {
                state.pending = [:]  // the tree has the files; no image holds this stage's layers
            } else if let layer {
                try addLayer(
                    layer, to: &state, createdBy: "/bin/sh -c #(nop) \(instruction.keyword) \(instruction.arguments)",
                    work: work)
            } else {
                state.config.history =
                    (state.config.history ?? []) + [
                        ImageConfiguration.History(
                            created: created,
                            createdBy: "/bin/sh -c #(nop) \(instruction.keyword) \(instruction.arguments)",
                            emptyLayer: true)
                    ]
            }
        }
        // buildah commits a WORKDIR's directory only with a later COPY's layer; one no copy
        // followed is not in its image (measured), so it is not in ours.
        for path in state.pending.keys.sorted(by: >) { state.tree.remove(path) }
        state.pending = [:]
    }

    /// The image config after one instruction that only sets configuration (`ENV`, `LABEL`,
    /// `USER`, `EXPOSE`, `ENTRYPOINT`, `CMD`, `STOPSIGNAL`, `VOLUME`), as buildah sets it;
    /// `cmdSet` says whether the stage has its own `CMD` yet.
    static func configure(
        _ config: inout ImageConfiguration.Config, _ step: AssemblyPlan.Step, line: Int, values: [String: String],
        cmdSet: inout Bool
    ) throws {
        switch step {
        case .env(let text):
            guard let pairs = DockerfileStages.keyValues(text, values: values) else {
                throw AssemblyRefusal(line: line, "ENV \(text) is not NAME=value")
            }
            // As buildah's SetEnv: a variable set again moves to the end.
            var env = config.env ?? []
            for (key, value) in pairs {
                env.removeAll { $0.hasPrefix(key + "=") || $0 == key }
                env.append("\(key)=\(value)")
            }
            config.env = env
        case .label(let text):
            guard let pairs = DockerfileStages.keyValues(text, values: values) else {
                throw AssemblyRefusal(line: line, "LABEL \(text) is not NAME=value")
            }
            var labels = config.labels ?? [:]
            for (key, value) in pairs { labels[key] = value }
            config.labels = labels
        case .user(let text):
            config.user = DockerfileStages.words(text, values: values).joined(separator: " ")
        case .expose(let text):
            var ports = config.exposedPorts ?? [:]
            for port in DockerfileStages.words(text, values: values) {
                // The protocol as written (buildah keeps `80/TCP`); none means TCP.
                ports[port.contains("/") ? port : port + "/tcp"] = EmptyObject()
            }
            config.exposedPorts = ports
        case .entrypoint(let command):
            config.entrypoint = command.arguments
            if !cmdSet { config.cmd = nil }
        case .cmd(let command):
            config.cmd = command.arguments
            cmdSet = true
        case .stopSignal(let text):
            config.stopSignal = DockerfileStages.words(text, values: values).joined(separator: " ")
        case .volume(let text):
            var volumes = config.volumes ?? [:]
            for volume in DockerfileStages.Instruction.execForm(text) ?? DockerfileStages.words(text, values: values) {
                volumes[volume] = EmptyObject()
            }
            config.volumes = volumes
        case .copy, .workdir, .arg, .ignored:
            break
        }
    }

    /// Applies one `COPY`/`ADD` to the stage; returns its layer's entries.
    func apply(
        _ copy: AssemblyPlan.Copy, to state: inout StageState, states: [Int: StageState], values: [String: String],
        workdir: String
    ) throws -> [String: FileTree.Node] {
        func substituted(_ text: String) -> String { DockerfileStages.substitute(text, values) }
        let contents = scratch.appendingPathComponent("contents")
        let owner = try copy.chown.map {
            try CopyInstruction.owner(substituted($0), tree: &state.tree, scratch: contents, line: copy.line)
        }
        let instruction = CopyInstruction(
            sources: copy.sources.map(substituted), destination: substituted(copy.destination), owner: owner,
            chmod: copy.chmod, fromStage: copy.fromStage != nil, isAdd: copy.isAdd, line: copy.line)
        let source: any CopySource
        if let from = copy.fromStage {
            guard var tree = states[from]?.tree else {
                throw AssemblyRefusal(line: copy.line, "COPY --from a stage that was not assembled")
            }
            // Only what is copied is read out of the stage's layers.
            let probe = StageSource(tree: tree)
            var needed: [String] = []
            for written in instruction.sources {
                for (_, match) in probe.expand(written) {
                    needed.append(match)
                    needed += probe.walk(match).map { match.isEmpty ? $0.relative : match + "/" + $0.relative }
                }
            }
            try tree.materialize(needed, scratch: contents)
            source = StageSource(tree: tree)
        } else {
            source = ContextSource(
                root: configuration.context,
                ignore: try Dockerignore(contextDirectory: configuration.context).excluding(
                    configuration.contextExclusions))
        }
        var entries = try instruction.apply(from: source, to: &state.tree, workdir: workdir)
        entries.merge(state.pending) { copied, _ in copied }
        state.pending = [:]
        return entries
    }

    /// `WORKDIR` makes its directory (0755, root's) when the stage lacks it.
    func makeWorkdir(_ path: String, in state: inout StageState) {
        guard let resolved = state.tree.resolve(path, followLast: true) else { return }
        var current = ""
        for component in resolved.split(separator: "/") {
            current = current.isEmpty ? String(component) : current + "/" + component
            if state.tree[current] != nil { continue }
            let directory = FileTree.Node(kind: .directory, mode: 0o755, uid: 0, gid: 0)
            state.tree.insert(current, directory)
            state.pending[current] = directory
        }
    }

    func addLayer(_ entries: [String: FileTree.Node], to state: inout StageState, createdBy: String, work: OCILayout)
        throws
    {
        var all = entries
        all.merge(state.pending) { given, _ in given }
        state.pending = [:]
        let written = try LayerWriter(layout: work, timestamp: time).write(all)
        state.layers.append((written.descriptor, work.blobPath(written.descriptor.digest)))
        state.config.rootfs.diffIDs.append(written.diffID)
        state.config.history =
            (state.config.history ?? []) + [ImageConfiguration.History(created: created, createdBy: createdBy)]
    }

    // MARK: Bases

    /// The state a stage starts from: its base image's config, layers and tree.
    func base(_ stage: DockerfileStages.Stage, target: Platform, work: OCILayout) throws -> StageState {
        let platform = try Self.platform(of: stage, target: target, host: host)
        if stage.base.lowercased() == "scratch" {
            let config = ImageConfiguration(
                platform: platform, config: ImageConfiguration.Config(env: [Self.defaultPath]),
                rootfs: .init(diffIDs: []))
            return StageState(config: config, layers: [], tree: FileTree())
        }
        guard let source = bases.sources[stage.base] else {
            throw AssemblyRefusal(line: stage.line, "FROM \(stage.base) was not resolved")
        }
        let image = try openBase(source, platform: platform)
        let (_, manifest) = try image.platformManifest(for: platform)
        let config = try Self.configuration(of: stage, from: try image.layout.blob(manifest.config))
        var tree = FileTree()
        var layers: [(Descriptor, URL)] = []
        for layer in manifest.layers {
            guard let mediaType = Self.ociLayerType(layer.mediaType) else {
                throw AssemblyRefusal(
                    line: stage.line,
                    "the base image \(stage.base) has a layer of type \(layer.mediaType), which the assembler does not copy"
                )
            }
            let file = image.layout.blobPath(layer.digest)
            try tree.apply(layer: file)
            var descriptor = layer
            descriptor.mediaType = mediaType
            descriptor.annotations = nil
            layers.append((descriptor, file))
        }
        return StageState(config: config, layers: layers, tree: tree)
    }

    /// The platform a stage's base is taken for: the build platform for
    /// `FROM --platform=$BUILDPLATFORM`, another `--platform` as written, else the target.
    static func platform(of stage: DockerfileStages.Stage, target: Platform, host: Platform) throws -> Platform {
        if stage.onBuildPlatform { return host }
        guard let written = stage.platform, !written.isEmpty else { return target }
        do { return try Platform(written) } catch {
            throw AssemblyRefusal(line: stage.line, "FROM --platform=\(written): \(error)")
        }
    }

    /// A base image's layout: a registry base pulled for `platform` into the scratch
    /// directory, an image arg opened where its get put it.
    func openBase(_ source: BaseSource, platform: Platform) throws -> LayoutImage {
        switch source {
        case .registry(let reference, let digest):
            let layout = try OCILayout.openOrCreate(
                at: scratch.appendingPathComponent("base-\(digest.encoded.prefix(16))"))
            let client = try access.client(for: reference.registry)
            return try ImageTransfer(log: log).pull(
                reference.repository, digest, with: client, into: layout, platforms: .one(platform))
        case .directory(let path):
            return try ImageInput.open(
                path, scratch: scratch.appendingPathComponent("image-arg-\(UUID().uuidString.prefix(8))"))
        }
    }

    /// The config a stage starts from: the base's, with the default PATH when it sets none.
    /// A base with ONBUILD triggers is refused (they would run as it is built on).
    static func configuration(of stage: DockerfileStages.Stage, from bytes: Data) throws -> ImageConfiguration {
        if let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
            let onBuild = (object["config"] as? [String: Any])?["OnBuild"] as? [Any], !onBuild.isEmpty
        {
            throw AssemblyRefusal(
                line: stage.line,
                "the base image \(stage.base) has ONBUILD triggers, which run when it is built on; the assembler does not run them"
            )
        }
        var config: ImageConfiguration
        do { config = try JSONDecoder().decode(ImageConfiguration.self, from: bytes) } catch {
            throw AssemblyRefusal(
                line: stage.line, "the config of \(stage.base) is not an image configuration: \(error)")
        }
        var inner = config.config ?? ImageConfiguration.Config()
        if !(inner.env ?? []).contains(where: { $0.hasPrefix("PATH=") }) {
            inner.env = [Self.defaultPath] + (inner.env ?? [])
        }
        config.config = inner
        return config
    }

    /// The PATH buildah (and Docker) gives a Linux image that sets none.
    static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// A base layer's media type as buildah's `oci:` push writes it (Docker's types become OCI's).
    static func ociLayerType(_ type: MediaType) -> MediaType? {
        switch type {
        case .ociLayerGzip, .dockerLayerGzip: .ociLayerGzip
        case .ociLayer: .ociLayer
        case .ociLayerZstd: .ociLayerZstd
        default: nil
        }
    }

    // MARK: Output

    /// The config and manifest of a finished stage, written to `work`.
    func writeImage(_ state: StageState, into work: OCILayout) throws -> Descriptor {
        let config = try work.writeBlob(try CanonicalJSON.encode(state.config), mediaType: .ociConfig)
        let manifest = ImageManifest(config: config, layers: state.layers.map(\.descriptor))
        for (descriptor, file) in state.layers
        where file != work.blobPath(descriptor.digest) && !work.hasBlob(descriptor) {
            try linkOrCopy(file, to: work.blobPath(descriptor.digest))
        }
        return try work.writeBlob(try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
    }

    func copyBlobs(of manifest: Descriptor, from work: OCILayout, to layout: OCILayout) throws {
        for blob in try work.blobs(reachableFrom: manifest) where !layout.hasBlob(blob) {
            try linkOrCopy(work.blobPath(blob.digest), to: layout.blobPath(blob.digest))
        }
    }

    /// A hard link when both are on one file system (a layer is not written twice), else a copy.
    func linkOrCopy(_ source: URL, to destination: URL) throws {
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        if link(source.path, destination.path) == 0 { return }
        try FileManager.default.copyItem(at: source, to: destination)
    }
}
