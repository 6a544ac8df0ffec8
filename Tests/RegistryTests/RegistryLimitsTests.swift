import Foundation
import HTTP
@testable import Registry
import Testing

@Suite("Registry limits and where credentials go")
struct RegistryLimitsTests {
    @Test func limitsComeFromTheEnvironmentOrTheDefaults() throws {
        #expect(try RegistryLimits.fromEnvironment([:]) == .standard)
        let limits = try RegistryLimits.fromEnvironment([
            "SLIPWAY_REGISTRY_REQUEST_TIMEOUT": "3", "SLIPWAY_REGISTRY_MAX_TAG_PAGES": "7",
            "SLIPWAY_REGISTRY_MAX_TAGS": "9", "SLIPWAY_REGISTRY_MAX_TAG_LIST_BYTES": "1000",
        ])
        #expect(limits == RegistryLimits(requestTimeout: 3, maxTagPages: 7, maxTags: 9, maxTagListBytes: 1000))
        let timeouts = try CurlTransport.Timeouts.fromEnvironment(["SLIPWAY_HTTP_LOW_SPEED_LIMIT": "10", "SLIPWAY_HTTP_LOW_SPEED_TIME": "2"])
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
        #expect(throws: HTTPError.self) { try CurlTransport.Timeouts.fromEnvironment(["SLIPWAY_HTTP_LOW_SPEED_TIME": value]) }
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
