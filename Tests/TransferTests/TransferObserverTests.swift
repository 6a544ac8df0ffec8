import Foundation
import ImageLayout
import OCI
import Registry
import Synchronization
import TestSupport
import Testing
import Transfer

/// Records what a transfer tells its observer, in order per blob.
private final class Recorder: TransferObserver {
    enum Event: Equatable {
        case moved(TransferDirection, Int64)
        case finished(TransferDirection)
        case skipped(SkippedBlob)
    }

    private let events = Mutex<[Digest: [Event]]>([:])
    private let endings = Mutex(0)

    func moved(_ blob: Descriptor, _ direction: TransferDirection, bytes: Int64) {
        events.withLock { $0[blob.digest, default: []].append(.moved(direction, bytes)) }
    }
    func finished(_ blob: Descriptor, _ direction: TransferDirection) {
        events.withLock { $0[blob.digest, default: []].append(.finished(direction)) }
    }
    func skipped(_ blob: Descriptor, _ reason: SkippedBlob) {
        events.withLock { $0[blob.digest, default: []].append(.skipped(reason)) }
    }
    func ended(succeeded: Bool) { endings.withLock { $0 += 1 } }

    var byBlob: [Digest: [Event]] { events.withLock { $0 } }
    var ends: Int { endings.withLock { $0 } }
}

/// Each blob's events are the bytes of one direction, from 0, never backwards, ending at its
/// size, then `finished` in that direction.
private func expectMoved(
    _ events: ArraySlice<Recorder.Event>, _ direction: TransferDirection, size: Int64,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let counts = events.dropLast().compactMap { event -> Int64? in
        if case .moved(direction, let bytes) = event { return bytes }
        return nil
    }
    #expect(
        counts.count == events.count - 1, "only \(direction) bytes before the end: \(events)",
        sourceLocation: sourceLocation)
    #expect(counts.first == 0 && counts.last == size, "from 0 to \(size): \(counts)", sourceLocation: sourceLocation)
    #expect(counts == counts.sorted(), "never backwards: \(counts)", sourceLocation: sourceLocation)
    #expect(events.last == .finished(direction), sourceLocation: sourceLocation)
}

@Suite("What a transfer tells its observer, against the real registry")
struct TransferObserverTests {
    let app = try! Repository("team/app")

    /// An image whose layers are large enough to arrive in several pieces.
    private func image(in directory: TemporaryDirectory) throws -> LayoutImage {
        let layout = try OCILayout.create(at: directory.appending("layout"))
        var generator = SystemRandomNumberGenerator()
        let text = (0..<(600 * 1024 / 8)).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
        let (layer, diffID) = try ImageFixture.layer(["data/random.txt": text], into: layout)
        let configuration = ImageConfiguration(
            created: "1970-01-01T00:00:00Z", platform: Platform(os: "linux", architecture: "amd64"),
            config: ImageConfiguration.Config(), rootfs: .init(diffIDs: [diffID]))
        let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
        let manifest = try layout.writeBlob(
            try CanonicalJSON.encode(ImageManifest(config: config, layers: [layer])), mediaType: .ociManifest)
        try layout.addToIndex(manifest, name: "v1")
        return try layout.image(named: "v1")
    }

    @Test func pushAndPullReportEveryBlobsBytesAndTheSecondPushSkipsThem() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let image = try image(in: directory)
                let client = try registry.client()
                guard case .image(let manifest) = image.manifest else {
                    Issue.record("not an image")
                    return
                }
                let blobs = [manifest.config] + manifest.layers

                let pushed = Recorder()
                try ImageTransfer(progress: pushed).push(image, with: client, to: app, tags: [try OCI.Tag("v1")])
                for blob in blobs { expectMoved(pushed.byBlob[blob.digest]?[...] ?? [], .push, size: blob.size) }
                #expect(pushed.ends == 1)

                let again = Recorder()
                try ImageTransfer(progress: again).push(image, with: client, to: app, tags: [try OCI.Tag("v1")])
                #expect(
                    again.byBlob == Dictionary(uniqueKeysWithValues: blobs.map { ($0.digest, [.skipped(.present)]) }))

                let pulled = Recorder()
                let layout = try OCILayout.create(at: directory.appending("pulled"))
                _ = try ImageTransfer(progress: pulled).pull(
                    app, image.descriptor.digest, with: client, into: layout, platforms: .all)
                for blob in blobs { expectMoved(pulled.byBlob[blob.digest]?[...] ?? [], .pull, size: blob.size) }
                #expect(pulled.ends == 1)
            }
        }
    }

    @Test func copyMountsWithinARegistryAndPullsThenPushesAcrossRegistries() async throws {
        try await withTestRegistry(.open) { source in
            try await withTestRegistry(.open) { target in
                try withTemporaryDirectory { directory in
                    let image = try image(in: directory)
                    let from = try source.client()
                    try ImageTransfer().push(image, with: from, to: app, tags: [try OCI.Tag("dev")])
                    guard case .image(let manifest) = image.manifest else {
                        Issue.record("not an image")
                        return
                    }
                    let blobs = [manifest.config] + manifest.layers

                    let promoted = Recorder()
                    try ImageTransfer(progress: promoted).copy(
                        image.descriptor.digest, from: from, app, to: from, try Repository("prod/app"),
                        tags: [try OCI.Tag("prod")], scratch: directory.appending("s1"))
                    #expect(
                        promoted.byBlob
                            == Dictionary(
                                uniqueKeysWithValues: blobs.map { ($0.digest, [.skipped(.mounted(from: app))]) }))

                    let copied = Recorder()
                    try ImageTransfer(progress: copied).copy(
                        image.descriptor.digest, from: from, app, to: try target.client(), app,
                        tags: [try OCI.Tag("stable")], scratch: directory.appending("s2"))
                    for blob in blobs {
                        let events = copied.byBlob[blob.digest] ?? []
                        let split = (events.firstIndex(of: .finished(.pull)) ?? 0) + 1
                        expectMoved(events[..<split], .pull, size: blob.size)
                        expectMoved(events[split...], .push, size: blob.size)
                    }
                    #expect(copied.ends == 1)
                }
            }
        }
    }

    @Test func aChunkedUploadCountsAcrossItsChunks() async throws {
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let file = directory.appending("blob")
                let data = Data((0..<(300 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
                try data.write(to: file)
                let descriptor = Descriptor(
                    mediaType: .ociLayerGzip, digest: Digest.sha256(data), size: Int64(data.count))
                let counts = Mutex<[Int64]>([])
                let outcome = try registry.client().uploadBlob(app, descriptor, from: file, chunkSize: 100 * 1024) {
                    bytes in
                    counts.withLock { $0.append(bytes) }
                }
                #expect(outcome == .uploaded)
                let seen = counts.withLock { $0 }
                #expect(seen.first == 0 && seen.last == descriptor.size)
                #expect(seen == seen.sorted(), "offsets of later chunks add to earlier ones: \(seen)")
                #expect(
                    seen.contains { $0 > 100 * 1024 && $0 < descriptor.size },
                    "counted within the later chunks: \(seen)")
            }
        }
    }
}
