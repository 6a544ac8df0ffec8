import Archive
import Console
import Foundation
import OCI
import RootFS
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Applying layers")
struct UnpackerTests {
    @Test("files, directories, links and modes land as the layer says", arguments: [Compression.none, .gzip, .zstd])
    func basicTree(compression: Compression) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let mtime = Date(timeIntervalSince1970: 1_234_567_890.25)
        let reports = try unpack(
            [
                [
                    .dir("etc/", mode: 0o755, mtime: mtime),
                    .file("etc/hostname", "box\n", mode: 0o644, mtime: mtime),
                    .file("etc/shadow", "root:*:\n", mode: 0o640, uid: 0, gid: 42),
                    .dir("tmp/", mode: 0o1777),
                    .file("bin/su", "#!", mode: 0o4755),
                    .file("bin/wall", "#!", mode: 0o2755),
                    .file("odd", "x", mode: 0o603),
                    .symlink("bin/ash", to: "su"),
                    .symlink("etc/localtime", to: "/usr/share/zoneinfo/UTC"),
                    .hardlink("bin/su2", to: "bin/su"),
                    .fifo("run/fifo", mode: 0o620),
                    .dir("private/", mode: 0o700, mtime: mtime),
                    .file("private/key", "k", mode: 0o400, uid: 1000, gid: 1000),
                ]
            ], into: sandbox.root, scratch: sandbox.scratch, compression: compression)
        #expect(reports[0].compression == compression)
        #expect(reports[0].entries == 13)

        let tree = try snapshot(sandbox.root)
        #expect(tree["etc"]?.mode == 0o755)
        #expect(tree["etc"]?.mtime == 1_234_567_890)
        #expect(tree["etc/hostname"]?.mtime == 1_234_567_890)
        #expect(tree["etc/hostname"]?.mtimeNanoseconds == 250_000_000)
        #expect(tree["etc/shadow"]?.mode == 0o640)
        #expect(tree["tmp"]?.mode == 0o1777)
        #expect(tree["bin/su"]?.mode == 0o4755)
        #expect(tree["bin/wall"]?.mode == 0o2755)
        #expect(tree["odd"]?.mode == 0o603)
        #expect(tree["bin/ash"]?.linkTarget == "su")
        #expect(tree["etc/localtime"]?.linkTarget == "/usr/share/zoneinfo/UTC")
        #expect(tree["bin/su2"]?.inode == tree["bin/su"]?.inode)
        #expect(tree["run/fifo"]?.type == "fifo")
        #expect(tree["run/fifo"]?.mode == 0o620)
        #expect(tree["private"]?.mode == 0o700)
        #expect(tree["private"]?.mtime == 1_234_567_890)
        #expect(tree["private/key"]?.mode == 0o400)
        // Directories the layer did not list are made 0755, as Docker does.
        #expect(tree["bin"]?.mode == 0o755)
        if Unpacker.runningAsRoot {
            #expect(tree["etc/shadow"]?.gid == 42)
            #expect(tree["private/key"]?.uid == 1000)
        }
    }

    @Test("whiteouts remove lower files and directories; opaque directories hide lower contents only")
    func whiteouts() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try unpack(
            [
                [
                    .file("a/keep", "1"), .file("a/gone", "2"), .dir("b/"), .file("b/x", "3"), .dir("b/sub/"),
                    .file("b/sub/y", "4"),
                    .dir("c/"), .file("c/old", "5"), .dir("c/deep/"), .file("c/deep/old", "6"),
                ],
                [
                    .whiteout("a/gone"), .whiteout("b"), .whiteout("missing/nothing"),
                    .dir("c/"), .opaque("c"), .file("c/new", "7"), .dir("c/deep/"), .file("c/deep/new", "8"),
                    // A whiteout after an entry of the same layer leaves that entry alone.
                    .file("a/fresh", "9"), .whiteout("a/fresh"),
                ],
            ], into: sandbox.root, scratch: sandbox.scratch)
        let paths = Set(try snapshot(sandbox.root).keys)
        #expect(paths == ["", "a", "a/keep", "a/fresh", "c", "c/new", "c/deep", "c/deep/new"])
    }

    @Test("a hardlink survives when a later layer removes its target (go-containerregistry#977)")
    func removedHardlinkTarget() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try unpack(
            [
                [
                    .file("bin/busybox", "bb", mode: 0o755), .hardlink("bin/ls", to: "bin/busybox"),
                    .hardlink("bin/cat", to: "/bin/busybox"),
                ],
                [.whiteout("bin/busybox"), .hardlink("bin/ls2", to: "bin/ls")],
            ], into: sandbox.root, scratch: sandbox.scratch)
        let tree = try snapshot(sandbox.root)
        #expect(tree["bin/busybox"] == nil)
        #expect(tree["bin/ls"]?.contentDigest == Digest.sha256(Data("bb".utf8)).description)
        #expect(tree["bin/ls"]?.inode == tree["bin/cat"]?.inode)
        #expect(tree["bin/ls2"]?.inode == tree["bin/ls"]?.inode)
    }

    @Test("an entry replaces whatever is at its path unless both are directories")
    func replacement() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try unpack(
            [
                [
                    .symlink("s", to: "target"), .file("target", "t"), .dir("d/"), .file("d/child", "c"),
                    .file("f", "f"), .dir("keep/", mode: 0o755), .file("keep/old", "o"),
                ],
                [.file("s", "now a file"), .file("d", "dir became file"), .dir("f/"), .dir("keep/", mode: 0o700)],
            ], into: sandbox.root, scratch: sandbox.scratch)
        let tree = try snapshot(sandbox.root)
        #expect(tree["s"]?.type == "file")
        #expect(tree["target"]?.contentDigest == Digest.sha256(Data("t".utf8)).description)
        #expect(tree["d"]?.type == "file")
        #expect(tree["d/child"] == nil)
        #expect(tree["f"]?.type == "dir")
        #expect(tree["keep"]?.mode == 0o700)
        #expect(tree["keep/old"] != nil)
    }

    @Test("directory times are set after their contents, and put back when a layer only changes what is inside")
    func directoryTimes() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let first = Date(timeIntervalSince1970: 1_000_000_000)
        let second = Date(timeIntervalSince1970: 1_100_000_000)
        try unpack(
            [
                [.dir("a/", mtime: first), .dir("a/b/", mtime: first), .file("a/b/c", "c", mtime: first)],
                [.file("a/b/d", "d", mtime: second), .whiteout("a/b/c")],
            ], into: sandbox.root, scratch: sandbox.scratch)
        let tree = try snapshot(sandbox.root)
        #expect(tree["a"]?.mtime == 1_000_000_000)
        #expect(tree["a/b"]?.mtime == 1_000_000_000)
        #expect(tree["a/b/d"]?.mtime == 1_100_000_000)
    }

    @Test("device nodes are created as root and skipped with a log line otherwise")
    func devices() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let lines = Mutex<[String]>([])
        let log = Log { line in lines.withLock { $0.append(line) } }
        let layer: [Entry] = [
            .device("dev/null", major: 1, minor: 3), .device("dev/loop0", block: true, major: 7, minor: 0, mode: 0o660),
            .hardlink("dev/null2", to: "dev/null"),
        ]
        let reports = try unpack(
            [layer], into: sandbox.root, scratch: sandbox.scratch,
            options: .init(preserveOwnership: false, createDeviceNodes: false, log: log))
        #expect(reports[0].skippedEntries == 3)
        #expect(try snapshot(sandbox.root)["dev/null"] == nil)
        #expect(lines.withLock { $0 }.contains { $0.contains("skipped 3 layer entries") && $0.contains("dev/null") })

        if Unpacker.runningAsRoot {
            let privileged = sandbox.base.appendingPathComponent("privileged")
            try unpack([layer], into: privileged, scratch: sandbox.scratch)
            let tree = try snapshot(privileged)
            #expect(tree["dev/null"]?.type == "char")
            #expect(tree["dev/null"]?.device == (1 << 8 | 3))  // makedev(1, 3)
            #expect(tree["dev/loop0"]?.type == "block")
            #expect(tree["dev/loop0"]?.mode == 0o660)
            #expect(tree["dev/null2"]?.inode == tree["dev/null"]?.inode)
        }
    }

    @Test("file capabilities and user xattrs are applied; trusted.overlay and SELinux labels are not")
    func extendedAttributes() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        // VFS_CAP_REVISION_2 with the effective flag, permitting CAP_NET_RAW (bit 13).
        let capability: [UInt8] = [0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        var ping = Entry.file("bin/ping", "elf", mode: 0o755)
        ping.header.extendedAttributes = [
            "security.capability": capability, "user.note": Array("hello".utf8),
            "trusted.overlay.opaque": Array("y".utf8), "security.selinux": Array("system_u:object_r:bin_t:s0".utf8),
        ]
        try unpack([[ping]], into: sandbox.root, scratch: sandbox.scratch)
        let path = sandbox.root.appendingPathComponent("bin/ping").path
        typealias GetAttribute =
            @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
        let getxattr = unsafeBitCast(try #require(dlsym(nil, "getxattr")), to: GetAttribute.self)
        func attribute(_ name: String) -> [UInt8]? {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = getxattr(path, name, &buffer, buffer.count)
            return count < 0 ? nil : Array(buffer[..<count])
        }
        #expect(attribute("user.note") == Array("hello".utf8))
        #expect(attribute("trusted.overlay.opaque") == nil)
        if Unpacker.runningAsRoot {
            #expect(attribute("security.capability") == capability)
        }
    }

    @Test("the uncompressed stream is checked against the config's diff ID")
    func diffIDVerification() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let layer = sandbox.scratch.appendingPathComponent("layer.tar.gz")
        try writeLayer([.file("hello", "world")], to: layer, compression: .gzip)
        try writeLayer([.file("hello", "world")], to: sandbox.scratch.appendingPathComponent("plain.tar"))
        let diffID = Digest.sha256(try Data(contentsOf: sandbox.scratch.appendingPathComponent("plain.tar")))

        let report = try Unpacker(root: sandbox.root).apply(
            layer: try FileSource(path: layer.path), expectedDiffID: diffID)
        #expect(report.diffID == diffID)
        #expect(report.compression == .gzip)

        let wrong = Digest.sha256(Data("something else".utf8))
        let error = #expect(throws: UnpackError.self) {
            try Unpacker(root: sandbox.root).apply(layer: try FileSource(path: layer.path), expectedDiffID: wrong)
        }
        #expect(error?.kind == .diffIDMismatch)
        #expect(error?.description.contains(diffID.description) == true)
    }

    @Test("a truncated layer is an error that names the last entry read")
    func truncated() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        var tar = RawTar()
        tar.entry(name: "first", type: "0", size: 3, body: Data("abc".utf8))
        tar.entry(name: "big", type: "0", size: 1 << 30, body: Data(count: 1000))
        let error = #expect(throws: UnpackError.self) {
            try Unpacker(root: sandbox.root).apply(layer: DataSource(tar.bytes))
        }
        #expect(error?.kind == .unreadableLayer)
        #expect(error?.description.contains("big") == true)
    }

    @Test("a layer whose names start with ./ or / lands at the root, and the root entry is accepted")
    func prefixes() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try unpack(
            [[.dir("./"), .dir("./usr/"), .file("./usr/a", "a"), .file("/usr/b", "b"), .file("usr//c", "c")]],
            into: sandbox.root, scratch: sandbox.scratch)
        #expect(Set(try snapshot(sandbox.root).keys) == ["", "usr", "usr/a", "usr/b", "usr/c"])
    }
}

@Suite("metadata.json and labels.json")
struct ImageMetadataTests {
    static let config = ImageConfiguration(
        platform: Platform(os: "linux", architecture: "amd64"),
        config: .init(
            user: "app:app", env: ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], entrypoint: ["/bin/tini", "--"],
            cmd: ["serve"],
            workingDir: "/srv", labels: ["org.opencontainers.image.revision": "abc123", "dev.slipway.branch": "main"]
        ),
        rootfs: .init(diffIDs: [])
    )

    @Test("writes registry-image's shape: cmd, entrypoint, env, user; labels as an object")
    func golden() throws {
        try withTemporaryDirectory { directory in
            try ImageMetadata.write(config: Self.config, to: directory.url)
            let metadata = try String(contentsOf: directory.appending("metadata.json"), encoding: .utf8)
            #expect(
                metadata
                    == #"{"cmd":["serve"],"entrypoint":["/bin/tini","--"],"env":["PATH=/usr/bin:/bin","LANG=C.UTF-8"],"user":"app:app"}"#
                    + "\n")
            let labels = try String(contentsOf: directory.appending("labels.json"), encoding: .utf8)
            #expect(labels == #"{"dev.slipway.branch":"main","org.opencontainers.image.revision":"abc123"}"# + "\n")
        }
    }

    @Test("an image without a config gets nulls, an empty user and {} labels")
    func empty() throws {
        try withTemporaryDirectory { directory in
            let bare = ImageConfiguration(
                platform: Platform(os: "linux", architecture: "arm64"), rootfs: .init(diffIDs: []))
            try ImageMetadata.write(config: bare, to: directory.url)
            let metadata = try String(contentsOf: directory.appending("metadata.json"), encoding: .utf8)
            #expect(metadata == #"{"cmd":null,"entrypoint":null,"env":null,"user":""}"# + "\n")
            #expect(try String(contentsOf: directory.appending("labels.json"), encoding: .utf8) == "{}\n")
        }
    }

    @Test("round-trips through its golden JSON")
    func roundTrip() throws {
        let golden = Data(#"{"cmd":null,"entrypoint":["/bin/sh","-c"],"env":["A=1"],"user":"1000"}"#.utf8)
        let decoded = try CanonicalJSON.decode(ImageMetadata.self, from: golden)
        #expect(decoded == ImageMetadata(cmd: nil, entrypoint: ["/bin/sh", "-c"], env: ["A=1"], user: "1000"))
        #expect(try CanonicalJSON.encode(decoded) == golden)
    }
}
