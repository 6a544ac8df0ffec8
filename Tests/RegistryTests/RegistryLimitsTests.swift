import Foundation
import HTTP
import OCI
import TestSupport
import Testing

@testable import Registry

@Suite("Registry limits and where credentials go")
struct RegistryLimitsTests {
    @Test func limitsComeFromTheEnvironmentOrTheDefaults() throws {
        #expect(try RegistryLimits.fromEnvironment([:]) == .standard)
        let limits = try RegistryLimits.fromEnvironment([
            "SLIPWAY_REGISTRY_REQUEST_TIMEOUT": "3", "SLIPWAY_REGISTRY_MAX_TAG_PAGES": "7",
            "SLIPWAY_REGISTRY_MAX_TAGS": "9", "SLIPWAY_REGISTRY_MAX_TAG_LIST_BYTES": "1000",
            "SLIPWAY_REGISTRY_LISTING_TIMEOUT": "11",
        ])
        #expect(
            limits
                == RegistryLimits(
                    requestTimeout: 3, maxTagPages: 7, maxTags: 9, maxTagListBytes: 1000, listingTimeout: 11))
        let timeouts = try CurlTransport.Timeouts.fromEnvironment([
            "SLIPWAY_HTTP_LOW_SPEED_LIMIT": "10", "SLIPWAY_HTTP_LOW_SPEED_TIME": "2",
        ])
        #expect(timeouts.lowSpeedLimit == 10 && timeouts.stalled == 2)
    }

    @Test(arguments: ["0", "-1", "ten", "", "1.5"])
    func aVariableThatIsNotAPositiveNumberIsRefusedInOneLine(value: String) {
        do {
            _ = try RegistryLimits.fromEnvironment(["SLIPWAY_REGISTRY_MAX_TAGS": value])
            Issue.record("accepted \(value)")
        } catch {
            #expect("\(error)".contains("SLIPWAY_REGISTRY_MAX_TAGS") && !"\(error)".contains("\n"))
        }
        #expect(throws: HTTPError.self) {
            try CurlTransport.Timeouts.fromEnvironment(["SLIPWAY_HTTP_LOW_SPEED_TIME": value])
        }
    }

    /// Credentials go with a URL the registry hands over (a `Link`, a `Location`) only when
    /// it is the registry itself, and never down from https to http.
    @Test(arguments: [
        ("https://r.example/v2/a/tags/list?last=x", "https://r.example", true),
        ("https://r.example:443/v2/", "https://r.example", true),
        ("https://R.EXAMPLE/v2/", "https://r.example", true),
        ("https://other.example/v2/a/tags/list", "https://r.example", false),
        ("https://r.example:5000/v2/", "https://r.example", false),
        ("http://r.example/v2/", "https://r.example", false),
        ("https://127.0.0.1:5000/v2/", "http://127.0.0.1:5000", true),
        ("http://127.0.0.1:5001/v2/", "http://127.0.0.1:5000", false),
    ])
    func credentialsStayOnTheRegistrysOrigin(url: String, base: String, same: Bool) {
        #expect(RegistryClient.sameOrigin(URL(string: url)!, URL(string: base)!) == same)
    }
}

@Suite("Referrers listings are bounded as tag listings are")
struct ReferrersBoundsTests {
    static let subject = try! Digest("sha256:" + String(repeating: "a", count: 64))

    /// The error `referrers` throws with `limits`, as text; nil when it returns.
    func failure(_ registry: BoundsRegistry, _ limits: RegistryLimits) throws -> String? {
        let client = try RegistryClient(host: try RegistryHost(registry.host), credentialLookup: nil, limits: limits)
        do {
            _ = try client.referrers(try Repository("team/app"), of: Self.subject)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aReferrersPageLinkingBackEndsTheListing() async throws {
        try await withBoundsRegistry(.init(referrers: "loop", pageSize: 3)) { registry in
            let error = try failure(registry, .standard)
            #expect(error?.contains("links back") == true, "\(error ?? "returned")")
        }
    }

    @Test func endlessReferrersStopAtTheCaps() async throws {
        try await withBoundsRegistry(.init(referrers: "endless", pageSize: 50)) { registry in
            let pages = try failure(registry, RegistryLimits(maxTagPages: 10))
            #expect(pages?.contains("SLIPWAY_REGISTRY_MAX_TAG_PAGES") == true, "\(pages ?? "returned")")
            let entries = try failure(registry, RegistryLimits(maxTags: 120))
            #expect(entries?.contains("SLIPWAY_REGISTRY_MAX_TAGS") == true, "\(entries ?? "returned")")
            #expect(try registry.entries().filter { $0.path.contains("/referrers/") }.count == 10 + 3)
        }
    }
}
