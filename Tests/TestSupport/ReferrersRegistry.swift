import Foundation

/// A loopback front (`Tests/Fixtures/servers/referrers_registry.py`) that gives a real
/// ``TestRegistry`` the OCI 1.1 referrers API, which distribution 2.8 lacks.
///
/// Everything passes through to the registry, except that a manifest pushed with a `subject`
/// is checked (pushed by digest, an OCI manifest with `artifactType`, the empty config, a
/// subject and layers that exist), recorded and answered with `OCI-Subject`;
/// `GET /v2/<name>/referrers/<digest>` lists what was recorded; deleting a referrer unlists it.
public final class ReferrersRegistry: Sendable {
    /// One referrer the front recorded.
    public struct Referrer: Sendable, Decodable, Equatable {
        public let repository: String
        public let digest: String
        public let subject: String
        public let artifactType: String
        public let size: Int
        public let mediaType: String
    }

    /// One manifest with a subject the front refused, and why.
    public struct Refusal: Sendable, Decodable, Equatable {
        public let repository: String
        public let reason: String
    }

    private struct Record: Decodable {
        let referrers: [Referrer]
        let refused: [Refusal]
    }

    /// The port the front listens on.
    public let port: Int
    /// `127.0.0.1:PORT`, the registry part of an image reference through the front.
    public let host: String
    /// `http://127.0.0.1:PORT`.
    public let baseURL: URL

    private let recordFile: URL
    private let server: FixtureServer

    private init(server: FixtureServer) {
        self.port = server.port
        self.host = "127.0.0.1:\(server.port)"
        self.baseURL = URL(string: "http://127.0.0.1:\(server.port)")!
        self.recordFile = server.directory.appending("record.json")
        self.server = server
    }

    /// The referrers recorded and not deleted since.
    public func referrers() throws -> [Referrer] { try record().referrers }

    /// The manifests with a subject that were refused.
    public func refusals() throws -> [Refusal] { try record().refused }

    private func record() throws -> Record {
        try JSONDecoder().decode(Record.self, from: Data(contentsOf: recordFile))
    }

    /// Starts a front for the plain-HTTP registry at `upstream`. Prefer
    /// ``withReferrersRegistry(upstream:_:)``; whoever calls this must call ``stop()``.
    public static func start(upstream: URL) async throws -> ReferrersRegistry {
        guard upstream.scheme == "http" else {
            throw TestSupportError("ReferrersRegistry forwards to plain HTTP only; upstream was \(upstream)")
        }
        let server = try await FixtureServer.start("referrers_registry.py", prefix: "slipway-referrers") { directory in
            ["recordFile": directory.appending("record.json").path, "upstream": upstream.originText]
        }
        return ReferrersRegistry(server: server)
    }

    /// Stops the front and removes its files. Safe to call twice.
    public func stop() async { await server.stop() }
}

/// Runs `body` with a referrers front before `upstream` and stops it afterwards, also when
/// `body` throws.
public func withReferrersRegistry<R>(upstream: URL, _ body: (ReferrersRegistry) async throws -> R) async throws -> R {
    try await withStarted({ try await ReferrersRegistry.start(upstream: upstream) }, stop: { await $0.stop() }, body)
}
