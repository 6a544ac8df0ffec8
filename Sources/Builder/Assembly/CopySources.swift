import BuildContext
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where a `COPY` reads from: the build context, or an earlier stage's filesystem. Both are
/// roots a source can never leave: `../x` and absolute paths are taken from the root, and a
/// symlink is resolved inside it (``FileTree/resolve(_:followLast:link:)``), so a link in the
/// context to `/etc/passwd` names the context's `etc/passwd`, never the worker's.
protocol CopySource {
    /// The node at a resolved, root-relative path, without following a link there.
    func node(_ path: String) -> FileTree.Node?
    /// The target of the symlink at `path`, or nil.
    func link(_ path: String) -> String?
    /// The names directly in the directory at a resolved path.
    func children(_ directory: String) -> [String]
    /// Whether `path` is left out (`.dockerignore`); always false for a stage.
    func excludes(_ path: String) -> Bool
    /// Whether `.dockerignore` may bring back something below an excluded directory.
    func mayReinclude(below path: String) -> Bool
}

extension CopySource {
    /// What a source as written names: wildcards (`*`, `?`, `[…]`, per component, as Go's
    /// `filepath.Match`) expanded, symlinks resolved inside the root, the source itself
    /// followed as Docker does (`COPY link /x` copies what the link points at, under the
    /// link's name). Excluded paths are not there. Empty when nothing matches.
    func expand(_ source: String) -> [(name: String, path: String)] {
        var candidates: [(name: String, path: String)] = [("", "")]
        for component in source.split(separator: "/").map(String.init) where component != "." && !component.isEmpty {
            var next: [(String, String)] = []
            for (_, prefix) in candidates {
                if component == ".." {
                    let parent = prefix.split(separator: "/").dropLast().joined(separator: "/")
                    next.append((parent.split(separator: "/").last.map(String.init) ?? "", parent))
                } else if component.contains(where: { "*?[".contains($0) }) {
                    for name in children(prefix).sorted(by: FileTree.byteOrder) where fnmatch(component, name, 0) == 0 {
                        next.append((name, prefix.isEmpty ? name : prefix + "/" + name))
                    }
                } else {
                    next.append((component, prefix.isEmpty ? component : prefix + "/" + component))
                }
            }
            // Each step's links are resolved before the next component is looked up in it.
            candidates = next.compactMap { name, path in
                FileTree.resolve(path, followLast: true, link: link).map { (name, $0) }
            }
        }
        var seen = Set<String>()
        return candidates.filter { name, path in
            guard seen.insert(name + "\u{0}" + path).inserted, node(path) != nil else { return false }
            return path.isEmpty || !excludes(path)
        }
    }

    /// Everything below `directory`, sorted, as paths relative to it; links are not followed,
    /// excluded paths are left out.
    func walk(_ directory: String) -> [(relative: String, node: FileTree.Node)] {
        var result: [(String, FileTree.Node)] = []
        func visit(_ path: String, _ relative: String) {
            for name in children(path).sorted(by: FileTree.byteOrder) {
                let child = path.isEmpty ? name : path + "/" + name
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                guard let node = node(child) else { continue }
                let excluded = excludes(child)
                if !excluded { result.append((childRelative, node)) }
                if node.kind == .directory && (!excluded || mayReinclude(below: child)) { visit(child, childRelative) }
            }
        }
        visit(directory, "")
        return result
    }
}

/// The build context on disk, as `.dockerignore` lets a build see it.
struct ContextSource: CopySource {
    let root: URL
    let ignore: Dockerignore

    func url(_ path: String) -> URL { path.isEmpty ? root : root.appendingPathComponent(path) }

    func node(_ path: String) -> FileTree.Node? {
        var status = stat()
        guard lstat(url(path).path, &status) == 0 else { return nil }
        let mode = UInt32(status.st_mode) & 0o7777
        switch status.st_mode & S_IFMT {
        case S_IFDIR: return FileTree.Node(kind: .directory, mode: mode, uid: 0, gid: 0)
        case S_IFREG:
            return FileTree.Node(
                kind: .regular, mode: mode, uid: 0, gid: 0, size: Int64(status.st_size), content: .file(url(path)))
        case S_IFLNK:
            return FileTree.Node(kind: .symbolicLink, mode: 0o777, uid: 0, gid: 0, linkTarget: link(path) ?? "")
        default: return nil  // sockets, fifos and devices are not part of a context
        }
    }

    func link(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: url(path).path)
    }

    func children(_ directory: String) -> [String] {
        guard node(directory)?.kind == .directory else { return [] }
        return (try? FileManager.default.contentsOfDirectory(atPath: url(directory).path)) ?? []
    }

    func excludes(_ path: String) -> Bool { ignore.excludes(path) }
    func mayReinclude(below path: String) -> Bool { ignore.mayReinclude(below: path) }
}

/// An earlier stage's filesystem, for `COPY --from`.
struct StageSource: CopySource {
    let tree: FileTree
    /// Directory → the names in it, made once: a tree has no directory listing of its own.
    let listing: [String: [String]]

    init(tree: FileTree) {
        self.tree = tree
        var listing: [String: [String]] = [:]
        for path in tree.nodes.keys {
            let slash = path.lastIndex(of: "/")
            let parent = slash.map { String(path[..<$0]) } ?? ""
            listing[parent, default: []].append(slash.map { String(path[path.index(after: $0)...]) } ?? path)
        }
        self.listing = listing
    }

    func node(_ path: String) -> FileTree.Node? {
        path.isEmpty ? FileTree.Node(kind: .directory, mode: 0o755, uid: 0, gid: 0) : tree[path]
    }

    func link(_ path: String) -> String? {
        tree[path].flatMap { $0.kind == .symbolicLink ? $0.linkTarget : nil }
    }

    func children(_ directory: String) -> [String] { listing[directory] ?? [] }

    func excludes(_ path: String) -> Bool { false }
    func mayReinclude(below path: String) -> Bool { false }
}
