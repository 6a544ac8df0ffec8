import Errors

/// A registry's address: `host` or `host:port`, where host is a DNS name, an IPv4 address
/// or a bracketed IPv6 address, such as `ghcr.io`, `127.0.0.1:5000` or `[::1]:5000`.
///
/// Docker Hub is written `docker.io` in image references but served from
/// `registry-1.docker.io`, and credentials for it are stored under a legacy URL; this type
/// knows those spellings so no other module has to.
///
/// See the [distribution reference grammar](https://github.com/distribution/reference/blob/v0.6.0/reference.go).
public struct RegistryHost: Hashable, Sendable, CustomStringConvertible {
    /// Why a string is not a registry host.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<RegistryHost.ValidationError>
        public var kind: Kind { .invalidHost }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted form.
        public var message: String {
            "invalid registry host \(quoted(value)): expected host or host:port, where host is a DNS name, an IPv4 address or [IPv6], and port is 1-65535"
        }
    }

    /// The host and optional port, lowercased, such as `docker.io` or `127.0.0.1:5000`.
    public let rawValue: String

    /// Parses `host[:port]`. Host names are case-insensitive, so the value is lowercased
    /// once here and compares equal however it was typed.
    ///
    /// - Throws: ``RegistryHost/ValidationError`` naming `rawValue`.
    public init(_ rawValue: String) throws(ValidationError) {
        let lowered = rawValue.lowercased()
        let host: Substring
        let port: Substring?
        if lowered.hasPrefix("[") {
            guard let close = lowered.firstIndex(of: "]") else { throw ValidationError(value: rawValue) }
            host = lowered[lowered.index(after: lowered.startIndex)..<close]
            let rest = lowered[lowered.index(after: close)...]
            if rest.isEmpty {
                port = nil
            } else if rest.first == ":" {
                port = rest.dropFirst()
            } else {
                throw ValidationError(value: rawValue)
            }
            guard isIPv6(host) else { throw ValidationError(value: rawValue) }
        } else {
            let parts = lowered.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw ValidationError(value: rawValue) }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
            guard isDNSNameOrIPv4(host) else { throw ValidationError(value: rawValue) }
        }
        if let port {
            guard !port.isEmpty, port.utf8.count <= 5, port.utf8.allSatisfy(isDigit),
                let number = Int(port), (1...65535).contains(number)
            else { throw ValidationError(value: rawValue) }
        }
        self.rawValue = lowered
    }

    private init(known rawValue: String) {
        self.rawValue = rawValue
    }

    /// Docker Hub, as image references name it.
    public static let dockerHub = RegistryHost(known: "docker.io")

    /// The names that all mean Docker Hub.
    private static let dockerHubAliases: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io"]

    /// Whether this is Docker Hub under any of its names.
    public var isDockerHub: Bool {
        RegistryHost.dockerHubAliases.contains(rawValue)
    }

    /// The host to send API requests to: `registry-1.docker.io` for Docker Hub, since
    /// `docker.io` itself serves no registry API, else ``rawValue``.
    public var apiHost: String {
        isDockerHub ? "registry-1.docker.io" : rawValue
    }

    /// The same as ``rawValue``.
    public var description: String { rawValue }
}

/// Dot-separated labels of letters, digits and inner hyphens (RFC 1123); IPv4 addresses fit
/// the same grammar.
private func isDNSNameOrIPv4(_ host: Substring) -> Bool {
    guard !host.isEmpty, host.utf8.count <= 253 else { return false }
    return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        let bytes = label.utf8
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
        return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
            && bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }
}

/// The characters of an IPv6 address, including an embedded IPv4 tail; at least two colons.
/// Finer checks are left to the resolver, which will refuse a malformed address anyway.
private func isIPv6(_ host: Substring) -> Bool {
    let colons = host.utf8.filter { $0 == UInt8(ascii: ":") }.count
    guard (2...7).contains(colons), host.utf8.count <= 45 else { return false }
    return host.utf8.allSatisfy { isLowercaseHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
}

extension ErrorKind where Owner == RegistryHost.ValidationError {
    /// The text is not a registry host.
    public static var invalidHost: Self { Self("invalid host") }
}
