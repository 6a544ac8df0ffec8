import Foundation

/// A registry that misbehaves without end (`bounds_registry.py`): endless or looping tag
/// pagination, a manifest or blob trickled a few bytes a second, or a Bearer realm on a
/// plain-HTTP listener at another loopback address. It records every request it receives,
/// with whether it carried `Authorization`.
public final class BoundsRegistry: Sendable {
    /// How it misbehaves.
    public struct Options: Sendable {
        /// `endless` or `loop`; nil serves one page `["latest"]`.
        public var tags: String?
        /// Tags per page for `tags`.
        public var pageSize: Int
        /// `endless` or `loop` referrers pages.
        public var referrers: String?
        /// `manifest` or `blob`.
        public var trickle: String?
        public var bytesPerSecond: Int
        /// The registry speaks https with a certificate of ``caCertificatePEM``'s CA and
        /// challenges for a token at `http://127.0.0.2:<port>/token`: an address the
        /// go-containerregistry rule does not call local.
        public var plainHTTPRealm: Bool

        /// Seconds the registry waits before each tag page.
        public var pageDelay: Double
        /// Answers every request without `Authorization` with a `Basic` challenge.
        public var basicChallenge = false

        public init(
            tags: String? = nil, referrers: String? = nil, pageSize: Int = 100, pageDelay: Double = 0,
            trickle: String? = nil,
            bytesPerSecond: Int = 2, plainHTTPRealm: Bool = false
        ) {
            self.pageDelay = pageDelay
            self.tags = tags
            self.referrers = referrers
            self.pageSize = pageSize
            self.trickle = trickle
            self.bytesPerSecond = bytesPerSecond
            self.plainHTTPRealm = plainHTTPRealm
        }
    }

    /// One request as the server logged it on arrival.
    public struct Entry: Sendable, Decodable, Equatable {
        /// `registry` or `realm`.
        public let listener: String
        public let method: String
        public let path: String
        public let authorization: Bool
    }

    /// `127.0.0.1:<port>`.
    public let host: String
    /// `127.0.0.2:<port>` of the plain-HTTP token realm, when there is one.
    public let realmHost: String?
    /// The CA to trust for the https registry, when it speaks https.
    public let caCertificatePEM: String?
    let logFile: URL
    private let server: FixtureServer

    private init(server: FixtureServer, realmHost: String?, caCertificatePEM: String?) {
        self.host = "127.0.0.1:\(server.port)"
        self.realmHost = realmHost
        self.caCertificatePEM = caCertificatePEM
        self.logFile = server.directory.appending("requests.jsonl")
        self.server = server
    }

    /// Everything recorded so far.
    public func entries() throws -> [Entry] { try readJSONLines(logFile, as: Entry.self) }

    public static func start(_ options: Options) async throws -> BoundsRegistry {
        var caPEM: String?
        let server = try await FixtureServer.start("bounds_registry.py", prefix: "slipway-bounds") { directory in
            var configuration: [String: Any] = [
                "logFile": emptyLog(in: directory).path, "pageSize": options.pageSize, "pageDelay": options.pageDelay,
                "basicChallenge": options.basicChallenge,
                "bytesPerSecond": options.bytesPerSecond,
            ]
            if let tags = options.tags { configuration["tags"] = tags }
            if let referrers = options.referrers { configuration["referrers"] = referrers }
            if let trickle = options.trickle { configuration["trickle"] = trickle }
            if options.plainHTTPRealm {
                let certificates = try TestCertificates.generate(in: directory.url)
                caPEM = certificates.caCertificatePEM
                configuration["certificateFile"] = certificates.serverCertificateFile.path
                configuration["keyFile"] = certificates.serverKeyFile.path
                configuration["realmHost"] = "127.0.0.2"
                configuration["realmPortFile"] = directory.appending("realm.port").path
            }
            return configuration
        }
        let realmPort = try? String(contentsOf: server.directory.appending("realm.port"), encoding: .utf8)
        return BoundsRegistry(server: server, realmHost: realmPort.map { "127.0.0.2:\($0)" }, caCertificatePEM: caPEM)
    }

    /// Stops the server and removes its files.
    public func stop() async { await server.stop() }
}

/// Runs `body` with a ``BoundsRegistry``, stopping it afterwards.
public func withBoundsRegistry<R>(_ options: BoundsRegistry.Options, _ body: (BoundsRegistry) async throws -> R)
    async throws -> R
{
    try await withStarted({ try await BoundsRegistry.start(options) }, stop: { await $0.stop() }, body)
}
