import Foundation

/// Reads the bytes of a `Data` value: small documents (a manifest, a config) and tests.
public final class DataSource: ByteSource {
    private let data: Data
    private var position: Data.Index

    /// A source that yields the bytes of `data`, then ends.
    public init(_ data: Data) {
        self.data = data
        position = data.startIndex
    }

    /// Copies the next bytes of the data; never throws.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, data.endIndex - position)
        guard n > 0 else { return 0 }
        buffer.copyBytes(from: data[position..<position + n])
        position += n
        return n
    }
}

/// Collects written bytes in memory, refusing more than a limit.
///
/// The limit is what makes it safe to read a small document out of an untrusted archive
/// (`manifest.json` in a docker-archive, `index.json` in a layout): a hostile entry claiming
/// gigabytes fails at the limit instead of exhausting memory.
public final class DataSink: ByteSink {
    /// The bytes written so far.
    public private(set) var data = Data()
    /// The most bytes this sink accepts.
    public let limit: Int

    /// A sink that accepts at most `limit` bytes in total.
    public init(limit: Int = .max) {
        self.limit = limit
    }

    /// Appends `bytes`.
    /// - Throws: ``ArchiveError`` (`.limitExceeded`) when the total would pass ``limit``;
    ///   nothing of `bytes` is kept then.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count <= limit - data.count else {
            throw ArchiveError(
                .limitExceeded,
                "in-memory buffer limit of \(limit) bytes exceeded: \(data.count + bytes.count) bytes written")
        }
        data.append(contentsOf: bytes)
    }

    /// Does nothing: the bytes are already in ``data``.
    public func finish() throws {}
}
