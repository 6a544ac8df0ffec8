import BuildContext
import Console
import Foundation
import GitSource
import HTTP
import OCI
import Registry
import TagPolicy

/// A version in image mode: a tag and the digest it pointed at.
public struct ImageVersion: Codable, Hashable, Sendable {
    public var tag: String
    public var digest: Digest

    static func parse(_ value: JSONValue?) throws(InputError) -> ImageVersion? {
        let version = try InputObject(value, path: "version", keys: ["tag", "digest"])
        guard version.has("digest") else { return nil }
        let text = try version.requiredString("digest")
        do { return ImageVersion(tag: try version.string("tag") ?? "", digest: try Digest(text)) } catch {
            throw version.invalid("digest", "\(error)")
        }
    }
}

/// `check`: prints the versions, oldest first.
public struct Check {
    let log: Log
    let retry: RetryPolicy

    public init(log: Log, retry: RetryPolicy = .standard) {
        self.log = log
        self.retry = retry
    }

    /// Whether a mirror's answer is missing (so the origin is asked): no versions at all.
    static func noVersions(_ versions: [ImageVersion]) -> Bool { versions.isEmpty }

    /// Reads `{"source":…,"version":…}` and returns the JSON array to print.
    public func run(input: Data) throws -> Data {
        let request = try InputObject(JSONValue.parse(input), path: "input", keys: ["source", "version", "params"])
        let parsed = try Source(request.raw("source"))
        let log = parsed.debug ? Log.standardError(verbose: true) : self.log
        let source = try parsed.resolvingRegistry(log: log)
        switch source.mode {
        case .tag(let tag):
            let since = try ImageVersion.parse(request.raw("version"))
            let versions = try source.readThroughMirror(log: log, retry: retry, isMissing: Self.noVersions) { client in
                try source.verified(
                    checkTag(tag, source: source, since: since, client: client, log: log), client: client, log: log)
            }
            return try CanonicalJSON.encode(versions)
        case .semver(let selection):
            let since = try ImageVersion.parse(request.raw("version"))
            let versions = try source.readThroughMirror(log: log, retry: retry, isMissing: Self.noVersions) { client in
                try source.verified(
                    checkSemver(selection, source: source, since: since, client: client, log: log), client: client,
                    log: log)
            }
            return try CanonicalJSON.encode(versions)
        case .tagRegex(let selection):
            _ = try ImageVersion.parse(request.raw("version"))
            let versions = try source.readThroughMirror(log: log, retry: retry, isMissing: Self.noVersions) { client in
                try source.verified(
                    checkTagRegex(selection, source: source, client: client, log: log), client: client, log: log)
            }
            return try CanonicalJSON.encode(versions)
        case .sourceKeyed(let keyed):
            let given = try InputObject(
                request.raw("version"), path: "version", keys: ["ref", "tag_file", "release", "base"]
            ).string("base")
            let versions = try checkSource(
                keyed, source: source, since: SourceVersion.key(request.raw("version")),
                sinceBase: try given.map { try Digest($0) }, log: log)
            return try CanonicalJSON.encode(versions)
        }
    }

    /// Source-keyed mode: the path-filtered changes of the git source; with `track_base`,
    /// each with the summary of its Dockerfile's bases, and a new version of the newest
    /// commit when its bases moved since the given version; with `require_image`, only
    /// those whose immutable tag is already in the registry.
    func checkSource(_ keyed: SourceKeyed, source: Source, since: SourceChange.Key?, sinceBase: Digest? = nil, log: Log)
        throws -> [SourceVersion]
    {
        let detector = ChangeDetector(
            configuration: keyed.git, cacheRoot: FileManager.default.temporaryDirectory, log: log)
        let changes = try detector.changes(since: since)
        var versions: [(change: SourceChange, base: Digest?)] = changes.map { ($0, nil) }
        if let trackBase = keyed.trackBase {
            let tracker = BaseTracker(trackBase: trackBase, source: source, retry: retry, log: log)
            versions = []
            var resolved: [String: [String: Digest]] = [:]
            for change in changes {
                let current = BaseSummary.digest(
                    try tracker.bases(at: change.commit, detector: detector, resolved: &resolved))
                if let since, let sinceBase, change.key == since {
                    // The given version stays as it was; its bases moving makes a new one after it.
                    versions.append((change, sinceBase))
                    if current != sinceBase, change.commit == changes.last?.commit {
                        log.info("the bases of \(change.commit.short) moved: \(sinceBase) → \(current)")
                        versions.append((change, current))
                    }
                } else {
                    versions.append((change, current))
                }
            }
        }
        if keyed.requireImage {
            let client = try source.client(log: log, retry: retry)
            versions = try versions.filter { version in
                let tag = try keyed.immutableTag(for: version.change, base: version.base)
                guard let published = try client.manifestDescriptor(source.repository, .tag(tag)) else { return false }
                // With source.verify, an image counts as published only once it is signed.
                return try !source.verified(
                    [ImageVersion(tag: tag.rawValue, digest: published.digest)], client: client, log: log
                ).isEmpty
            }
        }
        return versions.map { SourceVersion($0.change, base: $0.base) }
    }

    /// registry-image's tag mode: the tag's digest, preceded by the given version's digest
    /// when that differs and still exists. A missing tag is no versions, not an error.
    func checkTag(_ tag: Tag, source: Source, since: ImageVersion?, client: RegistryClient, log: Log) throws
        -> [ImageVersion]
    {
        guard let current = try client.manifestDescriptor(source.repository, .tag(tag)) else {
            log.info("\(source.repository):\(tag) does not exist (yet)")
            return []
        }
        let now = ImageVersion(tag: tag.rawValue, digest: current.digest)
        if let since, since.digest != current.digest,
            try client.manifestDescriptor(source.repository, .digest(since.digest)) != nil
        {
            return [ImageVersion(tag: tag.rawValue, digest: since.digest), now]
        }
        return [now]
    }

    /// registry-image's semver mode: every version tag, deduplicated by digest, in semver
    /// order; from the given version on when it is still listed with the same digest.
    func checkSemver(
        _ selection: SemverSelection, source: Source, since: ImageVersion?, client: RegistryClient, log: Log
    ) throws -> [ImageVersion] {
        let tags = try client.tags(source.repository).map(\.rawValue)
        var resolved: [(tag: String, digest: String)] = []
        for tag in selection.candidates(tags) {
            guard let descriptor = try client.manifestDescriptor(source.repository, .tag(try Tag(tag))) else {
                continue
            }
            resolved.append((tag, descriptor.digest.rawValue))
        }
        var versions = try selection.versions(resolved).map { ImageVersion(tag: $0.tag, digest: try Digest($0.digest)) }
        if let since, let start = versions.firstIndex(of: since) {
            versions = Array(versions[start...])
        }
        return versions
    }
}
