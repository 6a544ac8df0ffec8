import BuildContext
import Console
import Foundation
import GitSource
import HTTP
import ImageLayout
import OCI
import Registry
import RootFS
import Spawn
import Transfer

/// `in DIR`: fetches the version's image into DIR.
///
/// Files: `repository`, `tag`, `digest`, `tags` (the tags Slipway moves with an image that
/// now point at the digest, space separated: see `tagCandidates`), and per `format`: `rootfs/` with `metadata.json` and `labels.json`;
/// `image.tar` (a docker-archive of one platform); or `oci/` (an OCI layout of every
/// platform, whose `index.json` of a multi-platform image hashes to the digest).
public struct In {
    public enum Format: String, Sendable, CaseIterable {
        case rootfs, oci
        case ociLayout = "oci-layout"
    }
    public enum Fetch: String, Sendable, CaseIterable { case auto, required, skip }

    let log: Log
    let retry: RetryPolicy

    public init(log: Log, retry: RetryPolicy = .standard) {
        self.log = log
        self.retry = retry
    }

    static let paramKeys = ["image", "format", "skip_download", "platform", "source", "attestations"]

    public func run(input: Data, directory: URL) throws -> Data {
        let request = try InputObject(JSONValue.parse(input), path: "input", keys: ["source", "version", "params"])
        let parsed = try Source(request.raw("source"))
        let log = parsed.debug ? Log.standardError(verbose: true) : self.log
        let source = try parsed.resolvingRegistry(log: log)
        let params = try Self.params(request.raw("params"), source: source)
        if case .sourceKeyed(let keyed) = source.mode {
            return try fetchSourceKeyed(
                keyed, request: request, source: source, params: params, directory: directory, log: log)
        }
        return try fetchImageMode(request: request, source: source, params: params, directory: directory, log: log)
    }

    func fetchImageMode(request: InputObject, source: Source, params: InputObject, directory: URL, log: Log) throws
        -> Data
    {
        guard let version = try ImageVersion.parse(request.raw("version")) else {
            throw InputError("version.digest is required: in fetches the version check emitted")
        }
        let options = try FetchOptions(params, source: source)
        let attestations = try params.bool("attestations") ?? false
        // source.verify: nothing of an image without a valid signature is written.
        try source.requireSignature(version.digest, client: source.client(log: log, retry: retry))
        try write(repositoryName(source), to: directory, "repository")
        try write(version.tag, to: directory, "tag")
        // As registry-image does: the version's digest whatever is fetched (promote reads it).
        try write(version.digest.rawValue, to: directory, "digest")
        var metadata: [[String: String]] = [["name": "repository", "value": "\(source.registry)/\(source.repository)"]]
        if !version.tag.isEmpty { metadata.append(["name": "tag", "value": version.tag]) }
        var found = true
        if options.fetch != .skip {
            // registry_mirror: the mirror first, then the origin, starting again from an empty directory.
            let notFetched: ([[String: String]]?) -> Bool = { $0 == nil }
            let fetched = try source.readThroughMirror(log: log, retry: retry, isMissing: notFetched) { client in
                do {
                    return try fetchImage(
                        .digest(version.digest), tagName: version.tag, candidates: Self.tagCandidates(version.tag),
                        source: source, options: options, directory: directory, client: client, log: log)
                } catch {
                    for name in ["rootfs", "oci", "image.tar", "metadata.json", "labels.json", "tags"] {
                        try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
                    }
                    throw error
                }
            }
            found = fetched != nil
            metadata += fetched ?? []
        }
        if found, !source.metadataPatterns.isEmpty {
            let image = try source.readThroughMirror(log: log, retry: retry) { client in
                try RemoteImage.read(
                    source.repository, .digest(version.digest), platform: options.platform, client: client)
            }
            metadata += image.metadata(source.metadataPatterns)
        }
        if attestations {
            metadata += try writeAttestations(
                version.digest, source: source, client: source.client(log: log, retry: retry), directory: directory,
                log: log)
        }
        return try CanonicalJSON.encode(ResourceResponse(version: version, metadata: metadata))
    }

    /// `in` for `source.git`: `source/` (a detached checkout of the version's commit, as
    /// git-resource writes it), `ref`, and the image of the commit's immutable tag when it
    /// is published.
    func fetchSourceKeyed(
        _ keyed: SourceKeyed, request: InputObject, source: Source, params: InputObject,
        directory: URL, log: Log
    ) throws -> Data {
        let (key, version, base) = try Self.requestedVersion(request)
        let options = try FetchOptions(params, source: source)
        let checkout = try params.bool("source") ?? true
        let tag = try keyed.immutableTag(
            for: SourceChange(
                commit: key.commit, tagFileValue: version.tag_file, release: key.release,
                author: "", date: Date(), message: ""), base: base)
        try write(key.commit.rawValue, to: directory, "ref")
        try write(tag.rawValue, to: directory, "tag")
        try write(repositoryName(source), to: directory, "repository")
        // The version's other fields as files, for tasks (a build arg from the tag file value).
        if let value = version.tag_file { try write(value, to: directory, "tag_file") }
        if let release = key.release { try write(release, to: directory, "release") }
        var metadata: [[String: String]] = [["name": "commit", "value": key.commit.rawValue]]
        let detector = ChangeDetector(
            configuration: keyed.git, cacheRoot: FileManager.default.temporaryDirectory, log: log)
        if checkout {
            metadata += try checkOut(key.commit, detector: detector, into: directory.appendingPathComponent("source"))
        }
        if let value = version.tag_file { metadata.append(["name": "tag_file", "value": value]) }
        if let trackBase = keyed.trackBase {
            // The exact base digests check saw, for build-task's BASE_DIGESTS_FILE.
            guard let base else {
                throw InputError(
                    "version.base is required with source.track_base: in fetches the version check emitted")
            }
            try writeBases(
                trackBase, base: base, commit: key.commit, source: source, detector: detector, directory: directory,
                log: log)
            metadata.append(["name": "base", "value": base.rawValue])
        }
        let attestations = try params.bool("attestations") ?? false
        if options.fetch != .skip || attestations {
            let client = try source.client(log: log, retry: retry)
            // source.verify: the commit's image is fetched only when it has a valid signature.
            if let published = try client.manifestDescriptor(source.repository, .tag(tag)) {
                try source.requireSignature(published.digest, client: client)
                if attestations {
                    metadata += try writeAttestations(
                        published.digest, source: source, client: client, directory: directory, log: log)
                }
            }
            if options.fetch != .skip {
                metadata +=
                    try fetchImage(
                        .tag(tag), tagName: tag.rawValue,
                        candidates: [tag.rawValue]
                            + keyed.floatingCandidates(
                                commit: key.commit, tagFileValue: version.tag_file,
                                release: key.release, base: base),
                        source: source, options: options, directory: directory, client: client, log: log) ?? []
            }
        }
        return try CanonicalJSON.encode(ResourceResponse(version: version, metadata: metadata))
    }

    /// The version a source-keyed get asks for: its commit and release, the whole version as
    /// the answer repeats it, and the base digest `track_base` keyed it on.
    static func requestedVersion(_ request: InputObject) throws -> (
        key: SourceChange.Key, version: SourceVersion, base: Digest?
    ) {
        let versionObject = try InputObject(
            request.raw("version"), path: "version", keys: ["ref", "tag_file", "release", "base"])
        guard let key = try SourceVersion.key(request.raw("version")) else {
            throw InputError("version.ref is required: in fetches the version check emitted")
        }
        let base: Digest?
        do { base = try versionObject.string("base").map { try Digest($0) } } catch {
            throw versionObject.invalid("base", "\(error)")
        }
        let version = SourceVersion(
            ref: key.commit.rawValue, tag_file: try versionObject.string("tag_file"), release: key.release,
            base: base?.rawValue)
        return (key, version, base)
    }

    /// `source/`: a detached checkout of `commit`; its author and subject as metadata.
    func checkOut(_ commit: GitCommitID, detector: ChangeDetector, into sourceDirectory: URL) throws -> [[String:
        String]]
    {
        try detector.checkout(commit, into: sourceDirectory)
        let described = try SpawnCommandRunner().run(
            Command("git", ["-C", sourceDirectory.path, "log", "-1", "--format=%an%n%s"]))
        let lines = described.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: "\n", maxSplits: 1).map(String.init)
        guard described.succeeded, lines.count == 2 else { return [] }
        return [["name": "author", "value": lines[0]], ["name": "message", "value": lines[1]]]
    }

    /// `base` and `base_digests.json`: the bases of `commit`'s Dockerfile, refused when they
    /// are no longer the `base` check saw.
    func writeBases(
        _ trackBase: SourceKeyed.TrackBase, base: Digest, commit: GitCommitID, source: Source, detector: ChangeDetector,
        directory: URL, log: Log
    ) throws {
        _ = try detector.change(at: commit)  // the commit into the cache, for its Dockerfile
        let bases = try BaseTracker(trackBase: trackBase, source: source, retry: retry, log: log).bases(
            at: commit, detector: detector)
        let current = BaseSummary.digest(bases)
        guard current == base else {
            throw InputError(
                "track_base: the bases of \(commit.short) moved since check saw them (\(base) is now \(current)); the next check emits a version for the new bases"
            )
        }
        try write(base.rawValue, to: directory, "base")
        try BaseSummary.encode(bases).write(to: directory.appendingPathComponent("base_digests.json"))
    }

    /// `image`, `skip_download`, `format` and `platform`.
    struct FetchOptions {
        var fetch: Fetch
        var format: Format
        var platform: Platform?

        init(_ params: InputObject, source: Source) throws {
            fetch = try In.enumeration(params, "image", Fetch.self) ?? .auto
            if try params.bool("skip_download") == true { fetch = .skip }
            format = try In.enumeration(params, "format", Format.self) ?? .rootfs
            // As registry-image: a step's platform replaces the source's, and either takes the
            // running machine's OS and architecture for what it leaves out.
            platform =
                try Source.platform(params.object("platform", keys: ["os", "architecture", "variant"]))
                ?? source.platform
        }
    }

    func repositoryName(_ source: Source) -> String {
        source.registry.isDockerHub ? "docker.io/\(source.repository)" : "\(source.registry)/\(source.repository)"
    }

    /// Writes `digest` and `tags` and the image in the format asked, if `reference` exists;
    /// returns the metadata entries, or nil when it does not exist. A missing image is an
    /// error only with `image: required`.
    /// - Parameter candidates: the tags that may point at the image, for the `tags` file.
    func fetchImage(
        _ reference: Reference, tagName: String, candidates: [String], source: Source, options: FetchOptions,
        directory: URL, client: RegistryClient, log: Log
    ) throws -> [[String: String]]? {
        guard let found = try client.manifestDescriptor(source.repository, reference) else {
            if options.fetch == .required {
                throw InputError(
                    "\(client.host)/\(source.repository)\(reference.separator)\(reference) does not exist (params.image: required)"
                )
            }
            log.info(
                "\(source.repository)\(reference.separator)\(reference) is not in \(client.host); nothing fetched (params.image: auto)"
            )
            return nil
        }
        let digest = found.digest
        var metadata: [[String: String]] = [["name": "digest", "value": digest.rawValue]]
        try write(digest.rawValue, to: directory, "digest")
        let sameDigest = try tagsPointing(at: digest, among: candidates, client: client, repository: source.repository)
        try write(sameDigest.joined(separator: " "), to: directory, "tags")
        if !sameDigest.isEmpty { metadata.append(["name": "tags", "value": sameDigest.joined(separator: " ")]) }

        let scratch = directory.appendingPathComponent(".slipway-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let transfer = ImageTransfer(log: log, progress: ProgressReporter(log: log))
        switch options.format {
        case .ociLayout:
            let layout = try OCILayout.create(at: directory.appendingPathComponent("oci"))
            _ = try transfer.pull(
                source.repository, digest, with: client, into: layout, platforms: .all,
                name: tagName.isEmpty ? nil : tagName)
        case .oci:
            let layout = try OCILayout.create(at: scratch)
            let image = try transfer.pull(
                source.repository, digest, with: client, into: layout, platforms: .one(options.platform))
            let repoTag = "\(source.repository):\(tagName.isEmpty ? "latest" : tagName)"
            try DockerArchive.write(
                image, platform: options.platform, repoTags: [repoTag],
                to: directory.appendingPathComponent("image.tar"))
        case .rootfs:
            let layout = try OCILayout.create(at: scratch)
            let image = try transfer.pull(
                source.repository, digest, with: client, into: layout, platforms: .one(options.platform))
            try Self.unpack(image, platform: options.platform, into: directory, log: log)
        }
        return metadata
    }

    /// The tags among `candidates` that the repository has and that now point at `digest`,
    /// sorted: one tag listing, and one HEAD per candidate listed, never one per tag of the
    /// repository (a repository of thousands of tags made every get take seconds per
    /// thousand).
    func tagsPointing(at digest: Digest, among candidates: [String], client: RegistryClient, repository: Repository)
        throws -> [String]
    {
        let wanted = Set(candidates.compactMap { try? Tag($0) })
        guard !wanted.isEmpty else { return [] }
        return try client.tags(repository).filter { tag in
            try wanted.contains(tag) && client.manifestDescriptor(repository, .tag(tag))?.digest == digest
        }.map(\.rawValue).sorted()
    }

    /// The tags `out` moves together with an image of `tag` in image mode: `tag` itself,
    /// `latest`, `stable`, and for a version tag its shorter forms (`1.2.3-alpine` gives
    /// `1.2-alpine`, `1-alpine` and `alpine`; a leading `v` is kept).
    static func tagCandidates(_ tag: String) -> [String] {
        guard !tag.isEmpty else { return ["latest", "stable"] }
        var result = [tag, "latest", "stable"]
        let dash = tag.firstIndex(of: "-")
        let core = dash.map { String(tag[..<$0]) } ?? tag
        let suffix = dash.map { String(tag[$0...]) } ?? ""
        let prefix = core.hasPrefix("v") ? "v" : ""
        let parts = core.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        if parts.count > 1, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            for count in 1..<parts.count { result.append(prefix + parts.prefix(count).joined(separator: ".") + suffix) }
            if !suffix.isEmpty { result.append(String(suffix.dropFirst())) }
        }
        return result
    }

    /// Applies the layers of `image`'s manifest for `platform` into `directory/rootfs`, each
    /// checked against its diff_id, then writes `metadata.json` and `labels.json` beside it.
    static func unpack(_ image: LayoutImage, platform: Platform?, into directory: URL, log: Log) throws {
        let configuration = try Unpacker.unpack(
            image, platform: platform, into: directory.appendingPathComponent("rootfs"), log: log)
        try ImageMetadata.write(config: configuration, to: directory)
    }

    static func enumeration<E: RawRepresentable & CaseIterable>(_ params: InputObject, _ key: String, _ type: E.Type)
        throws -> E? where E.RawValue == String
    {
        guard let text = try params.string(key) else { return nil }
        guard let value = E(rawValue: text) else {
            throw params.invalid(
                key,
                "\"\(InputObject.printable(text))\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return value
    }

    func write(_ text: String, to directory: URL, _ name: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: directory.appendingPathComponent(name))
    }
}

extension Reference {
    /// How the reference attaches to a repository name: `repo:tag`, `repo@sha256:…`.
    var separator: String {
        if case .digest = self { return "@" }
        return ":"
    }
}
