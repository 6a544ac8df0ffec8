import Foundation
import ImageLayout
import OCI
import Registry
import TestSupport

/// What the compatibility probes run against: a real registry on loopback holding a small
/// image under a few tags, an OCI layout to put, a build context, and the built binaries.
struct CompatibilityWorld: Sendable {
    let registry: TestRegistry
    let directory: URL
    /// `<registry>/compat/app`, holding `1.0.0`, `1.1.0-rc.1`, `1.0.0-alpine` and `latest`.
    let repository: String
    /// An OCI layout whose image `latest` a put pushes.
    let layout: URL
    /// A context whose Dockerfile executes nothing (assembled without privileges): stages `base` and `final`.
    let context: URL
    /// AWS (STS, ECR, IMDSv2) and Azure (managed identity, the ACR exchange in front of
    /// `registry`) as loopback fakes that check every signature and token they receive.
    let aws: CloudFake
    let azure: CloudFake

    static let awsKey = (id: "AKIDSLIPWAYCOMPAT001", secret: "compat/secret+key")
    static let awsRoles = [
        "arn:aws:iam::123456789012:role/compat-first", "arn:aws:iam::210987654321:role/compat-second",
    ]
    static let azureTenant = "66666666-7777-8888-9999-000000000000"
    static let azureClient = "11111111-2222-3333-4444-555555555555"

    static let imageLabels = ["org.opencontainers.image.version": "1.0.0", "com.example.team": "compat"]

    /// Runs `body` with a world: the registry, the cloud fakes and the fixtures in `directory`.
    static func with<R>(_ body: (CompatibilityWorld) throws -> R) async throws -> R {
        try await withTestRegistry(.open) { registry in
            try await withAWSFake(keys: [awsKey.id: awsKey.secret], roles: awsRoles, ecrPassword: "compat-ecr-password")
            { aws in
                try await withAzureFake(
                    upstream: registry.baseURL, accessToken: "compat-entra-token", refreshToken: "compat-refresh-token",
                    clientID: nil, tenant: azureTenant
                ) { azure in
                    try withTemporaryDirectory { directory in
                        try body(try make(registry, aws: aws, azure: azure, in: directory.url))
                    }
                }
            }
        }
    }

    static func make(_ registry: TestRegistry, aws: CloudFake, azure: CloudFake, in directory: URL) throws
        -> CompatibilityWorld
    {
        let layout = directory.appendingPathComponent("layout")
        let image = try OCILayout.create(at: layout)
        try ImageFixture.image(in: image, name: "latest", layerCount: 1, seed: "compat", labels: imageLabels)
        let repository = "\(registry.host)/compat/app"
        for tag in ["1.0.0", "1.1.0-rc.1", "1.0.0-alpine", "latest"] {
            try runProcess(
                "skopeo",
                [
                    "copy", "--quiet", "--dest-tls-verify=false", "oci:\(layout.path):latest",
                    "docker://\(repository):\(tag)",
                ]
            ).checked()
        }
        let context = directory.appendingPathComponent("context")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try Data(
            "FROM scratch AS base\nCOPY hello /base-hello\nFROM scratch AS final\nARG GREETING=hello\nLABEL greeting=$GREETING\nCOPY hello /hello\n"
                .utf8
        )
        .write(to: context.appendingPathComponent("Dockerfile"))
        try Data("hello\n".utf8).write(to: context.appendingPathComponent("hello"))
        return CompatibilityWorld(
            registry: registry, directory: directory, repository: repository, layout: layout, context: context,
            aws: aws, azure: azure)
    }

    /// A directory of its own for one probe.
    func scratch(_ name: String) throws -> URL {
        let url = directory.appendingPathComponent(
            "probe-\(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The environment a resource container has: little more than PATH and HOME.
    var resourceEnvironment: [String: String] { ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory.path] }

    /// Runs a resource command (`check`, `in`, `out`) with `input` on stdin.
    func resource(_ command: String, _ input: String, arguments: [String] = [], environment: [String: String] = [:])
        throws -> ProcessResult
    {
        try runProcess(
            try builtProduct(command).path, arguments, stdin: Data(input.utf8),
            environment: resourceEnvironment.merging(environment) { $1 })
    }

    /// `{"repository": ..., <extra>}`.
    func source(_ extra: String, repository: String? = nil) -> String {
        let base = #""repository":"\#(repository ?? self.repository)""#
        return extra.isEmpty ? "{\(base)}" : "{\(base),\(extra)}"
    }

    func check(_ extra: String) throws -> ProcessResult {
        try resource("check", #"{"source":\#(source(extra))}"#)
    }

    /// `check` with ECR keys (and `extra`), the AWS endpoints on the fake; `repository`
    /// replaces the registry's (a bare one makes Slipway derive the ECR host).
    func checkThroughECR(_ extra: String, repository: String? = nil) throws -> ProcessResult {
        let keys =
            #""aws_region":"us-east-1","aws_access_key_id":"\#(Self.awsKey.id)","aws_secret_access_key":"\#(Self.awsKey.secret)""#
        return try resource(
            "check", #"{"source":\#(source(extra.isEmpty ? keys : keys + "," + extra, repository: repository))}"#,
            environment: ["AWS_ENDPOINT_URL": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true"])
    }

    /// `check` through the Azure fake's exchange with `azure_acr` (and `extra`).
    func checkThroughACR(_ extra: String) throws -> ProcessResult {
        let keys = #""azure_acr":true,"azure_tenant_id":"\#(Self.azureTenant)""#
        let acrSource = source(extra.isEmpty ? keys : keys + "," + extra, repository: azure.host + "/compat/app")
        return try resource(
            "check", #"{"source":\#(acrSource)}"#,
            environment: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": azure.baseURL.absoluteString])
    }

    /// `in` of `1.0.0` into a fresh directory.
    func get(_ extra: String, params: String) throws -> ProcessResult {
        let digest = try checkedDigest("1.0.0")
        let input =
            #"{"source":\#(source(extra)),"version":{"tag":"1.0.0","digest":"\#(digest)"},"params":{\#(params)}}"#
        return try resource("in", input, arguments: [try scratch("in").path])
    }

    /// `out` of the layout's image to a fresh repository, from a build directory holding it as `image`;
    /// `files` (relative path → content) are written beside it.
    func put(_ extra: String, params: String, files: [String: String] = ["tags": "extra another\n"]) throws
        -> ProcessResult
    {
        let build = try scratch("out")
        try FileManager.default.copyItem(at: layout, to: build.appendingPathComponent("image"))
        for (path, content) in files { try Data(content.utf8).write(to: build.appendingPathComponent(path)) }
        let fresh = "\(registry.host)/compat/put-\(UUID().uuidString.prefix(8).lowercased())"
        let input = #"{"source":\#(source(extra, repository: fresh)),"params":{\#(params)}}"#
        return try resource("out", input, arguments: [build.path])
    }

    /// `build-task` on the context with `environment` added, its output in a fresh directory.
    func build(_ environment: [String: String]) throws -> ProcessResult {
        let work = try scratch("build")
        var env = resourceEnvironment
        env.merge([
            "CONTEXT": context.path, "OUTPUT": work.appendingPathComponent("image").path,
            "CACHE": work.appendingPathComponent("cache").path,
        ]) { $1 }
        env.merge(environment) { $1 }
        return try runProcess(try builtProduct("build-task").path, [], environment: env, currentDirectory: work)
    }

    func checkedDigest(_ tag: String) throws -> String {
        let result = try runProcess(
            "skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(repository):\(tag)"]
        ).checked()
        return Digest.sha256(result.stdout).rawValue
    }
}
