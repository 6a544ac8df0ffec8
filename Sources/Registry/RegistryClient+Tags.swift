import Foundation
import HTTP
import OCI

extension RegistryClient {
    /// Every tag of `repository`, following `Link` pagination (spec: "Listing Tags").
    ///
    /// A repository that was never pushed (`NAME_UNKNOWN`) has no tags: an empty list, as
    /// registry-image does. Names that are not valid tags are skipped.
    /// - Parameter pageSize: the `n` asked per page; nil lets the registry choose.
    public func tags(_ repository: Repository, pageSize: Int? = nil) throws -> [Tag] {
        let operation = "list tags of \(repository) on \(host)"
        var target = Target.path("\(repository.apiPath)/tags/list",
                                 query: pageSize.map { [URLQueryItem(name: "n", value: String($0))] } ?? [])
        var tags: [Tag] = []
        var seen = Set<String>()
        for _ in 0..<100_000 {
            let response = try send(.get, target, scope: .repository(repository, "pull"), operation: operation,
                                    bufferLimit: 16 << 20)
            if response.status == 404 && RegistryError.from(response, operation: operation).has(code: "NAME_UNKNOWN") {
                return []
            }
            guard (200..<300).contains(response.status) else { throw RegistryError.from(response, operation: operation) }
            struct Page: Decodable { var tags: [String]? }
            guard let page = try? JSONDecoder().decode(Page.self, from: response.body) else {
                throw RegistryError(.invalidResponse, operation: operation, hint: "the tag list is not {\"tags\":[…]} JSON")
            }
            for name in page.tags ?? [] where seen.insert(name).inserted {
                if let tag = try? Tag(name) { tags.append(tag) } else { log.debug("\(operation): skipping invalid tag \(name)") }
            }
            guard let next = Self.nextLink(response.headers["Link"]),
                  let url = URL(string: next, relativeTo: try baseURL())?.absoluteURL
            else { return tags }
            target = .url(url)
        }
        throw RegistryError(.invalidResponse, operation: operation, hint: "pagination did not end")
    }

    /// The target of `rel="next"` in a `Link` header (RFC 8288), e.g. `</v2/a/tags/list?last=x&n=2>; rel="next"`.
    static func nextLink(_ header: String?) -> String? {
        guard let header else { return nil }
        for link in header.split(separator: ",") {
            let parts = link.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let first = parts.first, first.hasPrefix("<"), first.hasSuffix(">"),
                  parts.dropFirst().contains(where: { $0.replacingOccurrences(of: " ", with: "").lowercased() == "rel=\"next\"" || $0.lowercased() == "rel=next" })
            else { continue }
            return String(first.dropFirst().dropLast())
        }
        return nil
    }
}
