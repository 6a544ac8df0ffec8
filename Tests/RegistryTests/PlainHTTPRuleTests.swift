import OCI
import Registry
import Testing

/// go-containerregistry's `name.Registry.Scheme()`, which registry-image relies on to
/// reach local registries without `insecure`.
@Suite("which registries may be spoken to in plain HTTP")
struct PlainHTTPRuleTests {
    @Test(arguments: [
        ("localhost:5000", true), ("localhost", false), ("127.0.0.1:5000", true), ("127.0.0.1", true),
        ("[::1]:5000", true), ("10.0.0.1:5000", true), ("10.255.1.2", true), ("172.16.0.1", true),
        ("172.31.255.255:443", true),
        ("172.15.0.1", false), ("172.32.0.1", false), ("192.168.1.10:5000", true), ("192.169.1.10", false),
        ("registry.local", true), ("registry.local:5000", true), ("box.localhost:5000", true), ("local", false),
        ("notlocal.com", false), ("ghcr.io", false), ("docker.io", false), ("11.0.0.1", false),
        ("127.0.0.2:5000", false),
    ])
    func rule(host: String, plain: Bool) throws {
        #expect(try RegistryHost(host).mayUsePlainHTTP == plain, "\(host)")
    }
}
