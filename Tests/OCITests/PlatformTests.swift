import Foundation
import Testing

@testable import OCI

@Suite("Platform")
struct PlatformTests {
    @Test(
        "parses os/arch[/variant]",
        arguments: [
            ("linux/amd64", "linux", "amd64", nil),
            ("linux/arm64/v8", "linux", "arm64", "v8"),
            ("linux/arm/v7", "linux", "arm", "v7"),
            ("windows/amd64", "windows", "amd64", nil),
            ("Linux/AMD64", "linux", "amd64", nil),
            ("linux/ppc64le", "linux", "ppc64le", nil),
        ] as [(String, String, String, String?)])
    func parse(_ text: String, os: String, architecture: String, variant: String?) throws {
        let platform = try Platform(text)
        #expect(platform == Platform(os: os, architecture: architecture, variant: variant))
        #expect(platform.description == text.lowercased())
    }

    @Test(
        "rejects malformed platforms",
        arguments: [
            "", "linux", "linux/", "/amd64", "linux//v8", "linux/arm64/v8/extra", "linux amd64", "linux/amd 64",
            "linux/arm64/",
        ])
    func invalid(_ text: String) {
        #expect(throws: Platform.ValidationError(value: text)) { try Platform(text) }
    }

    @Test func errorNamesTheValue() {
        #expect(
            Platform.ValidationError(value: "linux").description
                == #"invalid platform "linux": expected os/architecture[/variant], such as linux/amd64 or linux/arm64/v8"#
        )
    }

    @Test(
        "matches",
        arguments: [
            // (candidate, wanted, matches)
            ("linux/amd64", "linux/amd64", true),
            ("linux/x86_64", "linux/amd64", true),
            ("linux/amd64", "linux/x86_64", true),
            ("linux/amd64/v1", "linux/amd64", true),
            ("linux/amd64/v3", "linux/amd64", true),
            ("linux/amd64", "linux/amd64/v3", false),
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/aarch64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/aarch64", true),
            ("linux/arm64/8", "linux/arm64/v8", true),
            ("linux/arm64/v9", "linux/arm64/v8", false),
            ("linux/arm", "linux/arm/v7", true),
            ("linux/armhf", "linux/arm/v7", true),
            ("linux/arm/v6", "linux/arm/v7", false),
            ("linux/arm/v6", "linux/arm", true),
            ("linux/armel", "linux/arm/v6", true),
            ("linux/i686", "linux/386", true),
            ("linux/amd64", "linux/arm64", false),
            ("windows/amd64", "linux/amd64", false),
            ("unknown/unknown", "linux/amd64", false),
            ("darwin/arm64", "macos/arm64", true),
        ])
    func matching(_ candidate: String, _ wanted: String, _ expected: Bool) throws {
        #expect(try Platform(candidate).matches(Platform(wanted)) == expected)
    }

    @Test func hostIsLinuxInOCISpelling() {
        let host = Platform.host
        #expect(host.os == "linux")
        #expect(["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"].contains(host.architecture))
        #expect(host.matches(host))
    }

    @Test func codableWithDottedKeys() throws {
        var platform = Platform(os: "windows", architecture: "amd64")
        platform.osVersion = "10.0.20348.2461"
        platform.osFeatures = ["win32k"]
        let json = String(decoding: try CanonicalJSON.encode(platform), as: UTF8.self)
        #expect(
            json == #"{"architecture":"amd64","os":"windows","os.features":["win32k"],"os.version":"10.0.20348.2461"}"#)
        #expect(try JSONDecoder().decode(Platform.self, from: Data(json.utf8)) == platform)
    }
}
