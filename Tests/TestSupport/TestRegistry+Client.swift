import Foundation
import HTTP
import OCI
import Registry

/// Records every wait a retry policy asks for, instead of sleeping.
public final class SleepRecorder: Sendable {
    private let lock = NSLock()
    nonisolated(unsafe) private var recorded: [Duration] = []

    public init() {}

    public var delays: [Duration] { lock.withLock { recorded } }

    /// A policy with `attempts` attempts that records instead of sleeping.
    public func policy(attempts: Int = 6) -> RetryPolicy {
        RetryPolicy(maxAttempts: attempts, sleep: { [self] duration in lock.withLock { recorded.append(duration) } })
    }
}

extension TestRegistry {
    /// The registry's host as a validated value.
    public var registryHost: RegistryHost { get throws { try RegistryHost(host) } }

    /// A client for this registry with its own credentials and CA, never a Docker config.
    public func client(
        credentials: Credentials? = nil, useOwnCredentials: Bool = true, trustCA: Bool = true,
        insecure: Bool = false, retry: RetryPolicy = .standard
    ) throws -> RegistryClient {
        var chosen = credentials
        if chosen == nil, useOwnCredentials, let username, let password {
            chosen = .basic(username: username, password: password)
        }
        return try RegistryClient(
            host: registryHost, credentials: chosen, credentialLookup: nil,
            insecure: insecure || scheme == "http", caCertificates: trustCA ? [caCertificatePEM].compactMap { $0 } : [],
            retry: retry)
    }
}
