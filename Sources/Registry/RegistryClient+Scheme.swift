import OCI

extension RegistryHost {
    /// Whether Slipway, like registry-image, may speak plain HTTP to this registry without
    /// `insecure`: go-containerregistry's `name.Registry.Scheme()` rule, matched exactly
    /// (https://github.com/google/go-containerregistry/blob/main/pkg/name/registry.go).
    ///
    /// The host looks local when it is an RFC 1918 IPv4 address (`10.0.0.0/8`,
    /// `172.16.0.0/12`, `192.168.0.0/16`), starts with `localhost:` (a port is needed, as
    /// there), ends in `.local` or `.localhost` (with an optional port), or contains
    /// `127.0.0.1` or `::1`. Such a registry is still tried with verified https first; plain
    /// HTTP is used only when that fails, as go-containerregistry's ping does.
    public var mayUsePlainHTTP: Bool {
        let name = rawValue
        if Self.isRFC1918(String(name.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])) {
            return true
        }
        if name.hasPrefix("localhost:") { return true }
        if Self.endsInLocal(name) { return true }
        return name.contains("127.0.0.1") || name.contains("::1")
    }

    /// `.*\.local(?:host)?(?::\d{1,5})?$`
    private static func endsInLocal(_ name: String) -> Bool {
        var host = Substring(name)
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            if (1...5).contains(port.count), port.allSatisfy({ $0.isASCII && $0.isNumber }) { host = host[..<colon] }
        }
        return host.hasSuffix(".local") || host.hasSuffix(".localhost")
    }

    private static func isRFC1918(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        var octets: [Int] = []
        for part in parts {
            // Go's net.ParseIP: decimal, at most three digits, no leading zero.
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || part.first != "0", let value = Int(part), value <= 255
            else { return false }
            octets.append(value)
        }
        return octets[0] == 10 || (octets[0] == 172 && (16...31).contains(octets[1]))
            || (octets[0] == 192 && octets[1] == 168)
    }
}
