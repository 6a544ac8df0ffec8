import Archive
import Errors
import Foundation

/// A stage's filesystem as the assembler sees it: every path with its type, mode, owner and
/// where its bytes are, built from the headers of the stage's layers (whiteouts applied)
/// without extracting anything.
///
/// It answers what Docker's `COPY` asks of the stage it writes into (does the destination
/// exist, is it a directory, which of its parents are symlinks, who is `--chown=app`) and of
/// the stage `COPY --from` reads. Paths are relative to the root, `/`-separated, never with
/// `..`: a layer entry that would leave the root is refused, and every lookup resolves
/// symlinks inside the root (an absolute target or `..` stops at `/`), as a container's
/// filesystem would.
struct FileTree {
    enum Kind: Sendable, Equatable {
        case directory, regular, symbolicLink
        /// Devices and fifos: kept so they shadow lower paths, never copied.
        case special
    }

    /// Where a regular file's bytes are.
    enum Content: Sendable, Equatable {
        /// A file on disk (in the context, or extracted to scratch), opened without following links.
        case file(URL)
        /// An entry of a layer blob (gzip, zstd or plain tar), by its name in the archive.
        case layer(URL, entry: String)
    }

    struct Node: Sendable, Equatable {
        var kind: Kind
        var mode: UInt32
        var uid: Int
        var gid: Int
        var linkTarget: String = ""
        var size: Int64 = 0
        var content: Content?
    }

    struct Failure: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        typealias Kind = ErrorKind<FileTree.Failure>
        var kind: Kind { .invalidTree }
        /// What failed, with which value, and what to do.
        let message: String
        init(_ message: String) { self.message = message }
    }

    private(set) var nodes: [String: Node] = [:]

    subscript(path: String) -> Node? { nodes[path] }

    /// Adds or replaces `path`; a non-directory replacing a directory takes its contents away.
    mutating func insert(_ path: String, _ node: Node) {
        if let existing = nodes[path], existing.kind == .directory, node.kind != .directory { remove(path) }
        nodes[path] = node
    }

    /// Removes `path` and everything below it.
    mutating func remove(_ path: String) {
        nodes[path] = nil
        let prefix = path + "/"
        for key in nodes.keys where key.hasPrefix(prefix) { nodes[key] = nil }
    }

    /// The paths directly or indirectly below `directory` ("" for the root), sorted.
    func descendants(of directory: String) -> [String] {
        let prefix = directory.isEmpty ? "" : directory + "/"
        return nodes.keys.filter { $0.hasPrefix(prefix) && $0 != directory }.sorted(by: Self.byteOrder)
    }

    static func byteOrder(_ a: String, _ b: String) -> Bool { Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) }

    // MARK: Layers

    /// Applies a layer blob's entries, as the image spec's changeset rules say: `.wh.<name>`
    /// removes `<name>`, `.wh..wh..opq` empties its directory of what lower layers put there.
    /// See the [image spec, Whiteouts](https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#whiteouts).
    mutating func apply(layer blob: URL) throws {
        let (source, _) = try decompressing(try FileSource(path: blob.path))
        let reader = TarReader(source)
        var added: Set<String> = []
        while let header = try reader.next() {
            guard let path = try Self.entryPath(header.name, layer: blob) else { continue }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let parent = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : ""
            if name == ".wh..wh..opq" {
                let prefix = parent.isEmpty ? "" : parent + "/"
                for key in nodes.keys where key.hasPrefix(prefix) && key != parent && !added.contains(key) {
                    nodes[key] = nil
                }
                continue
            }
            if name.hasPrefix(".wh.") {
                remove((parent.isEmpty ? "" : parent + "/") + name.dropFirst(4))
                continue
            }
            var node = Node(kind: .special, mode: header.mode & 0o7777, uid: header.uid, gid: header.gid)
            switch header.kind {
            case .directory: node.kind = .directory
            case .regular, .other:
                node.kind = .regular
                node.size = header.size
                node.content = .layer(blob, entry: header.name)
            case .symbolicLink:
                node.kind = .symbolicLink
                node.linkTarget = header.linkName
            case .hardLink:
                guard let target = try Self.entryPath(header.linkName, layer: blob), let linked = nodes[target] else {
                    continue
                }
                node = linked
            default:
                break
            }
            insert(path, node)
            added.insert(path)
        }
    }

    /// A layer entry's name as a root-relative path (`./a/b/` → `a/b`); nil for the root itself.
    static func entryPath(_ name: String, layer: URL) throws -> String? {
        var components: [Substring] = []
        for component in name.split(separator: "/") where component != "." {
            if component == ".." {
                throw Failure(
                    "the layer \(layer.lastPathComponent) has an entry \"\(name)\" that leaves the root; refusing the base image"
                )
            }
            components.append(component)
        }
        return components.isEmpty ? nil : components.joined(separator: "/")
    }

    // MARK: Lookups

    /// `path` (absolute or relative to the root) with its symlinks resolved inside the root:
    /// the parents always, the last component when `followLast`. nil for a loop.
    func resolve(_ path: String, followLast: Bool) -> String? {
        Self.resolve(path, followLast: followLast) {
            nodes[$0].flatMap { $0.kind == .symbolicLink ? $0.linkTarget : nil }
        }
    }

    /// Symlink resolution confined to a root, for any filesystem that can say which paths are
    /// links (`link(path)` gives the target): `..` stops at the root and an absolute target
    /// starts again from it, so no path leaves the root (what securejoin does for runc).
    static func resolve(_ path: String, followLast: Bool, link: (String) -> String?) -> String? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = (resolved + [component]).joined(separator: "/")
            if pending.isEmpty && !followLast {
                resolved.append(component)
                continue
            }
            if let target = link(candidate) {
                hops += 1
                if hops > 40 { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            resolved.append(component)
        }
        return resolved.joined(separator: "/")
    }

    // MARK: Contents

    /// Copies the bytes of the regular files at `paths` whose content is in a layer into files
    /// under `scratch`, one pass over each layer, and points the nodes at them: what
    /// `COPY --from` and `--chown=<name>` read. Names in scratch are numbers, never the
    /// layer's names, so a hostile entry cannot write anywhere else.
    mutating func materialize(_ paths: [String], scratch: URL) throws {
        var wanted: [URL: [String: [String]]] = [:]  // layer → entry name → paths
        for path in paths {
            guard case .layer(let blob, let entry)? = nodes[path]?.content else { continue }
            wanted[blob, default: [:]][entry, default: []].append(path)
        }
        guard !wanted.isEmpty else { return }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        for (blob, entries) in wanted.sorted(by: { $0.key.path < $1.key.path }) {
            let (source, _) = try decompressing(try FileSource(path: blob.path))
            let reader = TarReader(source)
            var extracted: [String: URL] = [:]
            while let header = try reader.next() {
                guard entries[header.name] != nil else { continue }
                let file = scratch.appendingPathComponent("content-\(UUID().uuidString)")
                let sink = try FileSink(path: file.path)
                _ = try copy(from: reader.body, to: sink)
                try sink.finish()
                if let previous = extracted[header.name] { unlink(previous.path) }
                extracted[header.name] = file  // the last entry of a name is the one the layer leaves
            }
            for (entry, paths) in entries {
                guard let file = extracted[entry] else {
                    throw Failure("the layer \(blob.lastPathComponent) lost its entry \(entry) between two reads")
                }
                for path in paths { nodes[path]?.content = .file(file) }
            }
        }
    }

    /// A small regular file's text (`/etc/passwd`), or nil when it is absent or not a file.
    mutating func text(of path: String, scratch: URL) throws -> String? {
        guard let resolved = resolve(path, followLast: true), nodes[resolved]?.kind == .regular,
            nodes[resolved]!.size < 16 << 20
        else { return nil }
        try materialize([resolved], scratch: scratch)
        guard case .file(let url)? = nodes[resolved]?.content else { return nil }
        return String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self)
    }
}

extension ErrorKind where Owner == FileTree.Failure {
    /// A path in the stage's file tree cannot be resolved or written.
    static var invalidTree: Self { Self("invalid tree") }
}
