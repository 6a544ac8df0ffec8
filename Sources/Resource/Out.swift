import Console
import Foundation
import GitSource
import HTTP
import ImageLayout
import OCI
import Registry
import RootFS
import TagPolicy
import Transfer

/// `out DIR`: pushes, tags and promotes images. In image mode it is
/// registry-image's `out`: `image` (a path or glob under DIR: an OCI layout, an OCI archive
/// or a docker-archive), `version` with `bump_aliases`, `additional_tags` with `tag_prefix`;
/// plus `promote`, which retags an existing digest without rebuilding.
public struct Out {
    let log: Log
    let retry: RetryPolicy
    /// How often, and how far apart, floating tags are read back after a put (see `settle`).
    let settleRounds: Int
    let settleInterval: TimeInterval

    public init(log: Log, retry: RetryPolicy = .standard, settleRounds: Int = 3, settleInterval: TimeInterval = 1) {
        self.log = log
        self.retry = retry
        self.settleRounds = settleRounds
        self.settleInterval = settleInterval
    }

    static let paramKeys = ["image", "version", "bump_aliases", "additional_tags", "tag_prefix", "promote"]
    static let promoteKeys = ["from", "to", "release", "repository", "username", "password", "if_missing"]

    public func run(input: Data, directory: URL) throws -> Data {
        let request = try InputObject(JSONValue.parse(input), path: "input", keys: ["source", "params"])
        let parsed = try Source(request.raw("source"))
        let log = parsed.debug ? Log.standardError(verbose: true) : self.log
        let source = try parsed.resolvingRegistry(log: log)
        // The signing key is opened before anything is pushed: a wrong password stops the put first.
        _ = try source.trust.signingKey()
        if case .sourceKeyed(let keyed) = source.mode {
            return try pushSourceKeyed(keyed, source: source, request: request, directory: directory, log: log)
        }
        let params = try Self.params(request.raw("params"), source: source)
        let client = try source.client(log: log, retry: retry)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "slipway-out-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }

        if let promote = try params.object("promote", keys: Self.promoteKeys, secrets: ["password"]) {
            guard
                let promoted = try self.promote(
                    promote, source: source, client: client, directory: directory, scratch: scratch, log: log)
            else {
                throw InputError("params.promote: nothing was promoted, and image mode has no version to return")
            }
            let versionTag: String = if case .tag(let tag) = source.mode { tag.rawValue } else { promoted.tags[0] }
            return try CanonicalJSON.encode(
                ResourceResponse(
                    version: ImageVersion(tag: versionTag, digest: promoted.digest),
                    metadata: [
                        ["name": "promoted", "value": "\(promoted.repository):\(promoted.tags.joined(separator: ","))"]
                    ]))
        }
        guard let pattern = try params.string("image") else {
            throw InputError(
                "params.image is required (or params.promote): the image to push, e.g. image/image.tar or image/oci")
        }
        let path = try Self.match(pattern, in: directory)
        let image = try ImageInput.open(path, scratch: scratch)
        let statements = try Self.statements(besides: path, in: directory)
        try Self.checkStatements(statements, for: image.descriptor.digest, source: source, log: log)
        let tags = try pushTags(source: source, params: params, directory: directory, client: client)
        let report = try ImageTransfer(log: log, progress: ProgressReporter(log: log)).push(
            image, with: client, to: source.repository, tags: tags)
        let signed = try sign(
            report.digest, registry: source.registry, repository: source.repository, client: client, source: source,
            statements: statements, log: log)
        log.info(
            "pushed \(source.registry)/\(source.repository)@\(report.digest) as \(tags.map(\.rawValue).joined(separator: ", ")) (\(report.uploaded) blobs uploaded, \(report.present) already there)"
        )
        let versionTag: String =
            if case .tag(let tag) = source.mode { tag.rawValue } else { tags.first?.rawValue ?? "" }
        return try CanonicalJSON.encode(
            ResourceResponse(
                version: ImageVersion(tag: versionTag, digest: report.digest),
                metadata: [
                    ["name": "repository", "value": "\(source.registry)/\(source.repository)"],
                    ["name": "tags", "value": tags.map(\.rawValue).joined(separator: " ")],
                ] + signed))
    }

    /// What a promote did.
    struct Promoted {
        var digest: Digest
        var repository: Repository
        var tags: [String]
    }

    /// Retags the digest of `from` as `to`, in this repository or another (`repository`,
    /// which may name another registry, reached with `username`/`password` given there, else
    /// a Docker config's credentials). `from` is a `get` directory with a `digest` file, a
    /// tag, or (source-keyed mode, through `imageOfCommit`) a get directory with a `ref` file
    /// and no `digest`: the image this resource published for that (release) commit.
    /// - Returns: nil when the image is not in the registry and `if_missing` is `skip`.
    func promote(
        _ promote: InputObject, source: Source, client: RegistryClient, directory: URL, scratch: URL, log: Log,
        imageOfCommit: ((GitCommitID) throws -> CommitImage)? = nil
    ) throws -> Promoted? {
        let from = try promote.requiredString("from")
        var tags = try (promote.strings("to") ?? []).map { name in
            do { return try Tag(name) } catch { throw promote.invalid("to", "\(error)") }
        }
        guard !tags.isEmpty || promote.has("release") else {
            throw InputError("params.promote.to is required (or promote.release): the tags to add")
        }
        guard
            let digest = try promotedDigest(
                promote, from: from, source: source, client: client, directory: directory, log: log,
                imageOfCommit: imageOfCommit)
        else { return nil }
        var destination = client
        var repository = source.repository
        var registry = source.registry
        if let other = try promote.string("repository") {
            let reference: ImageReference
            do { reference = try ImageReference(other) } catch { throw promote.invalid("repository", "\(error)") }
            repository = reference.repository
            registry = reference.registry
            if reference.registry != source.registry {
                destination = try otherRegistryClient(promote, host: reference.registry, source: source, log: log)
            }
        }
        // A release of tested images: the semver tags (and `stable`) where no newer release owns them.
        tags += try Self.releaseTags(
            promote, directory: directory, client: destination, repository: repository, digest: digest)
        let names = tags.map(\.rawValue)
        let report = try ImageTransfer(log: log, progress: ProgressReporter(log: log)).copy(
            digest, from: client, source.repository, to: destination, repository,
            tags: tags, scratch: scratch)
        log.info(
            "promoted \(digest) to \(repository):\(names.joined(separator: ",")) (\(report.uploaded) blobs copied, \(report.mounted) mounted, \(report.present) already there)"
        )
        // Trust moves with the image: its signatures (which name the repository it was signed
        // in) are copied, and with source.sign it is signed for the repository it is now in.
        try copyAttachments(
            digest, from: client, source, to: destination, registry: registry, repository: repository, log: log)
        _ = try sign(digest, registry: registry, repository: repository, client: destination, source: source, log: log)
        return Promoted(digest: digest, repository: repository, tags: names)
    }

    /// The digest `promote.from` names: its digest file, a tag looked up in the source's
    /// repository, or a release commit's image; nil when it is not published and
    /// `if_missing` is `skip`.
    func promotedDigest(
        _ promote: InputObject, from: String, source: Source, client: RegistryClient, directory: URL, log: Log,
        imageOfCommit: ((GitCommitID) throws -> CommitImage)?
    ) throws -> Digest? {
        let ifMissing = try Self.ifMissing(promote)
        let fromDirectory = try Self.paramDirectory(from, param: "\(promote.path).from", directory: directory)
        func read(_ name: String) throws -> String? {
            try Self.paramFileIfPresent(from + "/" + name, param: "\(promote.path).from", directory: directory)
        }
        switch try Self.promoteFrom(
            from, path: fromDirectory.path, digestFile: read("digest"), refFile: read("ref") ?? read(".git/ref"),
            promote: promote)
        {
        case .digest(let found):
            return found
        case .tag(let tag):
            guard let found = try client.manifestDescriptor(source.repository, .tag(tag)) else {
                if ifMissing == .skip {
                    log.info(
                        "promote: \(source.repository):\(tag) is not published yet; nothing promoted; promote.if_missing is skip"
                    )
                    return nil
                }
                throw promote.invalid("from", "\(source.repository):\(from) does not exist")
            }
            return found.digest
        case .releaseCommit(let release):
            guard let imageOfCommit else {
                throw promote.invalid(
                    "from",
                    "\(fromDirectory.path) holds a commit (ref) but no digest; promoting the image of a commit needs source.git (source-keyed mode); give a get of the image (its digest file) or a tag"
                )
            }
            switch try imageOfCommit(release) {
            case .published(let found, let commit, let tag):
                log.info(
                    "promote: release commit \(release.short) has the image of \(commit.short), \(source.repository):\(tag) (\(found))"
                )
                return found
            case .missing(let commit, let tag):
                if ifMissing == .skip {
                    log.info(
                        Self.notPublishedLine(release: release, commit: commit, repository: source.repository, tag: tag)
                    )
                    return nil
                }
                throw promote.invalid(
                    "from",
                    Self.notPublishedError(release: release, commit: commit, repository: source.repository, tag: tag))
            }
        }
    }

    /// The client for `host` when it is not the source's registry: `params`' own
    /// `username`/`password`, else a Docker config's credentials, else anonymous; TLS
    /// settings are the source's.
    func otherRegistryClient(_ params: InputObject, host: RegistryHost, source: Source, log: Log) throws
        -> RegistryClient
    {
        var credentials: Credentials?
        if let username = try params.string("username") {
            credentials = .basic(username: username, password: try params.requiredString("password"))
        }
        return try RegistryClient(
            host: host, credentials: credentials, insecure: source.insecure,
            caCertificates: source.caCertificates, retry: retry, log: log)
    }

    /// `release` of `params` (a semver value, or a file under `directory` holding one): its
    /// tags `1.2.3` (and `v1.2.3` as written), `1.2`, `1` and `stable`, each only where no
    /// newer release in `repository` owns it. Empty when `release` is not set.
    ///
    /// The full release tags never move: when `1.2.3` (or `v1.2.3`) already points at an
    /// image other than `digest`, this throws one line naming the tag and both digests.
    static func releaseTags(
        _ params: InputObject, directory: URL, client: RegistryClient, repository: Repository, digest: Digest
    ) throws -> [Tag] {
        guard let release = try params.string("release") else { return [] }
        let text = try valueOrFile(release, param: "\(params.path).release", directory: directory).value
        guard let version = SemanticVersion(text) else {
            throw params.invalid(
                "release",
                "\"\(InputObject.printable(text))\" is not a semantic version (from the value or the file it names)")
        }
        for name in ReleaseTags.immutableTags(for: version) {
            guard let tag = try? Tag(name) else { continue }
            let existing = try client.manifestDescriptor(repository, .tag(tag))?.digest
            if let refusal = releaseTagRefusal(repository: repository, tag: name, existing: existing, digest: digest) {
                throw params.invalid("release", refusal)
            }
        }
        let existing = try client.tags(repository).compactMap { SemanticVersion($0.rawValue) }
        return ReleaseTags.tags(for: version, existing: existing).compactMap { try? Tag($0) }
    }

    /// Why a full release tag cannot be put on `digest` (nil when it can): it already points
    /// at another image. Putting it on the image it already has is a no-op.
    static func releaseTagRefusal(repository: Repository, tag: String, existing: Digest?, digest: Digest) -> String? {
        guard let existing, existing != digest else { return nil }
        return
            "release \(repository):\(tag) already points at \(existing), not at \(digest); a release tag never moves to another image: release a new version instead"
    }

    /// A param that is a value, or names a file under the put's `directory` holding one (a
    /// get's `release` file): the file's trimmed content and the file when it can be read,
    /// else the text as given, trimmed. Shared by `release`, `promote.release` and
    /// `bump_tag_file`. A path that leads out of the build directory (absolute, `..` above
    /// it, or through a link that does) is refused, naming `param`.
    static func valueOrFile(_ text: String, param: String, directory: URL) throws(InputError) -> (
        value: String, file: URL?
    ) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return (trimmed, nil) }
        let beneath = BeneathDirectory(directory)
        do {
            guard let file = try beneath.resolve(text) else { return (trimmed, nil) }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { return (trimmed, nil) }
            guard let data = try beneath.read(text), let content = String(data: data, encoding: .utf8) else {
                throw InputError(
                    "\(param): \(quoted(InputObject.printable(text))) in the build directory is not UTF-8 text")
            }
            return (content.trimmingCharacters(in: .whitespacesAndNewlines), file)
        } catch let refusal as BeneathDirectory.Refusal {
            throw InputError("\(param): \(quoted(InputObject.printable(text))) \(refusal)")
        } catch let error as InputError {
            throw error
        } catch {
            throw InputError("\(param): \(quoted(InputObject.printable(text))): \(error)")
        }
    }

    /// The text of the file `path` (the param named `param`) names under the build
    /// directory. One line naming the param, never the file's content, when the path leads
    /// out of the directory, or the file is missing or unreadable.
    /// - Parameter limit: the largest file read (a tag list or a version is small; an
    ///   attestation, an SBOM, can take megabytes).
    static func paramFile(_ path: String, param: String, directory: URL, limit: Int = 1 << 20) throws(InputError)
        -> String
    {
        guard let text = try paramFileIfPresent(path, param: param, directory: directory, limit: limit) else {
            throw InputError("\(param): \(quoted(InputObject.printable(path))) is not a file in the build directory")
        }
        return text
    }

    /// As ``paramFile(_:param:directory:limit:)``, nil when nothing is at `path`.
    static func paramFileIfPresent(_ path: String, param: String, directory: URL, limit: Int = 1 << 20)
        throws(InputError) -> String?
    {
        let data: Data?
        do { data = try BeneathDirectory(directory).read(path, limit: limit) } catch {
            throw InputError("\(param): \(quoted(InputObject.printable(path))) \(error)")
        }
        guard let data else { return nil }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError(
                "\(param): \(quoted(InputObject.printable(path))) in the build directory is not UTF-8 text")
        }
        return text
    }

    /// The directory `path` (the param named `param`) names under the build directory, links
    /// resolved; refused in one line when it leads out of it. A path where nothing is stays
    /// as given (a tag, for `promote.from`).
    static func paramDirectory(_ path: String, param: String, directory: URL) throws(InputError) -> URL {
        do { return try BeneathDirectory(directory).resolve(path) ?? directory.appendingPathComponent(path) } catch {
            throw InputError("\(param): \(quoted(InputObject.printable(path))) \(error)")
        }
    }

    /// What `bump_tag_file` asks for.
    enum BumpRequest: Equatable {
        /// `major`, `minor` or `patch` of the semantic version in the tag file.
        case keyword(String)
        /// A new value, literal or read from a file.
        case value(String)
    }

    /// `bump_tag_file`: `major`, `minor` or `patch`; else a file under the put's directory
    /// (a get's `release` file) whose trimmed content is the new value; else the text itself
    /// as the value. Text with a `/` that names no file is refused rather than committed
    /// (a get that did not run, a typo in its path).
    static func bumpRequest(_ text: String, directory: URL) throws(InputError) -> BumpRequest {
        if ["major", "minor", "patch"].contains(text) { return .keyword(text) }
        let (value, file) = try valueOrFile(text, param: "params.bump_tag_file", directory: directory)
        if let file {
            guard !value.isEmpty else {
                throw InputError("params.bump_tag_file: \(file.path) is empty; it must hold the new tag file value")
            }
            return .value(value)
        }
        if text.contains("/") {
            throw InputError(
                "params.bump_tag_file: \(quoted(text)) names no file in \(directory.path); give major, minor, patch, a value, or the path of a file of a get (e.g. base-release/release)"
            )
        }
        return .value(value)
    }

    /// The new tag file value for `request`, given the current one.
    static func bumped(_ old: String, _ request: BumpRequest) throws -> String {
        switch request {
        case .keyword(let how): try bumped(old, how)
        case .value(let value): value
        }
    }

    /// The one path under `directory` that `pattern` (a glob) matches, its links resolved
    /// beneath `directory`: a pattern or a link that leads out of it is refused.
    static func match(_ pattern: String, in directory: URL) throws -> URL {
        guard !pattern.hasPrefix("/") else {
            throw InputError(
                "params.image: \(quoted(InputObject.printable(pattern))) is an absolute path; give a path under the build directory"
            )
        }
        let beneath = BeneathDirectory(directory)
        let full = beneath.root.appendingPathComponent(pattern).path
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(full, 0, nil, &result) == 0, result.gl_pathc > 0 else {
            throw InputError("params.image: no file or directory matches \(quoted(pattern)) in \(directory.path)")
        }
        guard result.gl_pathc == 1, let first = result.gl_pathv[0] else {
            throw InputError("params.image: \(quoted(pattern)) matches \(result.gl_pathc) paths; it must match one")
        }
        let matched = String(cString: first)
        let relative =
            matched.hasPrefix(beneath.root.path + "/")
            ? String(matched.dropFirst(beneath.root.path.count + 1)) : matched
        do {
            guard let resolved = try beneath.resolve(relative) else {
                throw InputError("params.image: no file or directory matches \(quoted(pattern)) in \(directory.path)")
            }
            try checkContents(of: resolved, beneath: beneath)
            return resolved
        } catch let refusal as BeneathDirectory.Refusal {
            throw InputError("params.image: \(quoted(InputObject.printable(relative))) \(refusal)")
        }
    }

    /// Refuses an image whose files lead out of the build directory: a layout's files are
    /// read by path, so every link in it must resolve beneath the directory (its target is
    /// then read, not the link's); a FIFO, socket or device (a read that blocks or never
    /// ends) is refused wherever it is.
    static func checkContents(of image: URL, beneath: BeneathDirectory) throws {
        let root = beneath.root.path + "/"
        func relative(_ url: URL) -> String {
            let path = url.standardizedFileURL.path
            return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
        }
        var entries = [image]
        if let enumerator = FileManager.default.enumerator(at: image, includingPropertiesForKeys: nil, options: []) {
            for case let url as URL in enumerator { entries.append(url) }
        }
        for entry in entries {
            var info = stat()
            guard lstat(entry.path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG, S_IFDIR:
                continue
            case S_IFLNK:
                do { _ = try beneath.resolve(relative(entry)) } catch {
                    throw InputError("params.image: \(quoted(InputObject.printable(relative(entry)))) \(error)")
                }
            default:
                throw InputError(
                    "params.image: \(quoted(InputObject.printable(relative(entry)))) is not a regular file, directory or link (a FIFO, socket or device); an image holds only files"
                )
            }
        }
    }
}
