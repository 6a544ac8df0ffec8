import Testing

@testable import OCI

@Suite("RegistryHost")
struct RegistryHostTests {
    @Test(
        "accepts hosts",
        arguments: [
            ("docker.io", "docker.io"),
            ("ghcr.io", "ghcr.io"),
            ("localhost", "localhost"),
            ("localhost:5000", "localhost:5000"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("registry.example.com:443", "registry.example.com:443"),
            ("my-registry.internal", "my-registry.internal"),
            ("[::1]", "[::1]"),
            ("[::1]:5000", "[::1]:5000"),
            ("[2001:DB8::1]:5000", "[2001:db8::1]:5000"),
            ("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"),
            ("GHCR.IO", "ghcr.io"),
        ])
    func valid(_ text: String, _ expected: String) throws {
        let host = try RegistryHost(text)
        #expect(host.rawValue == expected)
        #expect(host.description == expected)
    }

    @Test(
        "rejects non-hosts",
        arguments: [
            "", ":5000", "host:", "host:0", "host:65536", "host:123456", "host:50a", "host:5000:1",
            "-host.com", "host-.com", "ho_st.com", "host..com", ".host", "host.", "a b",
            "[::1", "[]:5000", "[::1]5000", "[gg::1]", "[1:2]", "::1", "https://ghcr.io", "ghcr.io/org",
            String(repeating: "a", count: 64) + ".com",
        ])
    func invalid(_ text: String) {
        #expect(throws: RegistryHost.ValidationError(value: text)) { try RegistryHost(text) }
    }

    @Test func errorNamesTheValue() {
        #expect(
            RegistryHost.ValidationError(value: "host:0").description.hasPrefix(
                #"invalid registry host "host:0": expected host or host:port"#))
    }

    @Test(
        "Docker Hub under any name", arguments: ["docker.io", "index.docker.io", "registry-1.docker.io", "Docker.IO"])
    func dockerHub(_ text: String) throws {
        let host = try RegistryHost(text)
        #expect(host.isDockerHub)
        #expect(host.apiHost == "registry-1.docker.io")
    }

    @Test func dockerHubConstant() {
        #expect(RegistryHost.dockerHub.rawValue == "docker.io")
        #expect(RegistryHost.dockerHub.isDockerHub)
    }

    @Test func otherRegistries() throws {
        let host = try RegistryHost("127.0.0.1:5000")
        #expect(!host.isDockerHub)
        #expect(host.apiHost == "127.0.0.1:5000")
        #expect(try !RegistryHost("hub.docker.io.example.com").isDockerHub)
    }
}
