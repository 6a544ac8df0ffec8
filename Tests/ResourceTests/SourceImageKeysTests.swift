import Foundation
import OCI
import Testing

@testable import Resource

/// How `source` reads registry-image's keys, without a registry.
@Suite("source: registry-image's keys, parsed")
struct SourceImageKeysTests {
    func source(_ json: String) throws -> Source {
        try Source(JSONValue.parse(Data(#"{"repository":"127.0.0.1:5000/team/app",\#(json)}"#.utf8)))
    }

    @Test(arguments: [
        (#""tag":1"#, "1"), (#""tag":20240501"#, "20240501"), (#""tag":1.5"#, "1.5"), (#""tag":"1""#, "1"),
    ])
    func aNumericTagIsItsText(json: String, tag: String) throws {
        guard case .tag(let parsed) = try source(json).mode else {
            Issue.record("not tag mode")
            return
        }
        #expect(parsed.rawValue == tag)
    }

    @Test func aNegativeNumberIsNotATag() {
        #expect(throws: InputError.self) { try source(#""tag":-1"#) }
    }

    @Test func platformDefaultsAreTheRunningMachines() throws {
        let host = Platform.host
        #expect(
            try source(#""platform":{"architecture":"arm64"}"#).platform == Platform(os: "linux", architecture: "arm64")
        )
        #expect(
            try source(#""platform":{"os":"linux"}"#).platform
                == Platform(os: "linux", architecture: host.architecture, variant: host.variant))
        #expect(
            try source(#""platform":{}"#).platform
                == Platform(os: host.os, architecture: host.architecture, variant: host.variant))
        #expect(
            try source(#""platform":{"architecture":"arm","variant":"v6"}"#).platform
                == Platform(os: "linux", architecture: "arm", variant: "v6"))
        #expect(try source("\"debug\":false").platform == nil)
    }

    @Test func tagRegexAndItsCompanions() throws {
        guard case .tagRegex(let selection) = try source(#""tag_regex":"^v[0-9]+$","created_at_sort":true"#).mode else {
            Issue.record("not regex mode")
            return
        }
        #expect(selection.createdAtSort)
        let matches = selection.pattern.matcher()
        #expect(matches("v12") && !matches("v12-rc") && !matches("x"))
        let patterns = try source(#""label_regex":"^org\\.","annotation_regex":"created""#).metadataPatterns
        #expect(patterns.labels?.pattern == #"^org\."# && patterns.annotations?.pattern == "created")
    }

    @Test func theMirrorIsReadWithItsOwnCredentials() throws {
        let mirror = try #require(
            try source(#""registry_mirror":{"host":"mirror.example:5000","username":"m","password":"p"}"#).mirror)
        #expect(mirror.host.rawValue == "mirror.example:5000")
        #expect(mirror.credentials == .basic(username: "m", password: "p"))
        #expect(throws: InputError.self) { try source(#""registry_mirror":{"host":"bad host"}"#) }
        #expect(throws: InputError.self) { try source(#""registry_mirror":{"username":"m","password":"p"}"#) }
    }

    @Test func contentTrustIsRefusedWithoutEchoingItsSecrets() {
        let error = #expect(throws: InputError.self) {
            try source(#""content_trust":{"repository_key":"KEY-9f2","repository_passphrase":"PASS-41c"}"#)
        }
        #expect(error?.description.contains("cosign") == true)
        #expect(error?.description.contains("KEY-9f2") == false && error?.description.contains("PASS-41c") == false)
    }

    @Test(arguments: [
        "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.123456789Z",
        "2024-05-01T12:00:00.123456789+02:00",
    ])
    func goTimestampsAreRead(text: String) throws {
        let date = try #require(RemoteImage.parseRFC3339(text))
        #expect(abs(date.timeIntervalSince1970 - 1_714_557_600) < 1)
    }
}
