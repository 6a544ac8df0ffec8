import Archive
import Console
import Foundation
import OCI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Applies image layers, base first, to a directory that becomes the image's root
/// filesystem: the `rootfs/` of a Concourse `get`.
///
/// ```swift
/// let unpacker = Unpacker(root: output.appendingPathComponent("rootfs"), options: .init(log: log))
/// for (layer, diffID) in zip(manifest.layers, config.rootfs.diffIDs) {
///     try unpacker.apply(layer: try blobSource(layer), expectedDiffID: diffID)
/// }
/// try ImageMetadata.write(config: config, to: output)
/// ```
///
/// Layers follow the [image spec's changeset rules](https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md):
/// whiteouts (`.wh.name`) and opaque directories (`.wh..wh..opq`) remove what lower layers
/// made; an entry replaces what is at its path unless both are directories. Applying in order
/// (never flattening top-down) keeps a hardlink whose target a later layer removes
/// (go-containerregistry#977).
///
/// Unpacking is a security boundary: nothing a layer contains can create, change or remove
/// anything outside the root. See ``RootDirectory`` for how paths are resolved and
/// ``RootPath/parse(_:what:)`` for which names are refused.
public struct Unpacker: Sendable {
    /// How ownership and device nodes are handled.
    public struct Options: Sendable {
        /// Set each entry's owner from the layer's numeric uid/gid (user and group names are
        /// ignored: no name service is consulted, so nothing from the image is ever loaded,
        /// compare CVE-2019-14271). Only root can; the default is whether we run as root.
        public var preserveOwnership: Bool
        /// Create character and block devices. Only root can, and not inside a user namespace;
        /// when false, or when the kernel refuses, devices are skipped with a log line (as
        /// registry-image does always). Hardlinks to a skipped device are skipped too.
        public var createDeviceNodes: Bool
        /// Where skipped entries and ownership problems are reported.
        public var log: Log

        /// Creates options; the defaults suit the running user.
        public init(
            preserveOwnership: Bool = Unpacker.runningAsRoot,
            createDeviceNodes: Bool = Unpacker.runningAsRoot,
            log: Log = .silent
        ) {
            self.preserveOwnership = preserveOwnership
            self.createDeviceNodes = createDeviceNodes
            self.log = log
        }
    }

    /// Whether this process runs with effective uid 0.
    public static var runningAsRoot: Bool { geteuid() == 0 }

    /// The root directory; created (with its parents) by the first ``apply(layer:expectedDiffID:)``
    /// if missing.
    public let root: URL
    /// The options in force.
    public let options: Options

    /// Creates an unpacker for `root`. Nothing is touched until a layer is applied.
    public init(root: URL, options: Options = Options()) {
        self.root = root
        self.options = options
    }

    /// Applies one layer on top of what is already in the root.
    ///
    /// The layer is read once, as a stream: compression (gzip, zstd or none) is detected from
    /// its first bytes, and no more than one buffer of it is held in memory.
    ///
    /// - Parameters:
    ///   - source: the layer blob, compressed or not. Verify the blob's own size and digest
    ///     upstream (`VerifyingSource`).
    ///   - expectedDiffID: the config's `rootfs.diff_ids` entry for this layer; the digest of
    ///     the uncompressed stream is checked against it at the end of the stream.
    /// - Returns: what was applied, including the computed diff ID.
    /// - Throws: ``UnpackError``. The root is then part way through a layer and must be
    ///   discarded; in particular a diff ID mismatch is only known once the whole stream was
    ///   applied.
    @discardableResult
    public func apply(layer source: any ByteSource, expectedDiffID: Digest? = nil) throws(UnpackError) -> LayerReport {
        let directory = try RootDirectory(url: root, privileged: Unpacker.runningAsRoot)
        let stream: any ByteSource
        let compression: Compression
        do {
            (stream, compression) = try decompressing(source)
        } catch {
            throw UnpackError(.unreadableLayer, "cannot read the layer's compression header: \(error)")
        }
        // The diff ID covers every byte of the uncompressed stream, the padding after the
        // tar's end-of-archive blocks included.
        let digesting = HashingSource(stream)
        let applier = LayerApplier(root: directory, options: options)
        defer { applier.release() }
        try applier.apply(TarReader(digesting))
        do {
            try drain(digesting)
        } catch {
            throw UnpackError(.unreadableLayer, "cannot read the rest of the layer after the end of its tar: \(error)")
        }
        let diffID = digesting.digest
        if let expectedDiffID, expectedDiffID != diffID {
            throw UnpackError(
                .diffIDMismatch,
                "the uncompressed layer's digest is \(diffID), but the image config lists \(expectedDiffID) (diff_ids): the layer blob does not belong to this image or was altered"
            )
        }
        try applier.finishDirectories()
        applier.logSkipped()
        return LayerReport(
            diffID: diffID,
            compression: compression,
            uncompressedSize: digesting.count,
            entries: applier.entries,
            skippedEntries: applier.skippedCount
        )
    }
}

/// What one applied layer contained.
public struct LayerReport: Sendable, Equatable {
    /// The digest of the uncompressed tar stream, as computed while reading it.
    public var diffID: Digest
    /// The compression detected from the blob's first bytes.
    public var compression: Compression
    /// The length of the uncompressed tar stream in bytes.
    public var uncompressedSize: Int64
    /// Tar entries read, whiteouts included.
    public var entries: Int
    /// Entries not applied: device nodes when they cannot be created, unknown entry types,
    /// AUFS metadata.
    public var skippedEntries: Int
}
