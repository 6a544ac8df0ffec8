import Errors
import Foundation
import OCI

/// Everything that decides what a build produces, summarised in one digest (docs/reference.md,
/// build-task, "the inputs digest"): the context files `.dockerignore` lets through (path, type,
/// permission bits, contents, link targets; not modification times, which differ between
/// checkouts of one commit), the Dockerfile, build args, target, platforms and the resolved
/// digests of the base images.
///
/// A base counts by the digest it resolved to, not by the name `FROM` reached it by: a
/// per-commit tag and a merge commit's tag of the same image are the same input. So a build
/// arg only `FROM` lines read (``DockerfileStages/fromOnlyArgs``) is left out: what it
/// decides is recorded as each stage's base. Every other build arg counts, including one
/// the Dockerfile does not declare (buildah ignores it; keeping it costs only a rebuild).
///
/// The digest is the SHA-256 of a text manifest (`manifest()`), one line per input, so two
/// builds can be compared by diffing their manifests. It covers exactly what the build
/// sees: a `.git` directory counts unless `.dockerignore` leaves it out.
public struct BuildInputs: Sendable {
    /// What a stage's `FROM` resolved to.
    public enum StageBase: Sendable, Equatable, CustomStringConvertible {
        case scratch
        /// An earlier stage, by its index.
        case stage(Int)
        /// An external base (a registry image or an image arg), by the digest the build uses.
        case image(Digest)

        public var description: String {
            switch self {
            case .scratch: "scratch"
            case .stage(let index): "stage \(index)"
            case .image(let digest): digest.rawValue
            }
        }
    }

    public var contextDirectory: URL
    public var dockerfile: URL
    public var buildArgs: [String: String]
    /// Build args whose only effect is which base a `FROM` names: not recorded themselves.
    public var fromOnlyArgs: Set<String>
    public var target: String?
    public var platforms: [String]
    /// Each stage's base, in Dockerfile order (up to the target).
    public var stageBases: [StageBase]
    /// With `track_base` (`BASE_DIGESTS_FILE`): the ``BaseSummary`` of the bases, which the
    /// `dev.slipway.base` label carries and `out` keys the version on. It names the bases'
    /// references, so an image labelled for other references is not reused.
    public var baseSummary: Digest?
    /// Context paths the build never sees although `.dockerignore` lets them through:
    /// build-task's own cache and output when they lie inside the context.
    public var excludedPaths: [String]

    public init(
        contextDirectory: URL, dockerfile: URL, buildArgs: [String: String] = [:], fromOnlyArgs: Set<String> = [],
        target: String? = nil, platforms: [String] = [], stageBases: [StageBase] = [], baseSummary: Digest? = nil,
        excludedPaths: [String] = []
    ) {
        self.contextDirectory = contextDirectory
        self.dockerfile = dockerfile
        self.buildArgs = buildArgs
        self.fromOnlyArgs = fromOnlyArgs
        self.target = target
        self.platforms = platforms
        self.stageBases = stageBases
        self.baseSummary = baseSummary
        self.excludedPaths = excludedPaths
    }

    public struct ReadError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<BuildInputs.ReadError>
        public var kind: Kind { .unreadableContext }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    /// The inputs digest.
    public func digest() throws -> Digest {
        Digest.sha256(Data(try manifest().utf8))
    }

    /// The text the digest is of.
    public func manifest() throws -> String {
        // 2: bases by digest per stage, FROM-only args left out (1 named bases by reference).
        var lines = ["slipway-inputs 2"]
        lines.append("dockerfile \(try Self.hash(dockerfile))")
        lines.append("target \(Self.literal(target ?? ""))")
        for platform in platforms { lines.append("platform \(Self.literal(platform))") }
        for (name, value) in buildArgs.sorted(by: { $0.key < $1.key }) where !fromOnlyArgs.contains(name) {
            lines.append("arg \(Self.literal(name)) \(Self.literal(value))")
        }
        for (index, base) in stageBases.enumerated() { lines.append("from \(index) \(base)") }
        if let baseSummary { lines.append("base-summary \(baseSummary)") }
        let ignore = try Dockerignore(contextDirectory: contextDirectory).excluding(excludedPaths)
        try walk("", ignore: ignore, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private func walk(_ relative: String, ignore: Dockerignore, into lines: inout [String]) throws {
        let directory = relative.isEmpty ? contextDirectory : contextDirectory.appendingPathComponent(relative)
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw ReadError("cannot list \(directory.path): \(error.localizedDescription)")
        }
        // Byte order, so the manifest does not depend on the locale or the file system.
        for name in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let path = relative.isEmpty ? name : relative + "/" + name
            let url = contextDirectory.appendingPathComponent(path)
            var status = stat()
            guard lstat(url.path, &status) == 0 else {
                throw ReadError("cannot read \(url.path): \(String(cString: strerror(errno)))")
            }
            let excluded = ignore.excludes(path)
            let mode = String(status.st_mode & 0o7777, radix: 8)
            switch status.st_mode & S_IFMT {
            case S_IFDIR:
                if !excluded { lines.append("dir \(Self.literal(path)) \(mode)") }
                if !excluded || ignore.mayReinclude(below: path) { try walk(path, ignore: ignore, into: &lines) }
            case S_IFREG where !excluded:
                lines.append("file \(Self.literal(path)) \(mode) \(try Self.hash(url))")
            case S_IFLNK where !excluded:
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) ?? ""
                lines.append("link \(Self.literal(path)) \(Self.literal(target))")
            default:
                continue  // excluded, or a socket/fifo/device a build cannot COPY
            }
        }
    }

    /// A string as a JSON literal: a name with a newline or a space cannot fake another line.
    static func literal(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return String(decoding: (try? encoder.encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    /// The SHA-256 of a file, read in 1 MiB chunks.
    static func hash(_ url: URL) throws -> Digest {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw ReadError("cannot read \(url.path)")
        }
        defer { try? handle.close() }
        var hasher = DigestHasher()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(chunk) }
        return hasher.finalize()
    }
}

extension ErrorKind where Owner == BuildInputs.ReadError {
    /// A file of the build context cannot be read.
    public static var unreadableContext: Self { Self("unreadable context") }
}
