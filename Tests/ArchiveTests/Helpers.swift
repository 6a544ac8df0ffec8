import Foundation
import TestSupport
import Testing

@testable import Archive

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs `body` and returns the ``ArchiveError`` it threw; records an issue when it threw
/// something else or nothing.
func archiveError(
    _ body: () throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ArchiveError? {
    do {
        try body()
        Issue.record("expected an ArchiveError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ArchiveError {
        #expect(!error.description.contains("\n"), "error messages are one line", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected an ArchiveError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Bytes that compress somewhat, like real files, and differ with `seed`.
func sampleBytes(_ count: Int, seed: UInt64 = 1) -> Data {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        // Runs of a repeated word mixed with random bytes.
        if generator.next() % 3 == 0 {
            for byte in "slipway ".utf8 where index < count {
                bytes[index] = byte
                index += 1
            }
        } else {
            bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            index += 1
        }
    }
    return Data(bytes)
}

/// A deterministic random number generator (SplitMix64), so fuzz failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Serves another source's bytes at most `chunk` bytes per read, to exercise callers' handling
/// of short reads.
final class ChunkedSource: ByteSource {
    private let upstream: any ByteSource
    private let chunk: Int

    init(_ upstream: any ByteSource, chunk: Int) {
        self.upstream = upstream
        self.chunk = chunk
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try upstream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, chunk)]))
    }
}

/// `count` bytes of a repeating pattern without holding them, optionally endless.
final class PatternSource: ByteSource {
    private var remaining: Int64
    private(set) var produced: Int64 = 0

    init(count: Int64 = .max) {
        remaining = count
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = Int(min(Int64(buffer.count), remaining))
        for index in 0..<n {
            buffer[index] = UInt8(truncatingIfNeeded: (produced + Int64(index)) % 251)
        }
        remaining -= Int64(n)
        produced += Int64(n)
        return n
    }
}

/// Writes `entries` with a ``TarWriter`` and returns the archive.
func makeTar(_ entries: [(TarHeader, Data?)]) throws -> Data {
    let sink = DataSink()
    let writer = TarWriter(sink)
    for (header, body) in entries {
        try writer.append(header, body: body.map { DataSource($0) })
    }
    try writer.finish()
    return sink.data
}

/// Reads every entry of `archive` with a ``TarReader``, bodies included.
func readTar(_ archive: Data, chunk: Int = .max) throws -> [(header: TarHeader, body: Data)] {
    let reader = TarReader(ChunkedSource(DataSource(archive), chunk: chunk))
    var entries: [(header: TarHeader, body: Data)] = []
    while let header = try reader.next() {
        let sink = DataSink()
        try copy(from: reader.body, to: sink, bufferSize: 1000)
        entries.append((header, sink.data))
    }
    return entries
}

/// Compresses or decompresses `data` through one of our streams.
func pipe(_ data: Data, through makeSink: (any ByteSink) throws -> any ByteSink) throws -> Data {
    let output = DataSink()
    let sink = try makeSink(output)
    try sink.write(data)
    try sink.finish()
    return output.data
}

func readAll(_ source: any ByteSource) throws -> Data {
    let sink = DataSink()
    try copy(from: source, to: sink, bufferSize: 4096)
    return sink.data
}

func gzipped(_ data: Data, level: Int32 = 6) throws -> Data {
    try pipe(data) { try GzipCompressor($0, level: level) }
}

/// `data` compressed by the zstd CLI (Slipway reads zstd layers, it never writes them).
func zstded(_ data: Data, level: Int32 = 3) throws -> Data {
    try runProcess("zstd", ["-q", "-c", "-\(level)"], stdin: data).checked().stdout
}

/// What `lstat` says about a path, in the terms a tar header uses.
struct FileFacts: Equatable, CustomStringConvertible {
    var kind: TarHeader.Kind
    var mode: UInt32
    var size: Int64
    var seconds: Int
    var nanoseconds: Int
    var inode: UInt64
    var linkCount: Int
    var uid: Int
    var gid: Int
    var deviceMajor: UInt32
    var deviceMinor: UInt32

    var description: String {
        "\(kind) mode \(String(mode, radix: 8)) size \(size) mtime \(seconds).\(nanoseconds)"
    }

    init(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw ArchiveError(.fileSystem, "lstat \(path): errno \(errno)")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        case S_IFIFO: kind = .fifo
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: kind = .other(0)
        }
        mode = UInt32(info.st_mode) & 0o7777
        size = Int64(info.st_size)
        seconds = Int(info.st_mtim.tv_sec)
        nanoseconds = Int(info.st_mtim.tv_nsec)
        inode = UInt64(info.st_ino)
        linkCount = Int(info.st_nlink)
        uid = Int(info.st_uid)
        gid = Int(info.st_gid)
        // glibc's major()/minor() are macros Swift cannot call; this is their definition.
        let device = UInt64(info.st_rdev)
        deviceMajor = UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & 0xffff_f000))
        deviceMinor = UInt32(truncatingIfNeeded: (device & 0xff) | ((device >> 12) & 0xffff_ff00))
    }
}

/// Sets a path's modification time (not following a symbolic link) to the nanosecond.
func setModificationTime(_ path: String, seconds: Int, nanoseconds: Int = 0) throws {
    let times = [
        timespec(tv_sec: seconds, tv_nsec: nanoseconds),
        timespec(tv_sec: seconds, tv_nsec: nanoseconds),
    ]
    guard utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) == 0 else {
        throw ArchiveError(.fileSystem, "utimensat \(path): errno \(errno)")
    }
}

let isRoot = geteuid() == 0
