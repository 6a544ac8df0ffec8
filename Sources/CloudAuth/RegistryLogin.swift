import Foundation

/// What a cloud login yields: the user name and password a registry accepts, and the
/// registry itself when the service names it.
public struct RegistryLogin: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    public var password: String
    /// The registry's host (`host[:port]`) the service answered with: ECR's `proxyEndpoint`
    /// without its scheme. Nil when the service names none.
    public var registry: String?

    public init(username: String, password: String, registry: String? = nil) {
        self.username = username
        self.password = password
        self.registry = registry
    }

    public var description: String { "user \(username)" }
}
