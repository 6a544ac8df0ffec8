import Console
import Foundation
import GitSource
import OCI
import Registry
import TagPolicy

/// `promote` in source-keyed mode, and the decisions `promote` makes whatever the mode:
/// what `from` names, what to do when the image is not published, the image this resource
/// published for a release commit.
extension Out {
    /// What `promote.from` names.
    enum PromoteFrom: Equatable {
        /// A get directory's `digest` file.
        case digest(Digest)
        /// A tag of this repository.
        case tag(Tag)
        /// A get directory with a `ref` file (or a git get's `.git/ref`) and no `digest`: a
        /// release-mode get, whose commit's image this resource published.
        case releaseCommit(GitCommitID)
    }

    /// `promote.from`, from the text and the files of the directory it may name (`digest`
    /// first: a get of the image; then `ref`; else the text is a tag).
    static func promoteFrom(_ from: String, path: String, digestFile: String?, refFile: String?, promote: InputObject)
        throws(InputError) -> PromoteFrom
    {
        if let digestFile {
            do { return .digest(try Digest(digestFile.trimmingCharacters(in: .whitespacesAndNewlines))) } catch {
                throw promote.invalid("from", "\(path)/digest does not hold a digest: \(error)")
            }
        }
        if let refFile {
            do { return .releaseCommit(try GitCommitID(refFile.trimmingCharacters(in: .whitespacesAndNewlines))) } catch
            {
                throw promote.invalid("from", "\(path)/ref does not hold a commit: \(error)")
            }
        }
        do { return .tag(try Tag(from)) } catch {
            throw promote.invalid("from", "neither a get directory (with a digest or ref file) nor a tag: \(error)")
        }
    }

    /// `promote.if_missing`: what to do when the image to promote is not published.
    enum IfMissing: String, Equatable {
        case fail, skip
    }

    static func ifMissing(_ promote: InputObject) throws(InputError) -> IfMissing {
        guard let text = try promote.string("if_missing") else { return .fail }
        guard let value = IfMissing(rawValue: text) else {
            throw promote.invalid("if_missing", "\(quoted(text)) is not fail or skip")
        }
        return value
    }

    /// The image this resource published for a release commit, or where it is expected.
    enum CommitImage: Equatable {
        case published(Digest, commit: GitCommitID, tag: Tag)
        case missing(commit: GitCommitID, tag: Tag)
    }

    static func notPublishedError(release: GitCommitID, commit: GitCommitID, repository: Repository, tag: Tag) -> String
    {
        "release commit \(release.short) has no image yet: its image is the one of \(commit.short), \(repository):\(tag), which is not in the registry; put that image first, or set promote.if_missing: skip to wait for it without failing"
    }

    static func notPublishedLine(release: GitCommitID, commit: GitCommitID, repository: Repository, tag: Tag) -> String
    {
        "promote: the image of \(commit.short) for release commit \(release.short), \(repository):\(tag), is not published yet; nothing promoted; promote.if_missing is skip, so a later run promotes it once it is"
    }

    /// The immutable tag under which this resource published `change`'s image, for
    /// promoting from a commit: the first template rendered as `out` renders it. A template
    /// with `{short_base}` is refused: the bases an image was built on are not known from
    /// its commit (several images of one commit may exist, one per base).
    static func immutableTagForPromotion(of change: SourceChange, keyed: SourceKeyed) throws(InputError) -> Tag {
        let template = keyed.templates[0]
        if template.description.contains("{short_base}") {
            throw InputError(
                "params.promote.from: a release commit's image is found by its immutable tag, but source.tags' first template \(quoted(template.description)) needs {short_base}, the bases the image was built on, which a commit does not tell; promote from a get of the image (its digest file) instead, or make the first template without {short_base}"
            )
        }
        do { return try keyed.immutableTag(for: change) } catch {
            throw InputError("params.promote.from: the image of \(change.commit.short) cannot be named: \(error)")
        }
    }

    /// The image this resource published for `release`: that of the version of the source at
    /// `release` (the newest commit at or before it that the source's `git` settings select),
    /// under its immutable tag.
    func imageOfReleaseCommit(
        _ release: GitCommitID, keyed: SourceKeyed, source: Source, client: RegistryClient, detector: ChangeDetector
    ) throws -> CommitImage {
        let change: SourceChange?
        do { change = try detector.change(atOrBefore: release) } catch let error as GitSourceError {
            throw InputError("params.promote.from: release commit \(release.short): \(error.message)")
        }
        guard let change else {
            throw InputError(
                "params.promote.from: no commit at or before release commit \(release.short) matches this source's git settings (paths, ignore_paths, [ci skip], commit_filter), so this resource has no image for it"
            )
        }
        let tag = try Self.immutableTagForPromotion(of: change, keyed: keyed)
        guard let found = try client.manifestDescriptor(source.repository, .tag(tag)) else {
            return .missing(commit: change.commit, tag: tag)
        }
        return .published(found.digest, commit: change.commit, tag: tag)
    }

    /// `out` with `params.promote` in source-keyed mode: returns the version of the promoted
    /// image's commit (else the newest commit); when `if_missing: skip` promoted nothing, the
    /// newest version whose image is published (see ``unpromotedVersion``).
    func promoteSourceKeyed(
        _ promote: InputObject, keyed: SourceKeyed, source: Source, client: RegistryClient, detector: ChangeDetector,
        directory: URL, scratch: URL, log: Log
    ) throws -> Data {
        let promoted = try self.promote(
            promote, source: source, client: client, directory: directory, scratch: scratch, log: log
        ) { release in
            try imageOfReleaseCommit(release, keyed: keyed, source: source, client: client, detector: detector)
        }
        guard let promoted else {
            return try CanonicalJSON.encode(
                ResourceResponse(
                    version: try unpromotedVersion(
                        keyed: keyed, source: source, client: client, detector: detector, log: log),
                    metadata: [["name": "promoted", "value": "nothing (not published yet)"]]))
        }
        let digest = promoted.digest
        // The promoted image's commit, else the newest commit: Concourse needs a version.
        let commit =
            (try? revision(of: .digest(digest), client: client, repository: source.repository, scratch: scratch))??
            .revision
        let change = try commit.flatMap { try detector.change(at: $0) } ?? detector.changes(since: nil).last
        guard let change else {
            throw InputError("promote: no commit of the source matches its paths, so there is no version to return")
        }
        return try CanonicalJSON.encode(
            ResourceResponse(
                version: try currentVersion(change, keyed: keyed, source: source, detector: detector, log: log),
                metadata: [
                    ["name": "promoted", "value": digest.rawValue],
                    ["name": "tags", "value": "\(promoted.repository):\(promoted.tags.joined(separator: ","))"],
                ]))
    }

    /// How many recent versions a put that promoted nothing looks through for a published one.
    static let unpromotedSearchDepth = 20

    /// The version a put that promoted nothing returns: the newest of the source's recent
    /// versions whose immutable tag is published, else the newest version.
    ///
    /// Concourse records a put's version as a version of the resource. A published one has
    /// been emitted by `check` already (also with `require_image`), so nothing new is
    /// recorded, and the image being published later is still a new version that triggers
    /// the job again. Returning the unpublished newest commit would record it now, and its
    /// publication would then not be news.
    func unpromotedVersion(
        keyed: SourceKeyed, source: Source, client: RegistryClient, detector: ChangeDetector, log: Log
    ) throws -> SourceVersion {
        var git = keyed.git
        git.versionDepth = Self.unpromotedSearchDepth
        let recent = try ChangeDetector(configuration: git, cacheRoot: detector.cacheRoot, log: log).changes(since: nil)
        for change in recent.reversed() {
            let version = try currentVersion(change, keyed: keyed, source: source, detector: detector, log: log)
            let tag = try keyed.immutableTag(for: change, base: try version.base.map { try Digest($0) })
            if try client.manifestDescriptor(source.repository, .tag(tag)) != nil { return version }
        }
        guard let newest = recent.last else {
            throw InputError("promote: no commit of the source matches its paths, so there is no version to return")
        }
        return try currentVersion(newest, keyed: keyed, source: source, detector: detector, log: log)
    }
}
