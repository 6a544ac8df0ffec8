import Archive
import Foundation
import OCI
import RootFS
import TestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One tar entry of a test layer: a header and, for regular files, its contents.
struct Entry: Sendable {
    var header: TarHeader
    var body: Data = Data()

    static let epoch = Date(timeIntervalSince1970: 1_600_000_000)

    static func file(
        _ name: String, _ contents: String = "", mode: UInt32 = 0o644, mtime: Date = epoch, uid: Int = 0, gid: Int = 0
    ) -> Entry {
        file(name, data: Data(contents.utf8), mode: mode, mtime: mtime, uid: uid, gid: gid)
    }

    static func file(_ name: String, data: Data, mode: UInt32 = 0o644, mtime: Date = epoch, uid: Int = 0, gid: Int = 0)
        -> Entry
    {
        Entry(
            header: TarHeader(
                name: name, kind: .regular, mode: mode, size: Int64(data.count), modificationTime: mtime, linkName: "",
                uid: uid, gid: gid), body: data)
    }

    static func dir(_ name: String, mode: UInt32 = 0o755, mtime: Date = epoch, uid: Int = 0, gid: Int = 0) -> Entry {
        Entry(
            header: TarHeader(
                name: name, kind: .directory, mode: mode, size: 0, modificationTime: mtime, linkName: "", uid: uid,
                gid: gid))
    }

    static func symlink(_ name: String, to target: String, mtime: Date = epoch, mode: UInt32 = 0o777) -> Entry {
        Entry(
            header: TarHeader(
                name: name, kind: .symbolicLink, mode: mode, size: 0, modificationTime: mtime, linkName: target, uid: 0,
                gid: 0))
    }

    static func hardlink(_ name: String, to target: String) -> Entry {
        Entry(
            header: TarHeader(
                name: name, kind: .hardLink, mode: 0o644, size: 0, modificationTime: epoch, linkName: target, uid: 0,
                gid: 0))
    }

    static func device(_ name: String, block: Bool = false, major: UInt32, minor: UInt32, mode: UInt32 = 0o666) -> Entry
    {
        var header = TarHeader(
            name: name, kind: block ? .blockDevice : .characterDevice, mode: mode, size: 0, modificationTime: epoch,
            linkName: "", uid: 0, gid: 0)
        header.deviceMajor = major
        header.deviceMinor = minor
        return Entry(header: header)
    }

    static func fifo(_ name: String, mode: UInt32 = 0o600) -> Entry {
        Entry(
            header: TarHeader(
                name: name, kind: .fifo, mode: mode, size: 0, modificationTime: epoch, linkName: "", uid: 0, gid: 0))
    }

    /// A whiteout for `path`: an empty file named `.wh.<name>` in the same directory.
    static func whiteout(_ path: String) -> Entry {
        let url = URL(fileURLWithPath: "/" + path)
        let parent = url.deletingLastPathComponent().path.dropFirst()
        return file((parent.isEmpty ? "" : parent + "/") + ".wh." + url.lastPathComponent, mode: 0o644)
    }

    /// The opaque marker for directory `path`.
    static func opaque(_ path: String) -> Entry {
        file(path.isEmpty ? ".wh..wh..opq" : path + "/.wh..wh..opq", mode: 0o644)
    }
}

/// Writes `entries` as a tar with the Archive module's writer, compressed as asked.
func writeLayer(_ entries: [Entry], to url: URL, compression: Compression = .none) throws {
    let tar = url.appendingPathExtension("plain")
    let writer = TarWriter(try FileSink(path: tar.path))
    for entry in entries {
        try writer.append(entry.header, body: entry.header.kind == .regular ? DataSource(entry.body) : nil)
    }
    try writer.finish()
    switch compression {
    case .none:
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: tar, to: url)
    case .zstd:
        _ = try runProcess("zstd", ["-q", "-f", "--rm", tar.path, "-o", url.path]).checked()
    case .gzip:
        let sink = try FileSink(path: url.path)
        let compressor = try GzipCompressor(sink)
        let source = try FileSource(path: tar.path)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if count == 0 { break }
            try buffer.withUnsafeBytes { try compressor.write(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
        try compressor.finish()
        try FileManager.default.removeItem(at: tar)
    }
}

/// Applies layers in order from files written by ``writeLayer(_:to:compression:)``.
@discardableResult
func unpack(
    _ layers: [[Entry]], into root: URL, scratch: URL, options: Unpacker.Options = .init(),
    compression: Compression = .none
) throws -> [LayerReport] {
    var reports: [LayerReport] = []
    for (index, entries) in layers.enumerated() {
        let file = scratch.appendingPathComponent("layer-\(index).tar")
        try writeLayer(entries, to: file, compression: compression)
        reports.append(try Unpacker(root: root, options: options).apply(layer: try FileSource(path: file.path)))
    }
    return reports
}

/// A tar written byte by byte, for what a well-behaved writer refuses to produce: NUL bytes
/// in names, truncated bodies, unknown entry types.
struct RawTar {
    var bytes = Data()

    mutating func entry(
        name: String, type: Character, size: Int = 0, linkName: String = "", body: Data = Data(),
        pax: [(String, String)] = []
    ) {
        if !pax.isEmpty {
            var records = Data()
            for (key, value) in pax {
                let rest = Data(" \(key)=".utf8) + Data(value.utf8) + Data("\n".utf8)
                var length = rest.count + 1
                while String(length).utf8.count + rest.count != length { length += 1 }
                records += Data(String(length).utf8) + rest
            }
            header(name: "PaxHeader", type: "x", size: records.count, linkName: "")
            bytes += records + Data(count: (512 - records.count % 512) % 512)
        }
        header(name: name, type: type, size: size, linkName: linkName)
        bytes += body + Data(count: (512 - body.count % 512) % 512)
    }

    mutating func end() {
        bytes += Data(count: 1024)
    }

    private mutating func header(name: String, type: Character, size: Int, linkName: String) {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ offset: Int, _ value: [UInt8], _ width: Int) {
            for (index, byte) in value.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, _ width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(0, Array(name.utf8), 100)
        put(100, octal(0o644, 8), 8)
        put(108, octal(0, 8), 8)
        put(116, octal(0, 8), 8)
        put(124, octal(size, 12), 12)
        put(136, octal(1_600_000_000, 12), 12)
        block[156] = type.asciiValue!
        put(157, Array(linkName.utf8), 100)
        put(257, Array("ustar\u{0}00".utf8), 8)
        for index in 148..<156 { block[index] = 0x20 }
        let sum = block.reduce(0) { $0 + Int($1) }
        put(148, octal(sum, 7), 7)
        block[155] = 0x20
        bytes += Data(block)
    }
}

/// What one path in a tree is, as `lstat` sees it, for comparing trees.
struct Node: Hashable, CustomStringConvertible {
    var type: String
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var mtime: Int
    var mtimeNanoseconds: Int
    var linkTarget: String?
    var contentDigest: String?
    var device: UInt64
    var inode: UInt64

    var description: String {
        "\(type) \(String(mode, radix: 8)) \(uid):\(gid) size \(size) mtime \(mtime).\(mtimeNanoseconds)"
            + (linkTarget.map { " -> \($0)" } ?? "") + (contentDigest.map { " \($0.prefix(19))" } ?? "")
            + (type == "char" || type == "block" ? " dev \(device)" : "")
    }
}

/// Every path below `url` (relative, `""` for the directory itself), not following links.
func snapshot(_ url: URL) throws -> [String: Node] {
    var result: [String: Node] = [:]
    func visit(_ relative: String) throws {
        let full = relative.isEmpty ? url.path : url.path + "/" + relative
        var info = stat()
        guard lstat(full, &info) == 0 else { throw TestSupportError("lstat \(full): errno \(errno)") }
        var node = Node(
            type: "", mode: UInt32(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid,
            size: Int64(info.st_size),
            mtime: info.st_mtim.tv_sec, mtimeNanoseconds: info.st_mtim.tv_nsec, device: UInt64(info.st_rdev),
            inode: UInt64(info.st_ino)
        )
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            node.type = "dir"
            node.size = 0
            result[relative] = node
            for child in try FileManager.default.contentsOfDirectory(atPath: full).sorted() {
                try visit(relative.isEmpty ? child : relative + "/" + child)
            }
            return
        case S_IFREG:
            node.type = "file"
            node.contentDigest = Digest.sha256(try Data(contentsOf: URL(fileURLWithPath: full))).description
        case S_IFLNK:
            node.type = "symlink"
            node.linkTarget = try FileManager.default.destinationOfSymbolicLink(atPath: full)
            node.mode = 0
        case S_IFCHR: node.type = "char"
        case S_IFBLK: node.type = "block"
        case S_IFIFO: node.type = "fifo"
        default: node.type = "other"
        }
        result[relative] = node
    }
    try visit("")
    return result
}

/// A temporary directory with `root/` to unpack into and `outside/`, a sentinel tree that
/// no layer may change, next to it. Hostile layers aim at `outside/` by relative and
/// absolute paths.
struct Sandbox {
    let directory: TemporaryDirectory
    var base: URL { directory.url }
    var root: URL { base.appendingPathComponent("root") }
    var outside: URL { base.appendingPathComponent("outside") }
    var scratch: URL { base.appendingPathComponent("scratch") }
    /// The absolute path of `outside/`, as a hostile layer would spell it.
    var outsidePath: String { outside.path }

    init() throws {
        directory = try TemporaryDirectory(prefix: "slipway-rootfs")
        let manager = FileManager.default
        try manager.createDirectory(at: root, withIntermediateDirectories: true)
        try manager.createDirectory(at: scratch, withIntermediateDirectories: true)
        try manager.createDirectory(at: outside.appendingPathComponent("dir"), withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: outside.appendingPathComponent("secret"))
        chmod(outside.appendingPathComponent("secret").path, 0o600)
        try Data("nested".utf8).write(to: outside.appendingPathComponent("dir/file"))
        chmod(outside.appendingPathComponent("dir").path, 0o750)
        try manager.createSymbolicLink(
            atPath: outside.appendingPathComponent("link").path, withDestinationPath: "secret")
    }

    /// Everything except `root/` and `scratch/`: what must never change.
    func sentinel() throws -> [String: Node] {
        var tree = try snapshot(outside)
        tree["<base listing>"] = Node(
            type: try FileManager.default.contentsOfDirectory(atPath: base.path).sorted().joined(separator: ","),
            mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, mtimeNanoseconds: 0, device: 0, inode: 0
        )
        return tree
    }

    func remove() {
        directory.remove()
    }
}

extension Dictionary where Key == String, Value == Node {
    /// Lines naming each path that differs, for a readable failure.
    func differences(from other: [String: Node], ignoringInodes: Bool = true) -> [String] {
        var lines: [String] = []
        for key in Set(keys).union(other.keys).sorted() {
            var mine = self[key]
            var theirs = other[key]
            if ignoringInodes {
                mine?.inode = 0
                theirs?.inode = 0
            }
            if mine != theirs {
                lines.append(
                    "\(key): \(mine.map(\.description) ?? "missing") ≠ \(theirs.map(\.description) ?? "missing")")
            }
        }
        return lines
    }
}
