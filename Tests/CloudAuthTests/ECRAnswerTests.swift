import Testing

@testable import CloudAuth

/// What of ECR's answer Slipway takes as the registry a bare repository lives in: a host and
/// port only, so an answer cannot send the registry credentials to a path, a user or a URL.
@Suite("ECR's proxyEndpoint, as the registry of a bare repository")
struct ECRAnswerTests {
    @Test(arguments: [
        ("https://123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        (
            "https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        ),
        ("https://127.0.0.1:5000", "127.0.0.1:5000"),
    ])
    func theHostIsTakenWithoutItsScheme(proxyEndpoint: String, host: String) throws {
        #expect(try ECRLogin.registryHost(proxyEndpoint: proxyEndpoint, operation: "test") == host)
    }

    @Test(arguments: [
        "", "https://", "https://evil.example/steal", "https://user@evil.example", "https://evil.example?x=1",
        "https://-dash", "https://:443",
    ])
    func anythingButAHostIsRefused(proxyEndpoint: String) {
        #expect(throws: CloudAuthError.self) {
            try ECRLogin.registryHost(proxyEndpoint: proxyEndpoint, operation: "test")
        }
    }
}
