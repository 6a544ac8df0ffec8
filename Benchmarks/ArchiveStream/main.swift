// Streams a directory through Slipway's tar writer and gzip compressor, or an archive back
// through the decompressor and tar reader, hashing every file body. Run by
// Benchmarks/archive-stream, which measures time and peak memory against GNU tar and gzip.
//
//   ArchiveStream pack <directory> <output.tar.gz>
//   ArchiveStream read <input.tar[.gz|.zst]> <report-file>
//
// `read` writes "<entries> <body bytes> <sha256 of all bodies in archive order>" to the report
// file, the same digest as `tar -xOf <archive> | sha256sum`.
import Archive
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Discards what is written (the hashing happens in front of it).
final class NullSink: ByteSink {
    func write(_ bytes: UnsafeRawBufferPointer) throws {}
    func finish() throws {}
}

struct Failure: Error, CustomStringConvertible {
    let description: String
}

/// Appends `relative` (and, for a directory, everything under it, by name) to `writer`.
/// Hard links to a file already written become hard-link entries.
func append(_ root: String, _ relative: String, to writer: TarWriter, links: inout [String: String]) throws {
    let path = root + "/" + relative
    var info = stat()
    guard lstat(path, &info) == 0 else {
        throw Failure(description: "lstat \(path): \(String(cString: strerror(errno)))")
    }
    let time = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    var header = TarHeader(
        name: relative, kind: .regular, mode: UInt32(info.st_mode) & 0o7777,
        modificationTime: time, uid: Int(info.st_uid), gid: Int(info.st_gid))
    var body: (any ByteSource)?
    switch info.st_mode & S_IFMT {
    case S_IFDIR:
        header.kind = .directory
        header.name += "/"
    case S_IFLNK:
        header.kind = .symbolicLink
        header.linkName = try FileManager.default.destinationOfSymbolicLink(atPath: path)
    case S_IFIFO:
        header.kind = .fifo
    case S_IFREG:
        let key = "\(info.st_dev):\(info.st_ino)"
        if info.st_nlink > 1, let first = links[key] {
            header.kind = .hardLink
            header.linkName = first
        } else {
            if info.st_nlink > 1 { links[key] = relative }
            header.size = Int64(info.st_size)
            body = try FileSource(path: path)
        }
    default:
        return  // devices and sockets: not in the benchmark data
    }
    try writer.append(header, body: body)
    if header.kind == .directory {
        for child in try FileManager.default.contentsOfDirectory(atPath: path).sorted(by: {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }) {
            try append(root, relative + "/" + child, to: writer, links: &links)
        }
    }
}

func pack(directory: String, output: String) throws {
    let writer = TarWriter(try GzipCompressor(FileSink(path: output)))
    var links: [String: String] = [:]
    for child in try FileManager.default.contentsOfDirectory(atPath: directory).sorted(by: {
        $0.utf8.lexicographicallyPrecedes($1.utf8)
    }) {
        try append(directory, child, to: writer, links: &links)
    }
    try writer.finish()
}

func read(input: String, report: String) throws {
    let (source, _) = try decompressing(FileSource(path: input))
    let reader = TarReader(source)
    let bodies = HashingSink(NullSink())
    var entries = 0
    while let header = try reader.next() {
        entries += 1
        if header.kind == .regular { try copy(from: reader.body, to: bodies) }
    }
    // Through to the end, so the gzip trailer of the last member is checked too.
    try drain(source)
    try Data("\(entries) \(bodies.count) \(bodies.digest.encoded)\n".utf8).write(to: URL(fileURLWithPath: report))
}

let arguments = CommandLine.arguments
do {
    switch (arguments.count, arguments.count > 1 ? arguments[1] : "") {
    case (4, "pack"): try pack(directory: arguments[2], output: arguments[3])
    case (4, "read"): try read(input: arguments[2], report: arguments[3])
    default:
        FileHandle.standardError.write(
            Data("usage: ArchiveStream pack <directory> <output.tar.gz> | read <archive> <report-file>\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("ArchiveStream: \(error)\n".utf8))
    exit(1)
}
