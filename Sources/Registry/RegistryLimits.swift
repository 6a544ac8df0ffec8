import Foundation

/// Bounds on what one registry's answers may cost a command, so that a registry that never
/// stops answering (endless tag pages, a manifest sent two bytes a second) ends the command
/// in one error line instead of exhausting memory or hanging it.
///
/// Each value can be changed by an environment variable of the resource's container (or of
/// `build-task`), documented in docs/reference.md ("Limits on a registry's answers").
public struct RegistryLimits: Sendable, Hashable {
    /// Seconds one request for a small body (a manifest, a tag page, a token, a referrers
    /// list, any HEAD) may take in all, from connecting to its last byte; not retried once
    /// exceeded. Blobs have no total limit (they can be gigabytes): the transport's
    /// low-speed bound ends them instead. `SLIPWAY_REGISTRY_REQUEST_TIMEOUT`, default 120.
    public var requestTimeout: Int
    /// Pages of one tag listing (or referrers listing). `SLIPWAY_REGISTRY_MAX_TAG_PAGES`, default 10,000.
    public var maxTagPages: Int
    /// Tags in one listing (or referrers). `SLIPWAY_REGISTRY_MAX_TAGS`, default 1,000,000.
    public var maxTags: Int
    /// Bytes of all pages of one tag (or referrers) listing. `SLIPWAY_REGISTRY_MAX_TAG_LIST_BYTES`, default 256 MiB.
    public var maxTagListBytes: Int
    /// Seconds one tag (or referrers) listing may take in all, every page included: a phase
    /// a registry could otherwise stretch by answering each page just inside the request
    /// deadline. `SLIPWAY_REGISTRY_LISTING_TIMEOUT`, default 900.
    public var listingTimeout: Int

    public init(
        requestTimeout: Int = 120, maxTagPages: Int = 10_000, maxTags: Int = 1_000_000,
        maxTagListBytes: Int = 256 << 20,
        listingTimeout: Int = 900
    ) {
        self.listingTimeout = listingTimeout
        self.requestTimeout = requestTimeout
        self.maxTagPages = maxTagPages
        self.maxTags = maxTags
        self.maxTagListBytes = maxTagListBytes
    }

    /// The defaults.
    public static let standard = RegistryLimits()

    /// The environment variable of each limit, for messages and documentation.
    public enum Variable {
        public static let requestTimeout = "SLIPWAY_REGISTRY_REQUEST_TIMEOUT"
        public static let maxTagPages = "SLIPWAY_REGISTRY_MAX_TAG_PAGES"
        public static let maxTags = "SLIPWAY_REGISTRY_MAX_TAGS"
        public static let maxTagListBytes = "SLIPWAY_REGISTRY_MAX_TAG_LIST_BYTES"
        public static let listingTimeout = "SLIPWAY_REGISTRY_LISTING_TIMEOUT"
    }

    /// The defaults, with each variable that is set replacing its value.
    /// - Throws: `RegistryError` (`.configuration`) naming a variable that is not a whole number above 0.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(RegistryError) -> RegistryLimits
    {
        var limits = RegistryLimits.standard
        limits.requestTimeout =
            try positive(environment, Variable.requestTimeout, unit: "seconds") ?? limits.requestTimeout
        limits.maxTagPages = try positive(environment, Variable.maxTagPages, unit: "pages") ?? limits.maxTagPages
        limits.maxTags = try positive(environment, Variable.maxTags, unit: "tags") ?? limits.maxTags
        limits.maxTagListBytes =
            try positive(environment, Variable.maxTagListBytes, unit: "bytes") ?? limits.maxTagListBytes
        limits.listingTimeout =
            try positive(environment, Variable.listingTimeout, unit: "seconds") ?? limits.listingTimeout
        return limits
    }

    /// The monotonic instant a listing that starts now must end by.
    func listingDeadline() -> ContinuousClock.Instant {
        .now + .seconds(listingTimeout)
    }

    /// Throws when `deadline` (from ``listingDeadline()``) has passed, before the next page is asked.
    func checkListing(_ deadline: ContinuousClock.Instant, operation: String) throws(RegistryError) {
        guard ContinuousClock.now < deadline else {
            throw RegistryError(
                .limit, operation: operation,
                hint:
                    "the listing took more than \(listingTimeout) s in all; \(Variable.listingTimeout) raises the deadline"
            )
        }
    }

    static func positive(_ environment: [String: String], _ name: String, unit: String) throws(RegistryError) -> Int? {
        guard let text = environment[name] else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else {
            throw RegistryError(
                .configuration, operation: "read \(name)",
                hint:
                    "\"\(String(text.prefix(40)))\" is not a whole number of \(unit) above 0; unset it for the default")
        }
        return value
    }
}
