import Foundation

/// A throwaway certificate authority and a server certificate it signed, made with the
/// `openssl` command line tool, for serving TLS on loopback.
///
/// The server certificate names `127.0.0.1` (an IP SAN) and `localhost` (a DNS SAN), so a
/// client that checks host names accepts it under either name once it trusts the CA.
/// Keys are ECDSA P-256: quick to make, and accepted by Go's TLS, OpenSSL and Python.
public struct TestCertificates: Sendable {
    /// The CA certificate in PEM form: what a client is told to trust.
    public let caCertificatePEM: String
    /// The file holding ``caCertificatePEM``.
    public let caCertificateFile: URL
    /// The server certificate (PEM), signed by the CA.
    public let serverCertificateFile: URL
    /// The server's private key (PEM, unencrypted).
    public let serverKeyFile: URL

    /// Generates a new CA and server certificate into `directory` (which must exist).
    ///
    /// Files written: `ca.pem`, `ca.key`, `server.pem`, `server.key`. Both certificates are
    /// valid for two days from now.
    /// - Throws: ``TestSupportError`` when `openssl` fails.
    public static func generate(in directory: URL, commonName: String = "Slipway Test CA") throws -> TestCertificates {
        let ca = directory.appendingPathComponent("ca.pem")
        let caKey = directory.appendingPathComponent("ca.key")
        let server = directory.appendingPathComponent("server.pem")
        let serverKey = directory.appendingPathComponent("server.key")
        let csr = directory.appendingPathComponent("server.csr")
        let extensions = directory.appendingPathComponent("server.ext")

        try runProcess(
            "openssl",
            [
                "req", "-x509", "-new", "-nodes",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-keyout", caKey.path, "-out", ca.path, "-days", "2", "-subj", "/CN=\(commonName)",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        ).checked()
        try runProcess(
            "openssl",
            [
                "req", "-new", "-nodes",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-keyout", serverKey.path, "-out", csr.path, "-subj", "/CN=127.0.0.1",
            ]
        ).checked()
        try Data(
            """
            subjectAltName = IP:127.0.0.1, DNS:localhost
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth

            """.utf8
        ).write(to: extensions)
        try runProcess(
            "openssl",
            [
                "x509", "-req", "-in", csr.path, "-CA", ca.path, "-CAkey", caKey.path,
                "-CAcreateserial", "-out", server.path, "-days", "2", "-extfile", extensions.path,
            ]
        ).checked()

        let pem = try String(contentsOf: ca, encoding: .utf8)
        return TestCertificates(
            caCertificatePEM: pem, caCertificateFile: ca,
            serverCertificateFile: server, serverKeyFile: serverKey
        )
    }
}
