import Foundation
import HTTP
import OCI

extension RegistryClient {
    /// Every tag of `repository`, following `Link` pagination (spec: "Listing Tags").
    ///
    /// A repository that was never pushed (`NAME_UNKNOWN`) has no tags: an empty list, as
    /// registry-image does. Names that are not valid tags are skipped. A listing that goes
    /// past `limits` (pages, tags, bytes, its deadline) or links back to a page already read fails in one
    /// line naming the cap and its environment variable, instead of growing without end.
    /// - Parameter pageSize: the `n` asked per page; nil lets the registry choose.
    public func tags(_ repository: Repository, pageSize: Int? = nil) throws -> [Tag] {
        let operation = "list tags of \(repository) on \(host)"
        var target = Target.path(
            "\(repository.apiPath)/tags/list",
            query: pageSize.map { [URLQueryItem(name: "n", value: String($0))] } ?? [])
        var tags: [Tag] = []
        var seen = Set<String>()
        var pagesRead = Set<String>()
        var bytes = 0
        let deadline = limits.listingDeadline()
        while true {
            try limits.checkListing(deadline, operation: operation)
            guard pagesRead.count < limits.maxTagPages else {
                throw RegistryError(
                    .limit, operation: operation,
                    hint:
                        "more than \(limits.maxTagPages) pages of tags; \(RegistryLimits.Variable.maxTagPages) raises the cap"
                )
            }
            let response = try send(
                .get, target, scope: .repository(repository, "pull"), operation: operation,
                bufferLimit: 16 << 20)
            if response.status == 404 && RegistryError.from(response, operation: operation).has(code: "NAME_UNKNOWN") {
                return []
            }
            guard (200..<300).contains(response.status) else {
                throw RegistryError.from(response, operation: operation)
            }
            bytes += response.body.count
            guard bytes <= limits.maxTagListBytes else {
                throw RegistryError(
                    .limit, operation: operation,
                    hint:
                        "more than \(limits.maxTagListBytes) bytes of tag lists; \(RegistryLimits.Variable.maxTagListBytes) raises the cap"
                )
            }
            struct Page: Decodable { var tags: [String]? }
            guard let page = try? JSONDecoder().decode(Page.self, from: response.body) else {
                throw RegistryError(
                    .invalidResponse, operation: operation, hint: "the tag list is not {\"tags\":[…]} JSON")
            }
            for name in page.tags ?? [] where seen.insert(name).inserted {
                guard seen.count <= limits.maxTags else {
                    throw RegistryError(
                        .limit, operation: operation,
                        hint: "more than \(limits.maxTags) tags; \(RegistryLimits.Variable.maxTags) raises the cap")
                }
                if let tag = try? Tag(name) {
                    tags.append(tag)
                } else {
                    log.debug("\(operation): skipping invalid tag \(name)")
                }
            }
            pagesRead.insert(try resolveForComparison(target))
            guard let url = try nextPage(response, operation: operation, pagesRead: pagesRead) else { return tags }
            target = .url(url)
        }
    }

    /// The absolute URL of the page `response` links to, or nil when it is the last; a link
    /// back to a page already read is an error, since following it would never end.
    func nextPage(_ response: HTTPResponse, operation: String, pagesRead: Set<String>) throws -> URL? {
        guard let next = Self.nextLink(response.headers["Link"]),
            let url = URL(string: next, relativeTo: try baseURL())?.absoluteURL
        else { return nil }
        guard !pagesRead.contains(url.absoluteString) else {
            throw RegistryError(
                .limit, operation: operation,
                hint:
                    "the registry's Link header links back to a page already read (\(redacted(url))), so the listing would never end"
            )
        }
        return url
    }

    /// A page's URL as `nextPage` compares them.
    func resolveForComparison(_ target: Target) throws -> String {
        switch target {
        case .url(let url): return url.absoluteString
        case .path(let path, let query):
            var components = URLComponents(url: try baseURL(), resolvingAgainstBaseURL: false)!
            components.percentEncodedPath = path
            if !query.isEmpty { components.queryItems = query }
            return components.url?.absoluteString ?? path
        }
    }

    /// The target of `rel="next"` in a `Link` header (RFC 8288), e.g. `</v2/a/tags/list?last=x&n=2>; rel="next"`.
    static func nextLink(_ header: String?) -> String? {
        guard let header else { return nil }
        for link in header.split(separator: ",") {
            let parts = link.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let first = parts.first, first.hasPrefix("<"), first.hasSuffix(">"),
                parts.dropFirst().contains(where: {
                    $0.replacingOccurrences(of: " ", with: "").lowercased() == "rel=\"next\""
                        || $0.lowercased() == "rel=next"
                })
            else { continue }
            return String(first.dropFirst().dropLast())
        }
        return nil
    }
}
