import Foundation
import HTTP
import OCI

/// A manifest exactly as the registry holds it: its bytes are what the digest is of.
public struct ManifestResponse: Sendable {
    public let digest: Digest
    public let mediaType: MediaType
    public let bytes: Data

    /// The descriptor that points at these bytes.
    public var descriptor: Descriptor { Descriptor(mediaType: mediaType, digest: digest, size: Int64(bytes.count)) }

    /// The parsed manifest or index.
    public func decode() throws -> Manifest { try Manifest.decode(bytes, mediaType: mediaType) }
}

extension RegistryClient {
    /// Manifests larger than this are refused (distribution's own limit is 4 MiB).
    static let manifestLimit = 4 << 20

    /// The `Accept` header naming every manifest and index type we read.
    static let manifestAccept = MediaType.manifestTypes.map(\.rawValue).joined(separator: ", ")

    /// The descriptor of a manifest, or nil if it does not exist.
    ///
    /// `HEAD /v2/<name>/manifests/<reference>` (spec: "Checking if content exists"). A
    /// registry that omits `Docker-Content-Digest` is asked again with GET and the body hashed.
    public func manifestDescriptor(_ repository: Repository, _ reference: Reference) throws -> Descriptor? {
        let operation = "HEAD manifest \(repository):\(reference) on \(host)"
        let response = try send(
            .head, .path("\(repository.apiPath)/manifests/\(reference)"),
            scope: .repository(repository, "pull"), operation: operation,
            headers: ["Accept": Self.manifestAccept])
        if response.status == 404 { return nil }
        guard (200..<300).contains(response.status) else { throw RegistryError.from(response, operation: operation) }
        if case .digest(let digest) = reference,
            let type = response.headers["Content-Type"].flatMap({ try? MediaType($0) }),
            let size = response.headers["Content-Length"].flatMap({ Int64($0) })
        {
            return Descriptor(mediaType: type, digest: digest, size: size)
        }
        if let digest = response.headers["Docker-Content-Digest"].flatMap({ try? Digest($0) }),
            let type = response.headers["Content-Type"].flatMap({ try? MediaType($0) }),
            let size = response.headers["Content-Length"].flatMap({ Int64($0) })
        {
            return Descriptor(mediaType: type, digest: digest, size: size)
        }
        do {
            return try manifest(repository, reference).descriptor
        } catch let error as RegistryError where error.kind == .notFound {
            return nil
        }
    }

    /// `GET /v2/<name>/manifests/<reference>` (spec: "Pulling manifests").
    ///
    /// The digest is always computed from the bytes received: a manifest fetched by digest
    /// must hash to it, and one fetched by tag must match `Docker-Content-Digest` if sent.
    public func manifest(_ repository: Repository, _ reference: Reference) throws -> ManifestResponse {
        let operation = "GET manifest \(repository):\(reference) from \(host)"
        let response = try send(
            .get, .path("\(repository.apiPath)/manifests/\(reference)"),
            scope: .repository(repository, "pull"), operation: operation,
            headers: ["Accept": Self.manifestAccept], bufferLimit: Self.manifestLimit)
        guard (200..<300).contains(response.status) else { throw RegistryError.from(response, operation: operation) }
        let bytes = response.body
        let claimed: Digest? =
            if case .digest(let digest) = reference { digest } else {
                response.headers["Docker-Content-Digest"].flatMap { try? Digest($0) }
            }
        let digest = try claimed.map { try verify(bytes, against: $0, operation: operation) } ?? Digest.sha256(bytes)
        let mediaType =
            try response.headers["Content-Type"].flatMap({ try? MediaType($0) })
            .flatMap { MediaType.manifestTypes.contains($0) ? $0 : nil }
            ?? Manifest.decode(bytes, mediaType: nil).mediaType
        return ManifestResponse(digest: digest, mediaType: mediaType, bytes: bytes)
    }

    /// `PUT /v2/<name>/manifests/<reference>` with exactly `bytes` (spec: "Pushing Manifests").
    /// Returns the digest of those bytes, after checking the registry computed the same.
    @discardableResult
    public func putManifest(_ repository: Repository, _ reference: Reference, bytes: Data, mediaType: MediaType) throws
        -> Digest
    {
        let operation = "PUT manifest \(repository):\(reference) to \(host)"
        let digest = Digest.sha256(bytes)
        if case .digest(let wanted) = reference, wanted != digest {
            throw RegistryError(
                .digestMismatch, operation: operation, hint: "the bytes hash to \(digest), not \(wanted)")
        }
        _ = try sendManifest(
            repository, reference, bytes: bytes, digest: digest, mediaType: mediaType, operation: operation)
        return digest
    }

    /// PUTs a manifest's `bytes` (whose digest is `digest`) and checks the registry stored
    /// those bytes: its `Docker-Content-Digest`, when it sends one, must be `digest`. Returns
    /// the response, whose headers say more (`OCI-Subject`).
    func sendManifest(
        _ repository: Repository, _ reference: Reference, bytes: Data, digest: Digest, mediaType: MediaType,
        operation: String
    ) throws -> HTTPResponse {
        let response = try send(
            .put, .path("\(repository.apiPath)/manifests/\(reference)"),
            scope: .repository(repository, "pull", "push"), operation: operation,
            headers: ["Content-Type": mediaType.rawValue], body: .data(bytes))
        guard response.status == 201 || response.status == 200 else {
            throw RegistryError.from(response, operation: operation)
        }
        if let answered = response.headers["Docker-Content-Digest"].flatMap({ try? Digest($0) }), answered != digest {
            throw RegistryError(
                .digestMismatch, operation: operation, hint: "the registry stored \(answered), we sent \(digest)")
        }
        return response
    }

    /// `DELETE /v2/<name>/manifests/<digest>` (spec: "Deleting Manifests").
    ///
    /// In distribution this removes every tag of the repository that points at `digest`.
    public func deleteManifest(_ repository: Repository, _ digest: Digest) throws {
        let operation = "DELETE manifest \(repository)@\(digest) on \(host)"
        let response = try send(
            .delete, .path("\(repository.apiPath)/manifests/\(digest)"),
            scope: .repository(repository, "delete"), operation: operation)
        guard response.status == 202 || response.status == 200 else {
            var error = RegistryError.from(response, operation: operation)
            if response.status == 405 {
                error = RegistryError(
                    error.kind, operation: operation, status: 405, details: error.details,
                    hint: "the registry has deletion disabled (storage.delete.enabled)")
            }
            throw error
        }
    }

    /// Checks `bytes` hash to `digest`, with the digest's own algorithm.
    func verify(_ bytes: Data, against digest: Digest, operation: String) throws -> Digest {
        let actual: String
        switch digest.algorithm {
        case "sha256": actual = Digest.sha256(bytes).encoded
        case "sha512": actual = Digest.sha512(bytes).encoded
        default:
            throw RegistryError(
                .invalidResponse, operation: operation, hint: "unsupported digest algorithm \(digest.algorithm)")
        }
        guard actual == digest.encoded else {
            throw RegistryError(
                .digestMismatch, operation: operation,
                hint: "the content hashes to \(digest.algorithm):\(actual), not \(digest)")
        }
        return digest
    }
}
