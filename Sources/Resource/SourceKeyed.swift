import Foundation
import GitSource
import OCI
import TagPolicy

/// The source-keyed part of `source`: `git` and the keys that go with it.
public struct SourceKeyed: Sendable {
    public var git: GitSourceConfiguration
    /// Tag templates `out` applies; the first makes the immutable tag.
    public var templates: [TagTemplate]
    public var latestOn: String?
    public var requireImage: Bool
    public var tagPrefix: String?
    /// `track_base`: which Dockerfile's bases are part of the version.
    public var trackBase: TrackBase?

    /// `track_base: true` (the Dockerfile in the first watched path) or
    /// `{dockerfile, build_args}`.
    public struct TrackBase: Sendable, Equatable {
        public var dockerfile: String
        public var buildArgs: [String: String]
    }

    static let gitKeys = [
        "uri", "branch", "paths", "ignore_paths", "disable_ci_skip", "commit_filter", "version_depth",
        "tag_filter", "tag_regex", "private_key", "username", "password",
    ]
    public static let defaultTemplates = ["{short_ref}", "{branch}"]
    /// With `track_base`, the immutable tag names the bases too: a new base is a new image.
    public static let defaultTrackBaseTemplates = ["{short_ref}-{short_base}", "{branch}"]

    init(_ source: InputObject) throws(InputError) {
        git = try Self.gitConfiguration(source)
        trackBase = try Self.trackBase(source, paths: git.paths)
        templates = try Self.templates(source, trackBase: trackBase)
        latestOn = try source.string("latest_on")
        requireImage = try source.bool("require_image") ?? false
        tagPrefix = try source.string("tag_prefix")
    }

    /// `git` (with `source.tag_file`), validated.
    static func gitConfiguration(_ source: InputObject) throws(InputError) -> GitSourceConfiguration {
        guard let git = try source.object("git", keys: Self.gitKeys, secrets: ["password", "private_key"]) else {
            throw InputError("source.git is required in source-keyed mode")
        }
        var branch: GitBranchName?
        if let name = try git.string("branch") {
            do { branch = try GitBranchName(name) } catch { throw git.invalid("branch", "\(error)") }
        }
        var filter: CommitFilter?
        if let object = try git.object(
            "commit_filter", keys: ["include", "exclude", "include_all_match", "exclude_all_match"])
        {
            filter = CommitFilter(
                include: try object.strings("include") ?? [], exclude: try object.strings("exclude") ?? [],
                includeAllMatch: try object.bool("include_all_match") ?? false,
                excludeAllMatch: try object.bool("exclude_all_match") ?? false)
        }
        var tagFile: TagFileSpec?
        switch source.raw("tag_file") {
        case nil: break
        case .string(let path)?: tagFile = TagFileSpec(path: path)
        case .object?:
            let object = try source.object("tag_file", keys: ["path", "key"])!
            tagFile = TagFileSpec(path: try object.requiredString("path"), key: try object.string("key"))
        case let other?: throw InputError("source.tag_file: expected a path or {path, key}, got \(other.kind)")
        }
        let configuration = GitSourceConfiguration(
            uri: try git.requiredString("uri"), branch: branch, paths: try git.strings("paths") ?? [],
            ignorePaths: try git.strings("ignore_paths") ?? [], disableCISkip: try git.bool("disable_ci_skip") ?? false,
            commitFilter: filter, versionDepth: try git.integer("version_depth", in: 1...100_000),
            tagFilter: try git.string("tag_filter"), tagRegex: try git.string("tag_regex"),
            privateKey: try git.string("private_key"), username: try git.string("username"),
            password: try git.string("password"),
            tagFile: tagFile)
        do { try configuration.validate() } catch { throw InputError("source.\(error)") }
        return configuration
    }

    /// `track_base`: nil, the Dockerfile in the first of `paths`, or the one given.
    static func trackBase(_ source: InputObject, paths: [String]) throws(InputError) -> TrackBase? {
        switch source.raw("track_base") {
        case nil, .bool(false)?, .null?:
            return nil
        case .bool(true)?:
            guard let first = paths.first else {
                throw InputError(
                    "source.track_base: true needs git.paths (the Dockerfile is <first path>/Dockerfile); or give {dockerfile: path}"
                )
            }
            let directory = first.hasSuffix("/") ? String(first.dropLast()) : first
            return TrackBase(
                dockerfile: directory.isEmpty || directory == "." ? "Dockerfile" : directory + "/Dockerfile",
                buildArgs: [:])
        case .object?:
            let object = try source.object("track_base", keys: ["dockerfile", "build_args"])!
            return TrackBase(
                dockerfile: try object.requiredString("dockerfile"),
                buildArgs: try object.stringMap("build_args") ?? [:])
        case let other?:
            throw InputError("source.track_base: expected true or {dockerfile, build_args}, got \(other.kind)")
        }
    }

    /// `tags`, or the default templates (which name the bases with `track_base`).
    static func templates(_ source: InputObject, trackBase: TrackBase?) throws(InputError) -> [TagTemplate] {
        let templates =
            try source.strings("tags") ?? (trackBase == nil ? Self.defaultTemplates : Self.defaultTrackBaseTemplates)
        guard !templates.isEmpty else {
            throw InputError("source.tags: give at least one template (the first makes the immutable tag)")
        }
        var parsed: [TagTemplate] = []
        for template in templates {
            do { parsed.append(try TagTemplate(template)) } catch { throw source.invalid("tags", "\(error)") }
        }
        return parsed
    }

    /// The floating tags `out` may move to the image of a change, for `in`'s `tags` file:
    /// those of the put's own plan (``SourceKeyedTagPlan``: the other templates, `latest`
    /// with `latest_on`, the tag file's value), and a release's version tags. When no plan
    /// can be made for the change, `out` moved no floating tag for it either.
    func floatingCandidates(commit: GitCommitID, tagFileValue: String?, release: String?, base: Digest?) -> [String] {
        let context = TagContext(
            commit: commit.rawValue, branch: git.branch?.rawValue, base: base, tagFile: tagFileValue, release: release)
        let plan = try? SourceKeyedTagPlan(self, context: context, commit: commit, additionalTags: [])
        return (plan?.floating.map(\.rawValue) ?? []) + (release.map(In.tagCandidates) ?? [])
    }

    /// The immutable tag of a change: the first template rendered for it.
    public func immutableTag(for change: SourceChange, base: Digest? = nil) throws -> Tag {
        let context = TagContext(
            commit: change.commit.rawValue, branch: git.branch?.rawValue, base: base, tagFile: change.tagFileValue,
            release: change.release)
        do { return try templates[0].render(context) } catch { throw InputError("source.tags: \(error)") }
    }
}

/// A version in source-keyed mode: `{"ref"}`, plus `tag_file` and `release` when configured.
public struct SourceVersion: Codable, Hashable, Sendable {
    public var ref: String
    public var tag_file: String?
    public var release: String?
    /// `track_base`: the ``BaseSummary`` of the commit's Dockerfile bases.
    public var base: String?

    init(ref: String, tag_file: String?, release: String?, base: String? = nil) {
        self.ref = ref
        self.tag_file = tag_file
        self.release = release
        self.base = base
    }

    init(_ change: SourceChange, base: Digest? = nil) {
        ref = change.commit.rawValue
        tag_file = change.tagFileValue
        release = change.release
        self.base = base?.rawValue
    }

    static func key(_ value: JSONValue?) throws(InputError) -> SourceChange.Key? {
        let version = try InputObject(value, path: "version", keys: ["ref", "tag_file", "release", "base"])
        guard version.has("ref") else { return nil }
        let ref = try version.requiredString("ref")
        do { return SourceChange.Key(commit: try GitCommitID(ref), release: try version.string("release")) } catch let
            error as InputError
        {
            throw error
        } catch {
            throw version.invalid("ref", "\(error)")
        }
    }
}
