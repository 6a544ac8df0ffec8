import Foundation

/// What a cloud login yields: the user name and password a registry accepts.
public struct RegistryLogin: Sendable, Hashable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "user \(username)" }
}
