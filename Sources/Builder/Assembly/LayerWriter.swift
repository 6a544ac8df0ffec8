import Archive
import Foundation
import ImageLayout
import OCI

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the entries of one assembled layer as a reproducible `tar+gzip` blob: entries in
/// byte order of their paths, every time the build's timestamp (the commit time), no user or
/// group names, directories without a trailing `/`, as buildah writes them. The tar is hashed
/// (the diff ID), compressed and hashed again in the one pass that writes it.
struct LayerWriter {
    let layout: OCILayout
    let timestamp: Date

    struct Written {
        var descriptor: Descriptor
        var diffID: Digest
    }

    func write(_ entries: [String: FileTree.Node]) throws -> Written {
        let temporary = layout.incomingDirectory.appendingPathComponent(".layer-\(UUID().uuidString)")
        defer { unlink(temporary.path) }
        let file = try FileSink(path: temporary.path)
        let compressed = HashingSink(file)
        let uncompressed = HashingSink(try GzipCompressor(compressed))
        let tar = TarWriter(uncompressed)
        for path in entries.keys.sorted(by: FileTree.byteOrder) {
            let node = entries[path]!
            var header = TarHeader(
                name: path, kind: .regular, mode: node.mode, modificationTime: timestamp, uid: node.uid, gid: node.gid)
            var body: (any ByteSource)?
            switch node.kind {
            case .directory:
                header.kind = .directory
            case .symbolicLink:
                header.kind = .symbolicLink
                header.linkName = node.linkTarget
            case .regular:
                guard case .file(let url)? = node.content else {
                    throw FileTree.Failure(
                        "internal: the content of /\(path) was not read before its layer was written")
                }
                // Never through a link: a context file replaced by a link since it was listed is refused.
                let descriptor = open(url.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                guard descriptor >= 0 else {
                    throw FileTree.Failure("cannot read \(url.path) for /\(path): \(String(cString: strerror(errno)))")
                }
                header.size = node.size
                body = FileSource(fileDescriptor: descriptor, closeOnDeinit: true)
            case .special:
                continue
            }
            try tar.append(header, body: body)
        }
        try tar.finish()
        let descriptor = Descriptor(mediaType: .ociLayerGzip, digest: compressed.digest, size: compressed.count)
        try layout.moveIntoPlace(temporary, digest: descriptor.digest)
        return Written(descriptor: descriptor, diffID: uncompressed.digest)
    }
}
