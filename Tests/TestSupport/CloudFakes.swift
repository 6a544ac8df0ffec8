import Foundation

/// One request an AWS or Azure fake answered, as it logged it (`Tests/Fixtures/servers/aws_fake.py`,
/// `azure_fake.py`). Fields a kind of request does not have are nil.
public struct CloudFakeRequest: Sendable, Decodable, Equatable {
    /// `imds-token`, `imds-list`, `imds-credentials`, `sts`, `ecr` (AWS); `imds`, `exchange`, `proxy` (Azure).
    public let kind: String
    public let status: Int
    /// AWS: the access key that signed the request.
    public let accessKeyId: String?
    /// AWS: `valid`, or why the recomputed signature did not match (`SignatureDoesNotMatch`, `UnrecognizedClient`).
    public let signature: String?
    /// AWS: whether `X-Amz-Security-Token` was sent.
    public let sessionToken: Bool?
    /// AWS STS: the role asked for.
    public let roleArn: String?
    /// AWS: the temporary access key this request was given.
    public let issued: String?
    /// AWS ECR: the `registryIds` sent.
    public let registryIds: [String]?
    /// AWS IMDS: `valid`, `missing` or `invalid` session token.
    public let imdsToken: String?
    /// Azure IMDS: the `Metadata` header, `resource` and `client_id`.
    public let metadataHeader: String?
    public let resource: String?
    public let clientId: String?
    /// Azure exchange: grant type, service, tenant, and whether the access token was the one issued.
    public let grantType: String?
    public let service: String?
    public let tenant: String?
    public let accessTokenValid: Bool?
    /// Azure proxy: the method, path and authorization scheme passed to the registry.
    public let method: String?
    public let path: String?
    public let authorization: String?
}

/// A fixture server from `Tests/Fixtures/servers` on a free 127.0.0.1 port, configured by one JSON file.
public final class CloudFake: Sendable {
    public let port: Int
    /// `127.0.0.1:PORT`.
    public let host: String
    /// `http://127.0.0.1:PORT`.
    public let baseURL: URL
    public let logFile: URL
    private let server: FixtureServer

    private init(server: FixtureServer, logFile: URL) {
        self.port = server.port
        self.host = "127.0.0.1:\(server.port)"
        self.baseURL = URL(string: "http://127.0.0.1:\(server.port)")!
        self.logFile = logFile
        self.server = server
    }

    /// Every request answered so far, oldest first.
    public func requests() throws -> [CloudFakeRequest] { try readJSONLines(logFile, as: CloudFakeRequest.self) }

    /// Starts `script` with `configuration` (plus `readyFile` and `logFile`); the caller must ``stop()`` it.
    public static func start(_ script: String, configuration: [String: Any]) async throws -> CloudFake {
        let server = try await FixtureServer.start(script, prefix: "slipway-cloud-fake") { directory in
            configuration.merging(["logFile": emptyLog(in: directory).path]) { $1 }
        }
        return CloudFake(server: server, logFile: server.directory.appending("requests.jsonl"))
    }

    /// Stops the server and removes its files. Safe to call twice.
    public func stop() async { await server.stop() }
}

/// Runs `body` with a fake AWS (STS, ECR, IMDSv2; `aws_fake.py`) and stops it afterwards.
/// - Parameters:
///   - keys: long-term access keys and their secrets.
///   - roles: role ARNs anyone may assume.
///   - instanceRole: the EC2 instance's role name, or nil for an instance without one.
///   - ecrPassword: the password in every ECR token (user `AWS`).
public func withAWSFake<R>(
    region: String = "us-east-1",
    keys: [String: String],
    roles: [String] = [],
    instanceRole: String? = nil,
    ecrPassword: String,
    proxyEndpoint: String = "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
    _ body: (CloudFake) async throws -> R
) async throws -> R {
    try await withStarted(
        {
            try await CloudFake.start(
                "aws_fake.py",
                configuration: [
                    "region": region, "keys": keys, "roles": roles, "instanceRole": instanceRole ?? NSNull(),
                    "ecrPassword": ecrPassword, "proxyEndpoint": proxyEndpoint,
                ])
        }, stop: { await $0.stop() }, body)
}

/// Runs `body` with a fake Azure IMDS and ACR exchange (`azure_fake.py`) in front of `upstream`
/// (a plain-HTTP registry), and stops it afterwards.
public func withAzureFake<R>(
    upstream: URL,
    accessToken: String,
    refreshToken: String,
    resource: String = "https://management.azure.com/",
    clientID: String? = nil,
    tenant: String = "common",
    _ body: (CloudFake) async throws -> R
) async throws -> R {
    try await withStarted(
        {
            try await CloudFake.start(
                "azure_fake.py",
                configuration: [
                    "upstream": upstream.originText,
                    "accessToken": accessToken, "refreshToken": refreshToken, "resource": resource,
                    "clientId": clientID ?? NSNull(), "tenant": tenant,
                ])
        }, stop: { await $0.stop() }, body)
}
