import Archive
import Foundation
import OCI
import RootFS
import TestSupport
import Testing

/// An OCI image layout written by hand: blobs, one manifest, `index.json` naming it by tag.
struct TestLayout {
    var directory: URL
    var tag: String
    /// The layer blobs, base first, with the diff ID the config lists for each.
    var layers: [(blob: URL, diffID: Digest)] = []

    init(
        at directory: URL, tag: String = "test", layers: [(entries: [Entry], compression: Compression)],
        config: ImageConfiguration.Config? = nil, scratch: URL
    ) throws {
        self.directory = directory
        self.tag = tag
        let blobs = directory.appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)

        func store(_ data: Data, _ mediaType: MediaType) throws -> Descriptor {
            let descriptor = Descriptor(mediaType: mediaType, content: data)
            try data.write(to: blobs.appendingPathComponent(descriptor.digest.encoded))
            return descriptor
        }

        var layerDescriptors: [Descriptor] = []
        for (index, layer) in layers.enumerated() {
            let plain = scratch.appendingPathComponent("interop-\(index).tar")
            try writeLayer(layer.entries, to: plain)
            let diffID = Digest.sha256(try Data(contentsOf: plain))
            let packed = scratch.appendingPathComponent("interop-\(index).blob")
            try writeLayer(layer.entries, to: packed, compression: layer.compression)
            let mediaType: MediaType =
                switch layer.compression {
                case .none: .ociLayer
                case .gzip: .ociLayerGzip
                case .zstd: .ociLayerZstd
                }
            let descriptor = try store(try Data(contentsOf: packed), mediaType)
            layerDescriptors.append(descriptor)
            self.layers.append((blobs.appendingPathComponent(descriptor.digest.encoded), diffID))
        }
        let configuration = ImageConfiguration(
            platform: Platform(os: "linux", architecture: "amd64"), config: config,
            rootfs: .init(diffIDs: self.layers.map(\.diffID))
        )
        let configDescriptor = try store(try CanonicalJSON.encode(configuration), .ociConfig)
        let manifest = try store(
            try CanonicalJSON.encode(ImageManifest(config: configDescriptor, layers: layerDescriptors)), .ociManifest)
        var entry = manifest
        entry.annotations = ["org.opencontainers.image.ref.name": tag]
        try CanonicalJSON.encode(ImageIndex(manifests: [entry])).write(
            to: directory.appendingPathComponent("index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: directory.appendingPathComponent("oci-layout"))
    }

    /// Applies the layers with our unpacker, verifying each diff ID.
    func unpack(into root: URL) throws {
        let unpacker = Unpacker(root: root)
        for layer in layers {
            try unpacker.apply(layer: try FileSource(path: layer.blob.path), expectedDiffID: layer.diffID)
        }
    }

    /// Runs `umoci unpack` into `bundle` and returns its `rootfs/`.
    func umociUnpack(into bundle: URL) throws -> URL {
        var arguments = ["unpack", "--image", "\(directory.path):\(tag)", bundle.path]
        if !Unpacker.runningAsRoot { arguments.insert("--rootless", at: 1) }
        try runProcess("umoci", arguments).checked()
        return bundle.appendingPathComponent("rootfs")
    }
}

/// Groups of paths that share an inode, as sorted lists, for comparing hardlink structure.
func hardlinkGroups(_ tree: [String: Node]) -> Set<[String]> {
    var byInode: [UInt64: [String]] = [:]
    for (path, node) in tree where node.type != "dir" {
        byInode[node.inode, default: []].append(path)
    }
    return Set(byInode.values.filter { $0.count > 1 }.map { $0.sorted() })
}

@Suite(
    "Interop with umoci",
    .enabled(if: (try? runProcess("umoci", ["--version"]).succeeded) == true, "umoci is not installed"))
struct UmociInteropTests {
    static let base = Date(timeIntervalSince1970: 1_500_000_000)
    static let later = Date(timeIntervalSince1970: 1_700_000_000.5)

    static var baseLayer: [Entry] {
        var random = SystemRandomNumberGenerator()
        let big = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &random) })
        return [
            .dir("./", mode: 0o755, mtime: base),
            .dir("etc/", mode: 0o755, mtime: base),
            .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", mode: 0o644, mtime: base),
            .file("etc/shadow", "root:*::\n", mode: 0o640, mtime: base, gid: 42),
            .symlink("etc/localtime", to: "/usr/share/zoneinfo/UTC", mtime: base),
            .dir("bin/", mode: 0o755, mtime: base),
            .file("bin/busybox", data: big, mode: 0o755, mtime: base),
            .hardlink("bin/ls", to: "bin/busybox"),
            .hardlink("bin/cat", to: "bin/busybox"),
            .file("bin/su", "su", mode: 0o4755, mtime: base),
            .file("bin/wall", "wall", mode: 0o2755, mtime: base, gid: 5),
            .symlink("bin/sh", to: "busybox", mtime: base),
            .dir("tmp/", mode: 0o1777, mtime: base),
            .dir("usr/", mode: 0o755, mtime: base),
            .dir("usr/lib/", mode: 0o755, mtime: base),
            .file("usr/lib/libc.so", "libc", mode: 0o755, mtime: base),
            .symlink("lib", to: "usr/lib", mtime: base),
            .dir("root/", mode: 0o700, mtime: base),
            .file("root/.profile", "PS1=#", mode: 0o600, mtime: base),
            .file("odd-mode", "603", mode: 0o603, mtime: later),
            .dir("home/", mode: 0o755, mtime: base),
            .dir("home/user/", mode: 0o750, mtime: base, uid: 1000, gid: 1000),
            .file("home/user/.profile", "user", mode: 0o644, mtime: base, uid: 1000, gid: 1000),
            .dir("data/", mode: 0o755, mtime: base),
            .dir("data/keep/", mode: 0o755, mtime: base),
            .file("data/keep/a", "a", mtime: base),
            .dir("data/gone/", mode: 0o755, mtime: base),
            .file("data/gone/b", "b", mtime: base),
            .dir("data/opaque/", mode: 0o755, mtime: base),
            .file("data/opaque/old", "old", mtime: base),
            .dir("data/opaque/sub/", mode: 0o755, mtime: base),
            .file("data/opaque/sub/older", "older", mtime: base),
            .dir("run/", mode: 0o755, mtime: base),
            .fifo("run/initctl", mode: 0o600),
            .dir("dev/", mode: 0o755, mtime: base),
            .device("dev/null", major: 1, minor: 3, mode: 0o666),
            .device("dev/loop0", block: true, major: 7, minor: 0, mode: 0o660),
            .file("implied/parent/file", "no parent entries", mtime: base),
        ]
    }

    static let upperLayer: [Entry] = [
        .dir("etc/", mode: 0o750, mtime: later),
        .whiteout("etc/shadow"),
        .whiteout("bin/busybox"),
        .file("bin/sh", "now a file", mode: 0o755, mtime: later),
        .hardlink("bin/ls2", to: "bin/ls"),
        .dir("data/", mode: 0o755, mtime: base),
        .whiteout("data/gone"),
        .file("data/keep", "dir became file", mtime: later),
        .dir("data/opaque/", mode: 0o755, mtime: later),
        .opaque("data/opaque"),
        .file("data/opaque/new", "new", mtime: later),
        .file("lib/libextra.so", "through the lib link", mode: 0o755, mtime: later),
        .symlink("usr/lib/libc.so.6", to: "libc.so", mtime: later),
        .file("etc/added", "added", mtime: later),
    ]

    static let topLayer: [Entry] = [
        .file("top", "from an uncompressed layer", mtime: later),
        .whiteout("tmp"),
        .dir("tmp/", mode: 0o1777, mtime: later),
    ]

    @Test(
        "our rootfs equals umoci's: paths, types, modes, owners, link targets, contents, mtimes, hardlinks",
        arguments: [Compression.gzip, .zstd])
    func sameTree(upperCompression: Compression) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let base = Self.baseLayer
        let layout = try TestLayout(
            at: sandbox.base.appendingPathComponent("layout"),
            layers: [(base, .gzip), (Self.upperLayer, upperCompression), (Self.topLayer, .none)],
            scratch: sandbox.scratch
        )
        // umoci 0.4.7 refuses zstd layers ("blob is not correct mediatype"), so it gets the
        // same tars gzip-compressed: identical diff IDs, so the same image.
        let umociLayout =
            upperCompression == .gzip
            ? layout
            : try TestLayout(
                at: sandbox.base.appendingPathComponent("layout-gzip"),
                layers: [(base, .gzip), (Self.upperLayer, .gzip), (Self.topLayer, .none)],
                scratch: sandbox.scratch
            )
        #expect(umociLayout.layers.map(\.diffID) == layout.layers.map(\.diffID))

        try layout.unpack(into: sandbox.root)
        var theirs = try snapshot(umociLayout.umociUnpack(into: sandbox.base.appendingPathComponent("bundle")))
        var ours = try snapshot(sandbox.root)

        // Directories no layer lists (the root, implied parents) carry the time they were
        // made, in both tools; nothing to compare.
        for path in ["", "implied", "implied/parent"] {
            ours[path]?.mtime = 0
            ours[path]?.mtimeNanoseconds = 0
            theirs[path]?.mtime = 0
            theirs[path]?.mtimeNanoseconds = 0
        }
        #expect(ours.differences(from: theirs) == [])
        #expect(hardlinkGroups(ours) == hardlinkGroups(theirs))
        // The interesting cases are really there (not equal by both being empty).
        #expect(ours["bin/ls"]?.size == 1 << 20)
        #expect(hardlinkGroups(ours).contains(["bin/cat", "bin/ls", "bin/ls2"]))
        #expect(ours["usr/lib/libextra.so"]?.type == "file")
        #expect(ours["data/opaque/old"] == nil && ours["data/opaque/new"] != nil)
        #expect(ours["odd-mode"]?.mtimeNanoseconds == 500_000_000)
    }
}
