import Errors
import Foundation

/// One `COPY`/`ADD`, applied as Docker and buildah apply it, to a stage's tree: the entries
/// of the layer it makes.
///
/// - A directory source copies its contents; a file goes to `dest` or, when `dest` ends in
///   `/` or is an existing directory, into it; several sources (or a wildcard matching
///   several) need a `dest` ending in `/`. A relative `dest` is against `WORKDIR`.
/// - Owner: `--chown`, else 0:0 from the context and the source's own from an earlier
///   stage. Mode: `--chmod`, else the source's (setuid and setgid dropped from the context,
///   as buildah does). Symlinks inside a copied directory are copied as links.
/// - Parent directories that do not exist yet are made, mode 0755, owned as `--chown` says
///   (buildah's choice, measured), and are part of the layer.
struct CopyInstruction {
    var sources: [String]
    var destination: String
    var owner: (uid: Int, gid: Int)?
    var chmod: UInt32?
    var fromStage: Bool
    var isAdd: Bool
    var line: Int
    var keyword: String { isAdd ? "ADD" : "COPY" }

    struct Failure: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        typealias Kind = ErrorKind<CopyInstruction.Failure>
        var kind: Kind { .copyFailed }
        /// What failed, with which value, and what to do.
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// Applies the copy to `tree` and returns the layer's entries by path.
    func apply(from source: any CopySource, to tree: inout FileTree, workdir: String) throws -> [String: FileTree.Node]
    {
        let absolute =
            destination.hasPrefix("/") ? destination : (workdir.hasSuffix("/") ? workdir : workdir + "/") + destination
        let intoDirectory = destination.hasSuffix("/") || destination == "." || destination.hasSuffix("/.")
        // The destination's parents are followed inside the stage's root (a /bin → usr/bin
        // link in the base puts the file in /usr/bin, as in a container).
        guard let target = tree.resolve(absolute, followLast: true) else {
            throw Failure("Dockerfile line \(line): \(keyword) destination \(destination) is in a symlink loop")
        }
        var matches: [(name: String, path: String)] = []
        for written in sources {
            let found = source.expand(written)
            guard !found.isEmpty else {
                let place = fromStage ? "the stage it copies from" : "the build context (or .dockerignore excludes it)"
                throw Failure("Dockerfile line \(line): \(keyword) \(written): no such file in \(place)")
            }
            matches += found
        }
        if matches.count > 1 && !intoDirectory {
            throw Failure(
                "Dockerfile line \(line): \(keyword) of several files needs a destination ending in /, not \(destination)"
            )
        }
        var entries: [String: FileTree.Node] = [:]
        let targetIsDirectory = intoDirectory || tree[target]?.kind == .directory
        for (name, match) in matches {
            guard var node = source.node(match) else { continue }
            if node.kind == .directory {
                try makeDirectory(target, in: &tree, entries: &entries)
                for (relative, child) in source.walk(match) {
                    try place(
                        child, at: target.isEmpty ? relative : target + "/" + relative, in: &tree, entries: &entries)
                }
            } else {
                if isAdd, !fromStage, node.kind == .regular, case .file(let url)? = node.content, Self.isArchive(url) {
                    throw AssemblyRefusal(
                        line: line,
                        "ADD \(match) is an archive Docker would extract; the assembler does not extract archives")
                }
                let path = targetIsDirectory ? (target.isEmpty ? name : target + "/" + name) : target
                if node.kind == .special { continue }
                node.linkTarget = node.kind == .symbolicLink ? node.linkTarget : ""
                try place(node, at: path, in: &tree, entries: &entries)
            }
        }
        return entries
    }

    /// Puts one copied node at `path`, its missing parents made first.
    private func place(
        _ node: FileTree.Node, at path: String, in tree: inout FileTree, entries: inout [String: FileTree.Node]
    ) throws {
        guard node.kind != .special else { return }
        if let slash = path.lastIndex(of: "/") {
            try makeDirectory(String(path[..<slash]), in: &tree, entries: &entries)
        }
        var copied = node
        if let owner {
            copied.uid = owner.uid
            copied.gid = owner.gid
        } else if !fromStage {
            copied.uid = 0
            copied.gid = 0
        }
        if copied.kind == .symbolicLink {
            copied.mode = 0o777
        } else if let chmod {
            copied.mode = chmod
        } else if !fromStage {
            copied.mode &= ~UInt32(0o6000)
        }
        // An existing directory stays (its contents are merged into); anything else is replaced.
        if copied.kind == .directory, let existing = tree[path], existing.kind == .directory {
            if entries[path] == nil { return }
        }
        tree.insert(path, copied)
        entries[path] = copied
    }

    /// `path` and its missing parents as directories (0755, `--chown`'s owner or root).
    private func makeDirectory(_ path: String, in tree: inout FileTree, entries: inout [String: FileTree.Node]) throws {
        var current = ""
        for component in path.split(separator: "/") {
            current = current.isEmpty ? String(component) : current + "/" + component
            if let existing = tree[current] {
                guard existing.kind == .directory else {
                    throw Failure(
                        "Dockerfile line \(line): \(keyword) cannot make the directory /\(current): a file of that name is in the way"
                    )
                }
                continue
            }
            let directory = FileTree.Node(kind: .directory, mode: 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0)
            tree.insert(current, directory)
            entries[current] = directory
        }
    }

    /// Whether a local file is an archive `ADD` would extract: tar, or gzip, bzip2 or xz
    /// (Docker's list; moby `pkg/archive` `DetectCompression`).
    static func isArchive(_ url: URL) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 512)) ?? Data())
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x1f, 0x8b]) || starts(Array("BZh".utf8)) || starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            return true
        }
        return head.count >= 262 && Array(head[257..<262]) == Array("ustar".utf8)
    }

    /// `--chown=user[:group]`: numbers as given; names from the stage's `/etc/passwd` and
    /// `/etc/group`. A user without a group takes the user's primary group from
    /// `/etc/passwd`, else the same number (buildah's rule).
    static func owner(_ text: String, tree: inout FileTree, scratch: URL, line: Int) throws -> (uid: Int, gid: Int) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let user = parts.first, !user.isEmpty, parts.count == 1 || !parts[1].isEmpty else {
            throw Failure("Dockerfile line \(line): --chown=\(text) names no user (user, user:group, uid or uid:gid)")
        }
        func table(_ path: String) throws -> [[String]] {
            (try tree.text(of: path, scratch: scratch) ?? "").split(separator: "\n").map {
                $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            }
        }
        let passwd = try table("etc/passwd")
        let uid: Int
        var primaryGroup: Int?
        if let number = Int(user) {
            uid = number
            primaryGroup = passwd.first { $0.count > 3 && $0[2] == user }.flatMap { Int($0[3]) }
        } else {
            guard let entry = passwd.first(where: { $0.count > 3 && $0[0] == user }), let number = Int(entry[2]) else {
                throw Failure("Dockerfile line \(line): --chown=\(text): no user \(user) in the stage's /etc/passwd")
            }
            uid = number
            primaryGroup = Int(entry[3])
        }
        guard parts.count > 1 else { return (uid, primaryGroup ?? uid) }
        let group = parts[1]
        if let number = Int(group) { return (uid, number) }
        guard let entry = try table("etc/group").first(where: { $0.count > 2 && $0[0] == group }),
            let gid = Int(entry[2])
        else {
            throw Failure("Dockerfile line \(line): --chown=\(text): no group \(group) in the stage's /etc/group")
        }
        return (uid, gid)
    }
}

extension ErrorKind where Owner == CopyInstruction.Failure {
    /// A COPY or ADD cannot be applied to the stage.
    static var copyFailed: Self { Self("copy failed") }
}
