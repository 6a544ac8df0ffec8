import Console
import Dispatch
import Foundation
import ImageLayout
import OCI
import Registry
import Synchronization

/// Moves images between OCI layouts and registries, and between registries.
///
/// Blobs move in parallel (`parallelism` at a time), each streamed and verified by the
/// registry client; blobs already at the destination are not sent again. Manifests go
/// last, children before their index, so a tag never points at an incomplete image.
/// `progress` is told of every blob as its bytes move (see ``ProgressReporter``).
public struct ImageTransfer: Sendable {
    public let log: Log
    public let parallelism: Int
    public let progress: (any TransferObserver)?

    public init(log: Log = .silent, parallelism: Int = 4, progress: (any TransferObserver)? = nil) {
        self.log = log
        self.parallelism = max(1, parallelism)
        self.progress = progress
    }

    /// What a push or copy did.
    public struct Report: Sendable, Equatable {
        public var digest: Digest
        public var uploaded: Int = 0
        public var mounted: Int = 0
        public var present: Int = 0
    }

    // MARK: push

    /// Pushes `image` to `repository` under `tags` (none: by digest only).
    /// - Parameter mountFrom: repositories of the same registry to mount missing blobs from.
    public func push(
        _ image: LayoutImage, with client: RegistryClient, to repository: Repository,
        tags: [Tag], mountFrom: Repository? = nil
    ) throws -> Report {
        let layout = image.layout
        var manifests: [(Descriptor, Data)] = []
        var blobs: [Descriptor] = []
        func visit(_ descriptor: Descriptor, _ bytes: Data) throws {
            switch try Manifest.decode(bytes, mediaType: descriptor.mediaType) {
            case .image(let manifest):
                blobs += [manifest.config] + manifest.layers
            case .index(let index):
                for child in index.manifests where child.mediaType.isIndex || child.mediaType.isImageManifest {
                    try visit(child, layout.blob(child))
                }
            }
            manifests.append((descriptor, bytes))
        }
        try visit(image.descriptor, image.bytes)

        var report = Report(digest: image.descriptor.digest)
        var succeeded = false
        defer { progress?.ended(succeeded: succeeded) }
        let outcomes = try parallel(unique(blobs)) { [progress] blob in
            let outcome = try client.uploadBlob(
                repository, blob, from: layout.blobPath(blob.digest), mountFrom: mountFrom,
                progress: observing(blob, .push))
            observe(outcome, of: blob, mountedFrom: mountFrom, progress)
            return outcome
        }
        count(outcomes, into: &report)
        try putManifests(
            manifests, top: image.descriptor, image.bytes, client: client, repository: repository, tags: tags)
        log.debug(
            "pushed \(repository)@\(image.descriptor.digest): \(report.uploaded) uploaded, \(report.mounted) mounted, \(report.present) present"
        )
        succeeded = true
        return report
    }

    // MARK: pull

    /// Which manifests of an index to fetch.
    public enum Platforms: Sendable {
        /// Every manifest, so the layout is the whole image and its index.json is the index.
        case all
        /// Only the manifest for this platform (nil: the host's, or the only one).
        case one(Platform?)
    }

    /// Pulls `repository@digest` into `layout` and returns it as a layout image.
    ///
    /// With `.all`, a multi-platform image's `index.json` is the registry's index byte for
    /// byte, so it hashes to `digest`; a single manifest is listed in `index.json` under `name`.
    public func pull(
        _ repository: Repository, _ digest: Digest, with client: RegistryClient,
        into layout: OCILayout, platforms: Platforms, name: String? = nil
    ) throws -> LayoutImage {
        let top = try client.manifest(repository, .digest(digest))
        try layout.writeBlob(top.bytes, mediaType: top.mediaType)
        var wanted: [Descriptor] = []
        switch try top.decode() {
        case .image(let manifest):
            wanted = [manifest.config] + manifest.layers
        case .index(let index):
            var children = index.manifests.filter { $0.mediaType.isImageManifest }
            if case .one(let platform) = platforms {
                let chosen = try index.choose(platform, image: "\(repository)@\(digest)")
                children = [chosen]
            }
            for child in children {
                let fetched = try client.manifest(repository, .digest(child.digest))
                try layout.writeBlob(fetched.bytes, mediaType: child.mediaType)
                if case .image(let manifest) = try fetched.decode() { wanted += [manifest.config] + manifest.layers }
            }
        }
        var succeeded = false
        defer { progress?.ended(succeeded: succeeded) }
        var missing: [Descriptor] = []
        for blob in unique(wanted) {
            if layout.hasBlob(blob) { progress?.skipped(blob, .inLayout) } else { missing.append(blob) }
        }
        _ = try parallel(missing) { [progress] blob in
            try client.downloadBlob(
                repository, blob, to: layout.blobPath(blob.digest), progress: observing(blob, .pull))
            progress?.finished(blob, .pull)
        }
        // index.json last, once every blob is in: a pull that fails half-way leaves a layout
        // that names no image, never one that looks complete.
        if case .index = try top.decode(), case .all = platforms {
            // index.json is the index itself: it hashes to the version's digest.
            try writeFile(top.bytes, to: layout.root.appendingPathComponent("index.json"))
        } else {
            try layout.writeIndex(ImageIndex(manifests: [describe(top, name: name)]))
        }
        let image = LayoutImage(
            layout: layout, descriptor: top.descriptor, bytes: top.bytes, manifest: try top.decode())
        succeeded = true
        return image
    }

    // MARK: copy

    /// Copies `digest` from one repository (maybe on another registry) to another under
    /// `tags`, sending only blobs the destination lacks (mounting within one registry).
    public func copy(
        _ digest: Digest, from source: RegistryClient, _ sourceRepository: Repository,
        to destination: RegistryClient, _ destinationRepository: Repository, tags: [Tag], scratch: URL
    ) throws -> Report {
        let sameRegistry = source.host == destination.host
        let top = try source.manifest(sourceRepository, .digest(digest))
        var manifests: [(Descriptor, Data)] = []
        var blobs: [Descriptor] = []
        func visit(_ response: ManifestResponse) throws {
            switch try response.decode() {
            case .image(let manifest):
                blobs += [manifest.config] + manifest.layers
            case .index(let index):
                for child in index.manifests where child.mediaType.isIndex || child.mediaType.isImageManifest {
                    try visit(source.manifest(sourceRepository, .digest(child.digest)))
                }
            }
            manifests.append((response.descriptor, response.bytes))
        }
        try visit(top)
        var report = Report(digest: digest)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var succeeded = false
        defer { progress?.ended(succeeded: succeeded) }
        let outcomes = try parallel(unique(blobs)) { [progress] blob -> BlobUploadOutcome in
            let outcome: BlobUploadOutcome
            if try destination.blobExists(destinationRepository, blob.digest) {
                outcome = .present
            } else if sameRegistry,
                try destination.mountBlob(destinationRepository, blob.digest, from: sourceRepository)
            {
                outcome = .mounted
            } else {
                // Another registry: the blob comes down to a scratch file, then goes up.
                let file = try fetch(blob, from: source, sourceRepository, scratch: scratch)
                defer { unlink(file.path) }
                outcome = try destination.uploadBlob(
                    destinationRepository, blob, from: file, progress: observing(blob, .push))
            }
            observe(outcome, of: blob, mountedFrom: sourceRepository, progress)
            return outcome
        }
        count(outcomes, into: &report)
        try putManifests(
            manifests, top: top.descriptor, top.bytes, client: destination, repository: destinationRepository,
            tags: tags)
        succeeded = true
        return report
    }

    // MARK: helpers

    private func fetch(_ blob: Descriptor, from client: RegistryClient, _ repository: Repository, scratch: URL) throws
        -> URL
    {
        let file = scratch.appendingPathComponent(blob.digest.encoded)
        try client.downloadBlob(repository, blob, to: file, progress: observing(blob, .pull))
        progress?.finished(blob, .pull)
        return file
    }

    /// The registry client's per-blob callback, forwarded to `progress`.
    private func observing(_ blob: Descriptor, _ direction: TransferDirection) -> BlobProgress? {
        guard let progress else { return nil }
        return { bytes in progress.moved(blob, direction, bytes: bytes) }
    }

    private func observe(
        _ outcome: BlobUploadOutcome, of blob: Descriptor, mountedFrom: Repository?,
        _ progress: (any TransferObserver)?
    ) {
        switch outcome {
        case .uploaded: progress?.finished(blob, .push)
        case .present: progress?.skipped(blob, .present)
        case .mounted: progress?.skipped(blob, mountedFrom.map { .mounted(from: $0) } ?? .present)
        }
    }

    /// Puts an image's manifests, children first, so an index never names a manifest the
    /// registry lacks; then the top one (the last of `manifests`) under each tag, or by
    /// digest when there is none.
    private func putManifests(
        _ manifests: [(Descriptor, Data)], top descriptor: Descriptor, _ bytes: Data, client: RegistryClient,
        repository: Repository, tags: [Tag]
    ) throws {
        for (child, childBytes) in manifests.dropLast() {
            try client.putManifest(repository, .digest(child.digest), bytes: childBytes, mediaType: child.mediaType)
        }
        if tags.isEmpty {
            try client.putManifest(
                repository, .digest(descriptor.digest), bytes: bytes, mediaType: descriptor.mediaType)
        }
        for tag in tags {
            try client.putManifest(repository, .tag(tag), bytes: bytes, mediaType: descriptor.mediaType)
        }
    }

    private func describe(_ response: ManifestResponse, name: String?) -> Descriptor {
        var descriptor = response.descriptor
        if let name { descriptor.annotations = [OCILayout.refName: name] }
        return descriptor
    }

    private func count(_ outcomes: [BlobUploadOutcome], into report: inout Report) {
        for outcome in outcomes {
            switch outcome {
            case .uploaded: report.uploaded += 1
            case .mounted: report.mounted += 1
            case .present: report.present += 1
            }
        }
    }

    private func unique(_ blobs: [Descriptor]) -> [Descriptor] {
        var seen = Set<Digest>()
        return blobs.filter { seen.insert($0.digest).inserted }
    }

    /// Runs `work` on every item, `parallelism` at a time; the first error is rethrown.
    private func parallel<T: Sendable, R: Sendable>(_ items: [T], _ work: @escaping @Sendable (T) throws -> R) throws
        -> [R]
    {
        guard !items.isEmpty else { return [] }
        let results = Mutex<[Int: Result<R, any Error>]>([:])
        let next = Mutex(0)
        let workers = min(parallelism, items.count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index = next.withLock { value -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < items.count else { return }
                let result = Result { try work(items[index]) }
                results.withLock { $0[index] = result }
                if case .failure = result { next.withLock { $0 = items.count } }
            }
        }
        return try results.withLock { results in
            try results.keys.sorted().map { try results[$0]!.get() }
        }
    }

    private func writeFile(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(UUID().uuidString)")
        try data.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else { throw LayoutError("cannot write \(url.path)") }
    }
}
