import Archive
import Errors
import Foundation
import OCI

/// A failure reading or writing an image layout or archive, in one line naming the file.
public struct LayoutError: SlipwayError {
    /// What kind of failure this is (one kind: the message says the rest).
    public typealias Kind = ErrorKind<LayoutError>
    public var kind: Kind { .unusableLayout }
    /// What failed, with which value, and what to do.
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// An OCI image layout directory: `oci-layout`, `index.json` and `blobs/<alg>/<hex>`
/// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md).
///
/// Blobs are written to a temporary file in the layout, hashed while written, and renamed
/// into place only when they verify, so a blob path never holds partial or wrong bytes.
public struct OCILayout: Sendable {
    public let root: URL

    /// Opens an existing layout; its `oci-layout` file must name version 1.x.
    public init(opening root: URL) throws {
        let marker = root.appendingPathComponent("oci-layout")
        guard let data = FileManager.default.contents(atPath: marker.path) else {
            throw LayoutError("\(root.path) is not an OCI image layout: it has no oci-layout file")
        }
        struct Marker: Decodable { var imageLayoutVersion: String }
        guard let version = try? JSONDecoder().decode(Marker.self, from: data).imageLayoutVersion,
            version.hasPrefix("1.")
        else {
            throw LayoutError("\(marker.path): expected {\"imageLayoutVersion\":\"1.0.0\"}")
        }
        self.root = root
    }

    /// Creates an empty layout at `root` (the directory may exist and must hold no layout).
    public static func create(at root: URL) throws -> OCILayout {
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
        try atomicWrite(Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: root.appendingPathComponent("oci-layout"))
        let layout = try OCILayout(opening: root)
        try layout.writeIndex(ImageIndex(manifests: []))
        return layout
    }

    /// Opens the layout at `root`, creating it if absent.
    public static func openOrCreate(at root: URL) throws -> OCILayout {
        FileManager.default.fileExists(atPath: root.appendingPathComponent("oci-layout").path)
            ? try OCILayout(opening: root) : try create(at: root)
    }

    // MARK: index.json

    /// The bytes of `index.json`.
    public func indexBytes() throws -> Data {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("index.json").path) else {
            throw LayoutError("\(root.path) has no index.json")
        }
        return data
    }

    /// `index.json`, parsed.
    public func index() throws -> ImageIndex {
        do { return try JSONDecoder().decode(ImageIndex.self, from: try indexBytes()) } catch let error as LayoutError {
            throw error
        } catch {
            throw LayoutError("\(root.path)/index.json is not an OCI image index: \(error)")
        }
    }

    /// Replaces `index.json` atomically.
    public func writeIndex(_ index: ImageIndex) throws {
        try Self.atomicWrite(try CanonicalJSON.encode(index), to: root.appendingPathComponent("index.json"))
    }

    /// Adds `descriptor` to `index.json`, named `name` (`org.opencontainers.image.ref.name`),
    /// replacing an entry of the same name.
    public func addToIndex(_ descriptor: Descriptor, name: String?) throws {
        var index = try index()
        var entry = descriptor
        if let name {
            entry.annotations = (entry.annotations ?? [:]).merging([Self.refName: name]) { $1 }
            index.manifests.removeAll { $0.annotations?[Self.refName] == name }
        }
        index.manifests.append(entry)
        try writeIndex(index)
    }

    /// The annotation that names an entry of `index.json` (a tag, e.g. `latest`).
    public static let refName = "org.opencontainers.image.ref.name"

    // MARK: blobs

    /// Where the blob with `digest` lives (whether or not it exists).
    public func blobPath(_ digest: Digest) -> URL {
        root.appendingPathComponent("blobs/\(digest.algorithm)/\(digest.encoded)")
    }

    /// Whether the layout holds a blob of `descriptor`'s digest and size.
    public func hasBlob(_ descriptor: Descriptor) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: blobPath(descriptor.digest).path)
        return (attributes?[.size] as? NSNumber)?.int64Value == descriptor.size
    }

    /// A small blob (manifest, config) read whole and verified. Layers use `openBlob`.
    public func blob(_ descriptor: Descriptor, limit: Int64 = 16 << 20) throws -> Data {
        guard descriptor.size <= limit else {
            throw LayoutError(
                "blob \(descriptor.digest) is \(descriptor.size) bytes, more than the \(limit) read whole")
        }
        let path = blobPath(descriptor.digest)
        guard let data = FileManager.default.contents(atPath: path.path) else {
            throw LayoutError("\(root.path) lacks blob \(descriptor.digest)")
        }
        guard Int64(data.count) == descriptor.size else {
            throw LayoutError(
                "blob \(descriptor.digest) in \(root.path) is \(data.count) bytes, expected \(descriptor.size)")
        }
        let actual = descriptor.digest.algorithm == "sha512" ? Digest.sha512(data) : Digest.sha256(data)
        guard actual == descriptor.digest else {
            throw LayoutError("blob \(descriptor.digest) in \(root.path) hashes to \(actual)")
        }
        return data
    }

    /// A blob as a stream whose size and digest are checked as it is read.
    public func openBlob(_ descriptor: Descriptor) throws -> any ByteSource {
        let path = blobPath(descriptor.digest)
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw LayoutError("\(root.path) lacks blob \(descriptor.digest)")
        }
        return VerifyingSource(
            try FileSource(path: path.path), expectedSize: descriptor.size, expectedDigest: descriptor.digest)
    }

    /// Writes a small blob and returns its descriptor.
    @discardableResult
    public func writeBlob(_ data: Data, mediaType: MediaType) throws -> Descriptor {
        let descriptor = Descriptor(mediaType: mediaType, digest: Digest.sha256(data), size: Int64(data.count))
        if !hasBlob(descriptor) { try Self.atomicWrite(data, to: blobPath(descriptor.digest)) }
        return descriptor
    }

    /// Streams `source` into a blob. With `expected`, the bytes must match its size and digest.
    @discardableResult
    public func writeBlob(from source: any ByteSource, mediaType: MediaType, expected: Descriptor? = nil) throws
        -> Descriptor
    {
        let temporary = root.appendingPathComponent("blobs/.incoming-\(UUID().uuidString)")
        defer { unlink(temporary.path) }
        let sink = HashingSink(try FileSink(path: temporary.path))
        _ = try copy(from: source, to: sink)
        try sink.finish()
        let descriptor = Descriptor(mediaType: mediaType, digest: sink.digest, size: sink.count)
        if let expected, expected.digest != descriptor.digest || expected.size != descriptor.size {
            throw LayoutError(
                "blob written as \(expected.digest) (\(expected.size) bytes) is \(descriptor.digest) (\(descriptor.size) bytes)"
            )
        }
        try moveIntoPlace(temporary, digest: descriptor.digest)
        return descriptor
    }

    /// Moves a file that already holds `digest`'s bytes into the blob store: for a writer that
    /// hashed the blob as it wrote it (an assembled layer), so it is not read a second time.
    /// The file must be on the layout's file system (write it under ``incomingDirectory``).
    public func moveIntoPlace(_ file: URL, digest: Digest) throws {
        let destination = blobPath(digest)
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard rename(file.path, destination.path) == 0 else {
            throw LayoutError("cannot move a blob to \(destination.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Where a blob being written may wait until it is moved into place (same file system).
    public var incomingDirectory: URL { root.appendingPathComponent("blobs") }

    /// Every blob a manifest or index reaches (children, configs, layers), itself included.
    public func blobs(reachableFrom top: Descriptor) throws -> [Descriptor] {
        var result: [Descriptor] = [top]
        switch try Manifest.decode(blob(top), mediaType: top.mediaType) {
        case .image(let manifest):
            result += [manifest.config] + manifest.layers
        case .index(let index):
            for child in index.manifests where child.mediaType.isIndex || child.mediaType.isImageManifest {
                result += try blobs(reachableFrom: child)
            }
        }
        return result
    }

    static func atomicWrite(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: temporary)
        } catch {
            throw LayoutError("cannot write \(url.path): \(error.localizedDescription)")
        }
        guard rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw LayoutError("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}

extension ErrorKind where Owner == LayoutError {
    /// An image layout, archive or blob cannot be read, written or used as asked.
    public static var unusableLayout: Self { Self("unusable layout") }
}
