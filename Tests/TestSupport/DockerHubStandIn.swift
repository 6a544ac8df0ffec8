import Foundation

/// Docker Hub for a process run with `HTTPS_PROXY` pointing here: a CONNECT proxy that
/// answers tunnels to `registry-1.docker.io:443` with TLS (a certificate for that name from
/// its own CA, ``caCertificatePEM``) and forwards what arrives to a real registry on
/// loopback. It records every tunnel and request (`docker_hub_stand_in.py`).
public final class DockerHubStandIn: Sendable {
    /// One line of the record: a tunnel asked for, or a request inside one.
    public struct Entry: Sendable, Decodable, Equatable {
        public let connect: String?
        public let method: String?
        public let path: String?
        /// The basic-auth user name sent, `bearer`, or nil for none.
        public let user: String?
    }

    public let port: Int
    /// The CA that signed the certificate for registry-1.docker.io.
    public let caCertificatePEM: String
    let logFile: URL
    private let server: FixtureServer

    private init(server: FixtureServer) throws {
        self.port = server.port
        self.caCertificatePEM = try String(contentsOf: server.directory.appending("ca.pem"), encoding: .utf8)
        self.logFile = server.directory.appending("requests.jsonl")
        self.server = server
    }

    /// The proxy URL for `HTTPS_PROXY`.
    public var proxyURL: String { "http://127.0.0.1:\(port)" }

    /// Everything recorded so far.
    public func entries() throws -> [Entry] { try readJSONLines(logFile, as: Entry.self) }

    /// Starts a stand-in forwarding to `upstream`, a plain-HTTP registry base URL.
    public static func start(upstream: URL) async throws -> DockerHubStandIn {
        let server = try await FixtureServer.start("docker_hub_stand_in.py", prefix: "slipway-hub") { directory in
            let ca = directory.appending("ca.pem")
            let caKey = directory.appending("ca.key")
            let cert = directory.appending("hub.pem")
            let key = directory.appending("hub.key")
            let csr = directory.appending("hub.csr")
            let ext = directory.appending("hub.ext")
            try runProcess(
                "openssl",
                [
                    "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-keyout", caKey.path, "-out", ca.path, "-days", "2", "-subj", "/CN=Slipway Hub Stand-in CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ]
            ).checked()
            try runProcess(
                "openssl",
                [
                    "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-keyout", key.path, "-out", csr.path, "-subj", "/CN=registry-1.docker.io",
                ]
            ).checked()
            try Data(
                "subjectAltName = DNS:registry-1.docker.io\nbasicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\n"
                    .utf8
            ).write(to: ext)
            try runProcess(
                "openssl",
                [
                    "x509", "-req", "-in", csr.path, "-CA", ca.path, "-CAkey", caKey.path, "-CAcreateserial",
                    "-out", cert.path, "-days", "2", "-extfile", ext.path,
                ]
            ).checked()
            return [
                "logFile": emptyLog(in: directory).path, "cert": cert.path, "key": key.path,
                "upstream": upstream.originText,
            ]
        }
        let standIn: DockerHubStandIn
        do { standIn = try DockerHubStandIn(server: server) } catch {
            await server.stop()
            throw error
        }
        return standIn
    }

    /// Stops the proxy and removes its files.
    public func stop() async { await server.stop() }
}

/// Runs `body` with a Docker Hub stand-in in front of `upstream`, stopping it afterwards.
public func withDockerHubStandIn<R>(upstream: URL, _ body: (DockerHubStandIn) async throws -> R) async throws -> R {
    try await withStarted({ try await DockerHubStandIn.start(upstream: upstream) }, stop: { await $0.stop() }, body)
}
