import Foundation
import HTTP
import OCI

/// What `uploadBlob` had to do.
public enum BlobUploadOutcome: Sendable, Hashable {
    /// The repository already had the blob; nothing was sent.
    case present
    /// The registry linked it from another repository; nothing was sent.
    case mounted
    /// The bytes were uploaded.
    case uploaded
}

/// Bytes of one blob moved so far, reported while they move: 0 when bytes start to move
/// (never for a blob found present or mounted), then after every chunk. A transfer that
/// starts again (a retried upload, a new attempt of a download) reports from 0 again.
public typealias BlobProgress = @Sendable (Int64) -> Void

extension RegistryClient {
    /// Whether `repository` holds the blob (`HEAD /v2/<name>/blobs/<digest>`).
    public func blobExists(_ repository: Repository, _ digest: Digest) throws -> Bool {
        let operation = "HEAD blob \(repository)@\(digest) on \(host)"
        let response = try send(
            .head, .path("\(repository.apiPath)/blobs/\(digest)"),
            scope: .repository(repository, "pull"), operation: operation)
        switch response.status {
        case 200..<300: return true
        case 404: return false
        default: throw RegistryError.from(response, operation: operation)
        }
    }

    /// Downloads a blob to `destination`, streaming: the bytes go to a temporary file
    /// beside it while being hashed, and the file is renamed into place only when its size
    /// and digest match `descriptor`. A body longer than `descriptor.size` is cut off at once.
    /// - Parameter progress: told the bytes written so far, as they arrive.
    public func downloadBlob(
        _ repository: Repository, _ descriptor: Descriptor, to destination: URL,
        progress: BlobProgress? = nil
    ) throws {
        let operation = "GET blob \(repository)@\(descriptor.digest) from \(host)"
        let partial = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).partial-\(UUID().uuidString.prefix(8))")
        defer { unlink(partial.path) }
        var sink: VerifyingFileSink?
        let response = try send(
            .get, .path("\(repository.apiPath)/blobs/\(descriptor.digest)"),
            scope: .repository(repository, "pull"), operation: operation
        ) { head in
            guard (200..<300).contains(head.status) else { return nil }
            sink = VerifyingFileSink(path: partial.path, expected: descriptor, operation: operation, progress: progress)
            progress?(0)
            return sink
        }
        guard (200..<300).contains(response.status) else { throw RegistryError.from(response, operation: operation) }
        // An empty body never reached the stream callback.
        let written = sink ?? VerifyingFileSink(path: partial.path, expected: descriptor, operation: operation)
        try written.finish()
        guard rename(partial.path, destination.path) == 0 else {
            throw RegistryError(
                .transport, operation: operation,
                hint: "cannot move the blob to \(destination.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Uploads the blob in `file` unless the repository already has it.
    ///
    /// Spec, "Pushing blobs": HEAD first; then, with `mountFrom`, a cross-repository mount
    /// (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`); else a monolithic PUT, or PATCH
    /// chunks of `chunkSize` bytes then a closing PUT. The file is read while sending.
    /// - Parameter progress: told the bytes sent so far, as they go.
    @discardableResult
    public func uploadBlob(
        _ repository: Repository, _ descriptor: Descriptor, from file: URL,
        mountFrom: Repository? = nil, chunkSize: Int64? = nil, progress: BlobProgress? = nil
    ) throws -> BlobUploadOutcome {
        try upload(
            repository, descriptor, source: .file(file.path), mountFrom: mountFrom, chunkSize: chunkSize,
            progress: progress)
    }

    /// Links a blob of the same registry into `repository` without sending it
    /// (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`). False when the registry
    /// declined (it then opened an upload session, which is cancelled).
    public func mountBlob(_ repository: Repository, _ digest: Digest, from source: Repository) throws -> Bool {
        let operation = "mount blob \(digest) from \(source) into \(repository) on \(host)"
        let scope = Scope.repository(repository, "pull", "push").union(.repository(source, "pull"))
        let response = try send(
            .post,
            .path(
                "\(repository.apiPath)/blobs/uploads/",
                query: [
                    URLQueryItem(name: "mount", value: digest.rawValue),
                    URLQueryItem(name: "from", value: source.rawValue),
                ]), scope: scope, operation: operation)
        switch response.status {
        case 201: return true
        case 202:
            if let location = try? uploadLocation(response, operation: operation) {
                _ = try? send(
                    .delete, .url(location), scope: scope, operation: "cancel an upload on \(host)", retry: .never)
            }
            return false
        default: throw RegistryError.from(response, operation: operation)
        }
    }

    /// Uploads a small blob held in memory (an image config) and returns its descriptor.
    @discardableResult
    public func uploadBlob(_ repository: Repository, data: Data, mediaType: MediaType) throws -> Descriptor {
        let descriptor = Descriptor(mediaType: mediaType, digest: Digest.sha256(data), size: Int64(data.count))
        _ = try upload(repository, descriptor, source: .data(data), mountFrom: nil, chunkSize: nil, progress: nil)
        return descriptor
    }

    enum BlobSource {
        case file(String)
        case data(Data)

        func body(offset: Int64, length: Int64) -> HTTPRequestBody {
            switch self {
            case .file(let path): .file(path: path, offset: offset, length: length)
            case .data(let data): .data(data.subdata(in: Int(offset)..<Int(offset + length)))
            }
        }
    }

    private func upload(
        _ repository: Repository, _ descriptor: Descriptor, source: BlobSource,
        mountFrom: Repository?, chunkSize: Int64?, progress: BlobProgress?
    ) throws -> BlobUploadOutcome {
        if try blobExists(repository, descriptor.digest) { return .present }
        // An upload session does not survive a broken PUT, so a failed attempt starts a new
        // session, after checking whether the registry got the blob anyway. A POST that
        // `send` already retried to the policy's limit is not tried again here: retries of
        // retries would make a registry that refuses uploads cost maxAttempts² attempts.
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try uploadOnce(
                    repository, descriptor, source: source, mountFrom: mountFrom, chunkSize: chunkSize,
                    progress: progress)
            } catch let exhausted as RetriesExhausted {
                throw exhausted.error
            } catch let error as RegistryError where error.isRetryable && attempt < retry.maxAttempts {
                log.info("\(error); starting the upload again (attempt \(attempt + 1) of \(retry.maxAttempts))")
                if try blobExists(repository, descriptor.digest) { return .uploaded }
                retry.sleep(retry.delay(afterAttempt: attempt, retryAfter: nil))
            }
        }
    }

    private func uploadOnce(
        _ repository: Repository, _ descriptor: Descriptor, source: BlobSource,
        mountFrom: Repository?, chunkSize: Int64?, progress: BlobProgress?
    ) throws -> BlobUploadOutcome {
        let operation = "upload blob \(descriptor.digest) to \(repository) on \(host)"
        var scope = Scope.repository(repository, "pull", "push")
        var query: [URLQueryItem] = []
        if let mountFrom, mountFrom != repository {
            scope = scope.union(.repository(mountFrom, "pull"))
            query = [
                URLQueryItem(name: "mount", value: descriptor.digest.rawValue),
                URLQueryItem(name: "from", value: mountFrom.rawValue),
            ]
        }
        let started: HTTPResponse
        do {
            started = try send(
                .post, .path("\(repository.apiPath)/blobs/uploads/", query: query), scope: scope,
                operation: operation, headers: ["Content-Type": "application/octet-stream"])
        } catch {
            throw RetriesExhausted(error: error)
        }
        if started.status == 201, mountFrom != nil { return .mounted }
        // `send` returns a retryable status only once the policy's attempts are spent.
        guard started.status == 202 else {
            throw RetriesExhausted(error: RegistryError.from(started, operation: operation))
        }
        var location = try uploadLocation(started, operation: operation)

        progress?(0)
        let size = descriptor.size
        if let chunkSize, chunkSize > 0, size > chunkSize {
            var offset: Int64 = 0
            while offset < size {
                let length = min(chunkSize, size - offset)
                let chunkStart = offset
                let response = try send(
                    .patch, .url(location), scope: scope, operation: operation,
                    headers: [
                        "Content-Type": "application/octet-stream",
                        "Content-Range": "\(offset)-\(offset + length - 1)",
                    ],
                    body: source.body(offset: offset, length: length), retry: .never,
                    bodySent: progress.map { progress -> @Sendable (Int64) -> Void in { progress(chunkStart + $0) } })
                guard response.status == 202 else { throw RegistryError.from(response, operation: operation) }
                location = try uploadLocation(response, operation: operation)
                offset += length
            }
            let closed = try send(
                .put, .url(appendingDigest(descriptor.digest, to: location)), scope: scope,
                operation: operation, headers: ["Content-Type": "application/octet-stream"], retry: .never)
            guard closed.status == 201 else { throw RegistryError.from(closed, operation: operation) }
        } else {
            let response = try send(
                .put, .url(appendingDigest(descriptor.digest, to: location)), scope: scope,
                operation: operation, headers: ["Content-Type": "application/octet-stream"],
                body: source.body(offset: 0, length: size), retry: .never, bodySent: progress)
            guard response.status == 201 else { throw RegistryError.from(response, operation: operation) }
        }
        return .uploaded
    }

    /// A failure of a request `send` already retried per the policy (the POST that opens an
    /// upload session), which `upload` must not retry again.
    private struct RetriesExhausted: Error {
        let error: any Error
    }

    private func uploadLocation(_ response: HTTPResponse, operation: String) throws -> URL {
        guard let location = response.headers["Location"],
            let url = URL(string: location, relativeTo: try baseURL())?.absoluteURL
        else {
            throw RegistryError(
                .invalidResponse, operation: operation, status: response.status, hint: "no upload Location")
        }
        return url
    }

    private func appendingDigest(_ digest: Digest, to url: URL) -> URL {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "digest", value: digest.rawValue)]
        return components.url!
    }
}

/// Writes a streamed blob to a file while counting and hashing it; `finish` checks both.
final class VerifyingFileSink: HTTPBodySink {
    private let descriptor: Descriptor
    private let operation: String
    private let path: String
    private var hasher = DigestHasher()
    private var received: Int64 = 0
    private let fd: Int32
    private let openError: Int32
    private let progress: BlobProgress?

    init(path: String, expected: Descriptor, operation: String, progress: BlobProgress? = nil) {
        self.progress = progress
        self.path = path
        self.descriptor = expected
        self.operation = operation
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        openError = fd < 0 ? errno : 0
    }

    deinit { if fd >= 0 { close(fd) } }

    func receive(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else {
            throw RegistryError(
                .transport, operation: operation, hint: "cannot write \(path): \(String(cString: strerror(openError)))")
        }
        received += Int64(bytes.count)
        guard received <= descriptor.size else {
            throw RegistryError(
                .sizeMismatch, operation: operation,
                hint: "the registry sent more than the expected \(descriptor.size) bytes")
        }
        hasher.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw RegistryError(
                    .transport, operation: operation, hint: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        progress?(received)
    }

    func finish() throws {
        guard fd >= 0 else {
            throw RegistryError(
                .transport, operation: operation, hint: "cannot write \(path): \(String(cString: strerror(openError)))")
        }
        guard received == descriptor.size else {
            throw RegistryError(
                .sizeMismatch, operation: operation, hint: "received \(received) bytes, expected \(descriptor.size)")
        }
        guard descriptor.digest.algorithm == "sha256" else {
            throw RegistryError(
                .invalidResponse, operation: operation,
                hint: "unsupported digest algorithm \(descriptor.digest.algorithm)")
        }
        let actual = hasher.finalize()
        guard actual == descriptor.digest else {
            throw RegistryError(.digestMismatch, operation: operation, hint: "the content hashes to \(actual)")
        }
    }
}
