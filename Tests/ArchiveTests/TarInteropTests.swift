import Foundation
import TestSupport
import Testing

@testable import Archive

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Interoperability with GNU tar, the independent implementation on every Linux machine: its
/// archives in each format read by us, and ours listed and extracted by it.
@Suite("Tar interop with GNU tar")
struct TarInteropTests {
    /// Every name GNU tar prints, one a line, bytes as stored.
    static let listFlags = ["--quoting-style=literal", "--numeric-owner"]

    // MARK: GNU tar → us

    /// Builds a tree that exercises `format`'s features; returns the top-level names.
    static func makeTree(in root: String, format: String) throws -> [String] {
        let fm = FileManager.default
        func file(_ path: String, _ contents: Data, mode: mode_t = 0o644) throws {
            try fm.createDirectory(
                atPath: (root + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(to: URL(fileURLWithPath: root + "/" + path))
            chmod(root + "/" + path, mode)
        }
        try file("dir/file.txt", sampleBytes(5000), mode: 0o640)
        try file("dir/setuid", Data("#!/bin/sh\n".utf8), mode: 0o4755)
        try fm.createDirectory(atPath: root + "/sticky", withIntermediateDirectories: true)
        chmod(root + "/sticky", 0o1777)
        try fm.createSymbolicLink(atPath: root + "/dir/link", withDestinationPath: "file.txt")
        try fm.linkItem(atPath: root + "/dir/file.txt", toPath: root + "/dir/hard")
        var top = ["dir", "sticky"]
        if format != "v7" {  // v7 has neither fifos nor names over 99 bytes
            // Fits ustar's prefix + name split (prefix 121 bytes, name 94).
            try file(
                String(repeating: "a", count: 60) + "/" + String(repeating: "b", count: 60) + "/"
                    + String(repeating: "c", count: 90) + ".txt", Data("split".utf8))
            #expect(mkfifo(root + "/fifo", 0o600) == 0)
            top += ["fifo", String(repeating: "a", count: 60)]
        }
        if format != "v7" {
            try file("caf\u{e9}-\u{65e5}\u{672c}.txt", Data("utf8".utf8))
            top.append("caf\u{e9}-\u{65e5}\u{672c}.txt")
        }
        if format == "gnu" || format == "pax" || format == "oldgnu" {
            // Beyond ustar: a 300-byte path, a 150-byte link target.
            try file(String(repeating: "deep/", count: 60) + "file", Data("deep".utf8))
            try fm.createSymbolicLink(
                atPath: root + "/longlink", withDestinationPath: String(repeating: "t", count: 150))
            top += ["deep", "longlink"]
        }
        if isRoot && format != "v7" {
            #expect(mknod(root + "/null", S_IFCHR | 0o666, makedev(1, 3)) == 0)
            top.append("null")
        }
        try setModificationTime(root + "/dir/file.txt", seconds: 1_600_000_000, nanoseconds: 123_456_789)
        try setModificationTime(root + "/dir/link", seconds: 1_500_000_000)
        return top.sorted()
    }

    static func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let major = UInt64(major)
        let minor = UInt64(minor)
        return dev_t(((major & 0xfff) << 8) | ((major & ~0xfff) << 32) | (minor & 0xff) | ((minor & ~0xff) << 12))
    }

    @Test("we read GNU tar's archives", arguments: ["ustar", "gnu", "oldgnu", "pax", "v7"])
    func readGNUTar(format: String) throws {
        try withTemporaryDirectory { directory in
            let root = directory.appending("src").path
            let top = try Self.makeTree(in: root, format: format)
            let archive = directory.appending("gnu.tar").path
            try runProcess("tar", ["--format=\(format)", "--sort=name", "-cf", archive, "-C", root] + top).checked()

            let listed = try runProcess("tar", ["-tf", archive] + Self.listFlags).checked().stdoutString
                .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            let reader = TarReader(try FileSource(path: archive))
            var names: [String] = []
            var inodes: [String: UInt64] = [:]
            while let header = try reader.next() {
                names.append(header.name)
                let path = root + "/" + header.name
                let facts = try FileFacts(path: path)
                let expectedKind: TarHeader.Kind = inodes[header.linkName].map { _ in .hardLink } ?? facts.kind
                #expect(header.kind == expectedKind, "\(header.name)")
                #expect(header.mode == facts.mode, "\(header.name)")
                #expect(header.uid == facts.uid && header.gid == facts.gid, "\(header.name)")
                if header.paxRecords["mtime"] != nil {
                    let exact = Double(facts.seconds) + Double(facts.nanoseconds) / 1e9
                    #expect(abs(header.modificationTime.timeIntervalSince1970 - exact) < 1e-6, "\(header.name)")
                } else {
                    #expect(
                        header.modificationTime == Date(timeIntervalSince1970: Double(facts.seconds)), "\(header.name)")
                }
                switch header.kind {
                case .regular:
                    #expect(header.size == facts.size)
                    #expect(try readAll(reader.body) == Data(contentsOf: URL(fileURLWithPath: path)), "\(header.name)")
                case .symbolicLink:
                    #expect(header.linkName == (try FileManager.default.destinationOfSymbolicLink(atPath: path)))
                case .hardLink:
                    #expect(inodes[header.linkName] == facts.inode)
                case .characterDevice:
                    #expect(header.deviceMajor == 1 && header.deviceMinor == 3)
                default:
                    break
                }
                inodes[header.name] = facts.inode
            }
            #expect(names == listed)
            #expect(names.count >= (format == "v7" ? 6 : 12))
            if format != "ustar" && format != "v7" {
                #expect(names.contains(String(repeating: "deep/", count: 60) + "file") == (format != "ustar"))
            }
        }
    }

    // MARK: us → GNU tar

    static let base = Date(timeIntervalSince1970: 1_650_000_000)

    /// Entries covering every kind and every PAX trigger, with the bodies of regular files.
    static func ourEntries() -> [(TarHeader, Data?)] {
        func entry(
            _ name: String, _ kind: TarHeader.Kind, mode: UInt32 = 0o644, body: Data? = nil, link: String = "",
            time: Date = base
        ) -> (TarHeader, Data?) {
            var header = TarHeader(
                name: name, kind: kind, mode: mode, size: Int64(body?.count ?? 0), modificationTime: time,
                linkName: link, uid: 1000, gid: 1001)
            header.userName = "builder"
            header.groupName = "builders"
            return (header, body)
        }
        let longDirectory = String(repeating: "x", count: 100) + "/" + String(repeating: "y", count: 100)
        var entries = [
            entry("root/", .directory, mode: 0o755),
            entry("root/file", .regular, mode: 0o600, body: sampleBytes(10_000)),
            entry("root/setuid", .regular, mode: 0o4755, body: Data("#!/bin/sh\n".utf8)),
            entry("root/setgid-dir/", .directory, mode: 0o2775),
            entry("root/sticky/", .directory, mode: 0o1777),
            entry("root/link", .symbolicLink, mode: 0o777, link: "file"),
            entry("root/long-link", .symbolicLink, mode: 0o777, link: String(repeating: "z", count: 200)),
            entry("root/hard", .hardLink, mode: 0o600, link: "root/file"),
            entry("root/fifo", .fifo, mode: 0o640),
            entry("root/" + longDirectory + "/", .directory, mode: 0o755),
            entry(
                "root/" + longDirectory + "/" + String(repeating: "n", count: 48), .regular,
                body: Data("255 bytes".utf8)),
            entry("root/caf\u{e9}/\u{65e5}\u{672c}\u{8a9e}.txt", .regular, body: Data("utf8".utf8)),
            entry("root/fraction", .regular, body: Data("f".utf8), time: Date(timeIntervalSince1970: 1_650_000_000.25)),
            entry("root/before-1970", .regular, body: Data("old".utf8), time: Date(timeIntervalSince1970: -86_400)),
            entry("root/empty", .regular),
        ]
        if isRoot {
            var device = entry("root/null", .characterDevice, mode: 0o666)
            device.0.deviceMajor = 1
            device.0.deviceMinor = 3
            entries.append(device)
        }
        return entries
    }

    /// `ls -l`-style mode as `tar -tv` prints it.
    static func modeString(_ header: TarHeader) -> String {
        let type: Character =
            switch header.kind {
            case .directory: "d"
            case .symbolicLink: "l"
            case .hardLink: "h"
            case .fifo: "p"
            case .characterDevice: "c"
            case .blockDevice: "b"
            default: "-"
            }
        let mode = header.mode
        func triple(_ shift: UInt32, special: UInt32, set: Character, unset: Character) -> String {
            let r: Character = mode & (0o4 << shift) != 0 ? "r" : "-"
            let w: Character = mode & (0o2 << shift) != 0 ? "w" : "-"
            let executable = mode & (0o1 << shift) != 0
            let x: Character = mode & special != 0 ? (executable ? set : unset) : (executable ? "x" : "-")
            return String([r, w, x])
        }
        return String(type) + triple(6, special: 0o4000, set: "s", unset: "S")
            + triple(3, special: 0o2000, set: "s", unset: "S")
            + triple(0, special: 0o1000, set: "t", unset: "T")
    }

    /// A time as `tar --full-time` prints it in UTC: seconds, then a fraction without
    /// trailing zeros when there is one.
    static func fullTime(_ date: Date) -> String {
        let (seconds, nanoseconds) = splitTime(date)!
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var text = String(
            format: "%04d-%02d-%02d %02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec)
        if nanoseconds != 0 {
            var digits = String(format: "%09lld", nanoseconds)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text
    }

    @Test func gnuTarListsOurArchive() throws {
        try withTemporaryDirectory { directory in
            let entries = Self.ourEntries()
            let archive = directory.appending("ours.tar").path
            let writer = TarWriter(try FileSink(path: archive))
            for (header, body) in entries { try writer.append(header, body: body.map { DataSource($0) }) }
            try writer.finish()

            let names = try runProcess("tar", ["-tf", archive] + Self.listFlags).checked().stdoutString
            #expect(names == entries.map { $0.0.name + "\n" }.joined())

            var environment = ProcessInfo.processInfo.environment
            environment["TZ"] = "UTC"
            let verbose = try runProcess(
                "tar", ["--full-time", "-tvf", archive] + Self.listFlags, environment: environment
            ).checked()
            let lines = verbose.stdoutString.split(separator: "\n").map(String.init)
            #expect(lines.count == entries.count)
            let pattern = #/^(\S+) (\S+) +(\S+) (\S+ \S+) +(.*)$/#
            for ((header, _), line) in zip(entries, lines) {
                guard let match = line.wholeMatch(of: pattern) else {
                    Issue.record("unparsed tar -tv line: \(line)")
                    continue
                }
                #expect(String(match.1) == Self.modeString(header), "\(line)")
                #expect(String(match.2) == "\(header.uid)/\(header.gid)", "\(line)")
                let size =
                    header.kind == .characterDevice ? "\(header.deviceMajor),\(header.deviceMinor)" : "\(header.size)"
                #expect(String(match.3) == size, "\(line)")
                #expect(String(match.4) == Self.fullTime(header.modificationTime), "\(line)")
                let suffix =
                    switch header.kind {
                    case .symbolicLink: " -> " + header.linkName
                    case .hardLink: " link to " + header.linkName
                    default: ""
                    }
                #expect(String(match.5) == header.name + suffix, "\(line)")
            }
        }
    }

    @Test func gnuTarExtractsOurArchiveFaithfully() throws {
        try withTemporaryDirectory { directory in
            let entries = Self.ourEntries()
            let archive = directory.appending("ours.tar.gz").path
            // Through our gzip as well: GNU tar pipes it through gzip -d.
            let writer = TarWriter(try GzipCompressor(FileSink(path: archive)))
            for (header, body) in entries { try writer.append(header, body: body.map { DataSource($0) }) }
            try writer.finish()

            let out = directory.appending("out").path
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try runProcess("tar", ["-xzpf", archive, "-C", out, "--numeric-owner"]).checked()

            let fileInode = try FileFacts(path: out + "/root/file").inode
            for (header, body) in entries {
                let path = out + "/" + header.name
                let facts = try FileFacts(path: path)
                let kind: TarHeader.Kind = header.kind == .hardLink ? .regular : header.kind
                #expect(facts.kind == kind, "\(header.name)")
                if header.kind != .symbolicLink {  // Linux has no symlink permissions
                    #expect(facts.mode == header.mode, "\(header.name): \(String(facts.mode, radix: 8))")
                }
                let (seconds, nanoseconds) = splitTime(header.modificationTime)!
                #expect(
                    facts.seconds == Int(seconds) && facts.nanoseconds == Int(nanoseconds), "\(header.name): \(facts)")
                if isRoot {
                    #expect(facts.uid == header.uid && facts.gid == header.gid, "\(header.name)")
                }
                switch header.kind {
                case .regular:
                    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == (body ?? Data()), "\(header.name)")
                case .symbolicLink:
                    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == header.linkName)
                case .hardLink:
                    #expect(facts.inode == fileInode)
                case .characterDevice:
                    #expect(facts.deviceMajor == header.deviceMajor && facts.deviceMinor == header.deviceMinor)
                default:
                    break
                }
            }
        }
    }

    @Test func ourReaderAndGNUTarAgreeOnARoundTrip() throws {
        // Ours → GNU tar re-archives in pax format → ours again: the same entries.
        try withTemporaryDirectory { directory in
            let entries = Self.ourEntries()
            let ours = directory.appending("ours.tar").path
            let writer = TarWriter(try FileSink(path: ours))
            for (header, body) in entries { try writer.append(header, body: body.map { DataSource($0) }) }
            try writer.finish()
            let out = directory.appending("out").path
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try runProcess("tar", ["-xpf", ours, "-C", out, "--numeric-owner"]).checked()
            let again = directory.appending("again.tar").path
            try runProcess("tar", ["--format=pax", "--numeric-owner", "-cf", again, "-C", out, "root"]).checked()

            let reader = TarReader(try FileSource(path: again))
            var seen: [String: TarHeader] = [:]
            while let header = try reader.next() { seen[header.name] = header }
            for (header, _) in entries {
                let read = try #require(seen[header.name], "\(header.name) missing")
                if header.kind != .symbolicLink { #expect(read.mode == header.mode, "\(header.name)") }
                if header.kind != .directory {
                    #expect(read.modificationTime == header.modificationTime, "\(header.name)")
                }
                #expect(read.linkName == header.linkName || header.kind == .hardLink, "\(header.name)")
            }
        }
    }
}
