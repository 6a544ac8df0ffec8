import Foundation
import HTTP
import OCI

extension RegistryClient {
    /// The manifests whose `subject` is `digest`, as the registry lists them, or nil when the
    /// registry has no referrers API.
    ///
    /// `GET /v2/<name>/referrers/<digest>[?artifactType=…]` ([distribution spec v1.1, Listing
    /// Referrers](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers)), following `Link` pagination. A registry with the API answers 200 with an
    /// image index even when nothing refers to `digest`, and never 404; so 404 (and 400,
    /// 405, 406 or 501, or a 200 that is not an index, from registries that route it
    /// nowhere) means it has none, and the caller uses cosign's tags alone. Pages, entries and
    /// bytes are capped by `limits` as a tag listing's are. The filter is applied
    /// here again: a registry may ignore `artifactType` (it says so by not sending
    /// `OCI-Filters-Applied`).
    public func referrers(_ repository: Repository, of digest: Digest, artifactType: MediaType? = nil) throws
        -> [Descriptor]?
    {
        let operation = "list referrers of \(repository)@\(digest) on \(host)"
        var components = URLComponents(url: try baseURL(), resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = "\(repository.apiPath)/referrers/\(digest)"
        if let artifactType {
            // Percent-encoded by hand: URLComponents leaves `+` (in every `…+json` type) as
            // is, and servers decode a bare `+` in a query as a space.
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            components.percentEncodedQuery =
                "artifactType=" + (artifactType.rawValue.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        }
        guard let first = components.url else {
            throw RegistryError(.invalidResponse, operation: operation, hint: "cannot build the referrers URL")
        }
        var target = Target.url(first)
        var found: [Descriptor] = []
        var seen = Set<Digest>()
        var pagesRead = Set<String>()
        var bytes = 0
        let deadline = limits.listingDeadline()
        for _ in 0..<limits.maxTagPages {
            try limits.checkListing(deadline, operation: operation)
            let response = try send(
                .get, target, scope: .repository(repository, "pull"), operation: operation,
                headers: ["Accept": MediaType.ociIndex.rawValue], bufferLimit: Self.manifestLimit)
            if [400, 404, 405, 406, 501].contains(response.status) && found.isEmpty && seen.isEmpty { return nil }
            guard (200..<300).contains(response.status) else {
                throw RegistryError.from(response, operation: operation)
            }
            guard case .index(let index)? = try? Manifest.decode(response.body, mediaType: .ociIndex) else {
                // Some front ends answer unknown routes with 200 and a page: no API, unless
                // an earlier page was an index.
                guard seen.isEmpty else {
                    throw RegistryError(
                        .invalidResponse, operation: operation, hint: "a later page is not an OCI image index")
                }
                log.debug("\(operation): the answer is not an OCI image index; taking it as no referrers API")
                return nil
            }
            bytes += response.body.count
            guard bytes <= limits.maxTagListBytes, seen.count + index.manifests.count <= limits.maxTags else {
                throw RegistryError(
                    .limit, operation: operation,
                    hint: "more than \(limits.maxTags) referrers or \(limits.maxTagListBytes) bytes of them; "
                        + "\(RegistryLimits.Variable.maxTags) and \(RegistryLimits.Variable.maxTagListBytes) raise the caps"
                )
            }
            for descriptor in index.manifests where seen.insert(descriptor.digest).inserted {
                if let artifactType, descriptor.artifactType != artifactType { continue }
                found.append(descriptor)
            }
            pagesRead.insert(try resolveForComparison(target))
            guard let url = try nextPage(response, operation: operation, pagesRead: pagesRead) else { return found }
            target = .url(url)
        }
        throw RegistryError(
            .limit, operation: operation,
            hint:
                "more than \(limits.maxTagPages) pages of referrers; \(RegistryLimits.Variable.maxTagPages) raises the cap"
        )
    }

    /// `PUT /v2/<name>/manifests/<digest>` of a manifest with a `subject` ([distribution spec
    /// v1.1, Pushing Manifests with Subject](https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject)). Returns its digest and whether the registry answered
    /// `OCI-Subject` (it indexed the manifest as a referrer of its subject); without that
    /// header a client must not count on the referrers API listing it.
    public func putReferrer(_ repository: Repository, bytes: Data, mediaType: MediaType) throws -> (
        digest: Digest, indexed: Bool
    ) {
        let digest = Digest.sha256(bytes)
        let operation = "PUT referrer manifest \(repository)@\(digest) to \(host)"
        let response = try sendManifest(
            repository, .digest(digest), bytes: bytes, digest: digest, mediaType: mediaType, operation: operation)
        return (digest, response.headers["OCI-Subject"] != nil)
    }
}
