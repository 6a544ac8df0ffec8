import Archive
import Foundation
import OCI

/// The files of an image archive (an OCI archive or a docker-archive), extracted into a
/// directory of our own.
///
/// Only what these formats contain is accepted: directories and regular files, plus
/// symbolic and hard links between files of the archive (`docker save` links layers it
/// has already written). Names are normalised within the archive: an absolute name, a `..`
/// that climbs out, or a link whose target leaves the archive is an error. No link is
/// created on disk: a link becomes a hard link to the extracted file it names, so nothing
/// read afterwards can lead outside the directory.
struct ExtractedArchive {
    let directory: URL

    static func extract(_ archive: URL, into directory: URL) throws -> ExtractedArchive {
        let (source, _) = try decompressing(try FileSource(path: archive.path))
        let reader = TarReader(source)
        var links: [(name: String, target: String)] = []
        let manager = FileManager.default
        try manager.createDirectory(at: directory, withIntermediateDirectories: true)
        while let header = try reader.next() {
            guard let name = normalise(header.name, relativeTo: nil) else {
                throw LayoutError("\(archive.path): refusing entry \(quoted(header.name)): it leaves the archive")
            }
            if name.isEmpty { continue }
            let destination = directory.appendingPathComponent(name)
            switch header.kind {
            case .directory:
                try manager.createDirectory(at: destination, withIntermediateDirectories: true)
            case .regular:
                try manager.createDirectory(
                    at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                let sink = try FileSink(path: destination.path)
                _ = try copy(from: reader.body, to: sink)
                try sink.finish()
            case .symbolicLink:
                let base = (name as NSString).deletingLastPathComponent
                guard let target = normalise(header.linkName, relativeTo: base) else {
                    throw LayoutError(
                        "\(archive.path): refusing link \(quoted(header.name)) → \(quoted(header.linkName)): it leaves the archive"
                    )
                }
                links.append((name, target))
            case .hardLink:
                guard let target = normalise(header.linkName, relativeTo: nil) else {
                    throw LayoutError(
                        "\(archive.path): refusing link \(quoted(header.name)) → \(quoted(header.linkName)): it leaves the archive"
                    )
                }
                links.append((name, target))
            default:
                throw LayoutError(
                    "\(archive.path): unexpected entry \(quoted(header.name)) in an image archive (not a file or directory)"
                )
            }
        }
        try materialise(links, in: directory, archive: archive)
        return ExtractedArchive(directory: directory)
    }

    /// Makes each of `links` (names and targets within `directory`) a hard link to the file
    /// its target names. Links may point at links; they are resolved in as many passes as
    /// there are links.
    private static func materialise(_ links: [(name: String, target: String)], in directory: URL, archive: URL) throws {
        let manager = FileManager.default
        var pending = links
        for _ in 0...links.count where !pending.isEmpty {
            pending = try pending.filter { link in
                let target = directory.appendingPathComponent(link.target)
                var isDirectory: ObjCBool = false
                guard manager.fileExists(atPath: target.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    return true
                }
                let destination = directory.appendingPathComponent(link.name)
                try manager.createDirectory(
                    at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                unlink(destination.path)
                guard Foundation.link(target.path, destination.path) == 0 else {
                    throw LayoutError(
                        "\(archive.path): cannot materialise link \(link.name): \(String(cString: strerror(errno)))")
                }
                return false
            }
        }
        if let dangling = pending.first {
            throw LayoutError(
                "\(archive.path): link \(quoted(dangling.name)) names \(quoted(dangling.target)), which is not a file in the archive"
            )
        }
    }

    /// `name` as a clean relative path inside the archive (`a/b`), or nil if it climbs out.
    /// A relative link target is taken from `base`, the link's own directory.
    static func normalise(_ name: String, relativeTo base: String?) -> String? {
        if name.hasPrefix("/") { return nil }  // an absolute name or link target is outside by definition
        if name.contains("\0") { return nil }
        var parts: [Substring] = []
        let start = (base ?? "") + "/" + name
        for component in start.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(component)
            }
        }
        return parts.joined(separator: "/")
    }
}
