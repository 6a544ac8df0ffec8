import CloudAuth
import Foundation
import ImageLayout
import OCI
import Registry
import Resource
import TestSupport
import Testing

/// Runs the built `check`, `in` or `out` as Concourse does, with a worker environment:
/// `environment` adds to a bare PATH and HOME, and IMDS is off unless a test points it somewhere.
func runResource(_ name: String, _ input: String, directory: URL? = nil, environment: [String: String]) throws
    -> ProcessResult
{
    var full = ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
    full.merge(environment) { $1 }
    return try runProcess(
        try builtProduct(name).path, directory.map { [$0.path] } ?? [], stdin: Data(input.utf8), environment: full)
}

/// Every byte a run wrote, to check that no secret escaped.
func everything(_ results: [ProcessResult]) -> String {
    results.map { $0.stdoutString + $0.stderrString }.joined(separator: "\n")
}

/// A build directory holding an OCI layout at image/oci, as a task leaves it.
func ociBuildDirectory(_ directory: TemporaryDirectory) throws -> (URL, Digest) {
    let build = directory.appending("build")
    let layout = try OCILayout.create(at: build.appendingPathComponent("image/oci"))
    try ImageFixture.image(in: layout, name: "latest", layerCount: 1, seed: UUID().uuidString)
    return (build, try layout.image().descriptor.digest)
}

/// `out` of a fresh image, then `check` and `in` of it, with `source` (JSON) and the worker's
/// `environment`, as Concourse runs them: each must give back the pushed digest. Returns the
/// three results, for what the test checks of their output.
func putCheckGet(source: String, environment: [String: String], in directory: TemporaryDirectory) throws
    -> [ProcessResult]
{
    let (build, digest) = try ociBuildDirectory(directory)
    let put = try runResource(
        "out", #"{"source":\#(source),"params":{"image":"image/oci"}}"#, directory: build, environment: environment)
    #expect(try outVersion(put) == ["tag": "dev", "digest": digest.rawValue])
    let check = try runResource("check", #"{"source":\#(source)}"#, environment: environment)
    #expect(try decodeVersions(check) == [["tag": "dev", "digest": digest.rawValue]])
    let get = try runResource(
        "in", #"{"source":\#(source),"version":{"tag":"dev","digest":"\#(digest)"}}"#,
        directory: directory.appending("get"), environment: environment)
    #expect(get.succeeded, "\(get.stderrString)")
    #expect(try String(contentsOf: directory.appending("get/digest"), encoding: .utf8) == digest.rawValue)
    return [put, check, get]
}

/// ECR through a fake AWS on loopback that recomputes every SigV4 signature, with a real
/// registry whose htpasswd password is the one inside the fake's ECR tokens.
@Suite("ECR login (aws_* keys), as Concourse runs it")
struct ECRLoginTests {
    let keyID = "AKIDSLIPWAYTEST00001"
    let secret = "wJalrXUtnFEMI/slipway+test/secret" + UUID().uuidString
    let ecrPassword = "ecr-token-" + UUID().uuidString
    let role1 = "arn:aws:iam::123456789012:role/slipway-first"
    let role2 = "arn:aws:iam::210987654321:role/slipway-second"

    func source(_ registry: TestRegistry, _ extra: String) -> String {
        #"{"repository":"\#(registry.host)/team/app","tag":"dev","insecure":true,"aws_region":"us-east-1"\#(extra)}"#
    }

    @Test func sourceKeysPushCheckAndGetThroughTheBuiltBinary() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(keys: [keyID: secret], ecrPassword: ecrPassword) { aws in
                try withTemporaryDirectory { directory in
                    let environment = [
                        "AWS_ENDPOINT_URL_ECR": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true",
                    ]
                    let keys = #","aws_access_key_id":"\#(keyID)","aws_secret_access_key":"\#(secret)""#
                    let results = try putCheckGet(
                        source: source(registry, keys), environment: environment, in: directory)

                    let requests = try aws.requests()
                    #expect(requests.count == 3)
                    #expect(
                        requests.allSatisfy {
                            $0.kind == "ecr" && $0.signature == "valid" && $0.accessKeyId == keyID && $0.status == 200
                        })
                    let output = everything(results)
                    #expect(!output.contains(secret) && !output.contains(ecrPassword))
                }
            }
        }
    }

    /// registry-image's rule: a repository without a host (and no `aws_account_id`) is in the
    /// registry ECR's answer names (`proxyEndpoint`), which `in` writes into `repository`.
    @Test func aBareRepositoryIsInTheRegistryECRNames() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(
                keys: [keyID: secret], ecrPassword: ecrPassword, proxyEndpoint: "https://\(registry.host)"
            ) { aws in
                try withTemporaryDirectory { directory in
                    let environment = [
                        "AWS_ENDPOINT_URL_ECR": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true",
                    ]
                    let source =
                        #"{"repository":"team/app","tag":"dev","aws_region":"us-east-1","aws_access_key_id":"\#(keyID)","aws_secret_access_key":"\#(secret)"}"#
                    let output = everything(try putCheckGet(source: source, environment: environment, in: directory))
                    #expect(
                        try String(contentsOf: directory.appending("get/repository"), encoding: .utf8)
                            == "\(registry.host)/team/app")
                    #expect(!output.contains(secret) && !output.contains(ecrPassword))
                }
            }
        }
    }

    @Test func roleChainSignsEachHopWithThePreviousHopsCredentials() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(keys: [keyID: secret], roles: [role1, role2], ecrPassword: ecrPassword) { aws in
                let environment = ["AWS_ENDPOINT_URL": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true"]
                let extra =
                    #","aws_access_key_id":"\#(keyID)","aws_secret_access_key":"\#(secret)","aws_role_arns":["\#(role1)","\#(role2)"],"aws_ecr_registry_id":"210987654321""#
                let check = try runResource(
                    "check", #"{"source":\#(source(registry, extra))}"#, environment: environment)
                #expect(check.succeeded, "\(check.stderrString)")
                let requests = try aws.requests()
                try #require(requests.count == 3)
                #expect(
                    requests[0].kind == "sts" && requests[0].roleArn == role1 && requests[0].accessKeyId == keyID
                        && requests[0].sessionToken == false)
                #expect(
                    requests[1].kind == "sts" && requests[1].roleArn == role2
                        && requests[1].accessKeyId == requests[0].issued && requests[1].sessionToken == true)
                #expect(
                    requests[2].kind == "ecr" && requests[2].accessKeyId == requests[1].issued
                        && requests[2].sessionToken == true)
                #expect(requests[2].registryIds == ["210987654321"])
                #expect(requests.allSatisfy { $0.signature == "valid" && $0.status == 200 })

                // A role the account may not assume: one line, naming the role, no secret.
                let denied =
                    #","aws_access_key_id":"\#(keyID)","aws_secret_access_key":"\#(secret)","aws_role_arn":"arn:aws:iam::123456789012:role/not-allowed""#
                let refused = try runResource(
                    "check", #"{"source":\#(source(registry, denied))}"#, environment: environment)
                #expect(!refused.succeeded)
                #expect(refused.stderrString.contains("assume role arn:aws:iam::123456789012:role/not-allowed"))
                #expect(refused.stderrString.contains("AccessDenied"))
                #expect(refused.stderrString.split(separator: "\n").count == 1)
                #expect(!everything([check, refused]).contains(secret))
            }
        }
    }

    @Test func workerEnvironmentCredentialsAreUsedWhenTheSourceHasNone() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(keys: [keyID: secret], ecrPassword: ecrPassword) { aws in
                let environment = [
                    "AWS_ENDPOINT_URL_ECR": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret,
                ]
                let check = try runResource("check", #"{"source":\#(source(registry, ""))}"#, environment: environment)
                #expect(check.succeeded, "\(check.stderrString)")
                #expect(try aws.requests().map(\.accessKeyId) == [keyID])
                #expect(!everything([check]).contains(secret))
            }
        }
    }

    @Test func instanceRoleCredentialsComeFromIMDSv2() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(keys: [:], instanceRole: "slipway-worker", ecrPassword: ecrPassword) { aws in
                let environment = [
                    "AWS_ENDPOINT_URL": aws.baseURL.absoluteString,
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT": aws.baseURL.absoluteString,
                ]
                let check = try runResource("check", #"{"source":\#(source(registry, ""))}"#, environment: environment)
                #expect(check.succeeded, "\(check.stderrString)")
                let requests = try aws.requests()
                #expect(requests.map(\.kind) == ["imds-token", "imds-list", "imds-credentials", "ecr"])
                #expect(requests.dropFirst().prefix(2).allSatisfy { $0.imdsToken == "valid" })
                #expect(
                    requests.last?.accessKeyId == requests[2].issued && requests.last?.sessionToken == true
                        && requests.last?.signature == "valid")
            }
        }
    }

    @Test func aWrongSecretFailsInOneLineWithoutTheSecret() async throws {
        try await withTestRegistry(.basic(username: "AWS", password: ecrPassword)) { registry in
            try await withAWSFake(keys: [keyID: secret], ecrPassword: ecrPassword) { aws in
                let wrong = "not-the-secret-" + UUID().uuidString
                let environment = [
                    "AWS_ENDPOINT_URL_ECR": aws.baseURL.absoluteString, "AWS_EC2_METADATA_DISABLED": "true",
                ]
                let extra =
                    #","aws_access_key_id":"\#(keyID)","aws_secret_access_key":"\#(wrong)","aws_session_token":"session-\#(wrong)""#
                let check = try runResource(
                    "check", #"{"source":\#(source(registry, extra))}"#, environment: environment)
                #expect(!check.succeeded)
                #expect(check.stdoutString.isEmpty)
                #expect(check.stderrString.split(separator: "\n").count == 1)
                #expect(
                    check.stderrString.contains("get an ECR authorization token in us-east-1 with access key \(keyID)"))
                #expect(check.stderrString.contains("InvalidSignatureException"))
                #expect(!check.stderrString.contains(wrong))
                #expect(try aws.requests().map(\.signature) == ["SignatureDoesNotMatch"])

                // No credentials anywhere (IMDS off): one line saying where it looked.
                let none = try runResource("check", #"{"source":\#(source(registry, ""))}"#, environment: environment)
                #expect(!none.succeeded)
                #expect(none.stderrString.contains("find AWS credentials: none in source"))
            }
        }
    }
}

/// ACR through a fake Azure instance metadata service and a front answering /oauth2/exchange,
/// passing everything else to a real registry whose htpasswd user is ACR's null GUID with the
/// refresh token as password.
@Suite("ACR login (azure_* keys), as Concourse runs it")
struct ACRLoginTests {
    let accessToken = "entra-access-" + UUID().uuidString
    let refreshToken = "acr-refresh-" + UUID().uuidString
    let clientID = "11111111-2222-3333-4444-555555555555"
    let tenant = "66666666-7777-8888-9999-000000000000"

    @Test func managedIdentityTokenIsExchangedForARefreshToken() async throws {
        try await withTestRegistry(.basic(username: ACRLogin.refreshTokenUser, password: refreshToken)) { registry in
            try await withAzureFake(
                upstream: registry.baseURL, accessToken: accessToken, refreshToken: refreshToken,
                clientID: clientID, tenant: tenant
            ) { azure in
                try withTemporaryDirectory { directory in
                    let environment = ["AZURE_POD_IDENTITY_AUTHORITY_HOST": azure.baseURL.absoluteString]
                    let source =
                        #"{"repository":"\#(azure.host)/team/app","tag":"dev","insecure":true,"azure_acr":true,"azure_client_id":"\#(clientID)","azure_tenant_id":"\#(tenant)"}"#
                    let results = try putCheckGet(source: source, environment: environment, in: directory)

                    let requests = try azure.requests()
                    let identity = requests.filter { $0.kind == "imds" }
                    let exchanges = requests.filter { $0.kind == "exchange" }
                    #expect(identity.count == 3 && exchanges.count == 3)
                    #expect(
                        identity.allSatisfy {
                            $0.metadataHeader == "true" && $0.clientId == clientID
                                && $0.resource == "https://management.azure.com/" && $0.status == 200
                        })
                    #expect(
                        exchanges.allSatisfy {
                            $0.grantType == "access_token" && $0.accessTokenValid == true && $0.service == azure.host
                                && $0.tenant == tenant && $0.status == 200
                        })
                    #expect(requests.contains { $0.kind == "proxy" && $0.authorization == "Basic" && $0.status < 300 })
                    let output = everything(results)
                    #expect(!output.contains(accessToken) && !output.contains(refreshToken))
                }
            }
        }
    }

    @Test func theCloudDecidesTheTokenAudienceAndTheTenantDefaultsToCommon() async throws {
        try await withTestRegistry(.basic(username: ACRLogin.refreshTokenUser, password: refreshToken)) { registry in
            try await withAzureFake(upstream: registry.baseURL, accessToken: accessToken, refreshToken: refreshToken) {
                azure in
                let environment = ["AZURE_POD_IDENTITY_AUTHORITY_HOST": azure.baseURL.absoluteString]
                let base = #""repository":"\#(azure.host)/team/app","tag":"dev","insecure":true,"azure_acr":true"#
                // System-assigned identity, tenant from the registry's challenge (none here: "common").
                let check = try runResource("check", #"{"source":{\#(base)}}"#, environment: environment)
                #expect(check.succeeded, "\(check.stderrString)")
                let first = try azure.requests()
                #expect(first.first { $0.kind == "imds" }?.clientId == nil)
                #expect(first.first { $0.kind == "exchange" }?.tenant == "common")

                // azure_environment overrides the domain: Government's audience, which this identity endpoint refuses.
                let government = try runResource(
                    "check", #"{"source":{\#(base),"azure_environment":"AzureGovernment"}}"#, environment: environment)
                #expect(!government.succeeded)
                #expect(try azure.requests().last?.resource == "https://management.usgovcloudapi.net/")
                #expect(government.stderrString.contains("Azure instance metadata service"))
                #expect(government.stderrString.split(separator: "\n").count == 1)
                #expect(!everything([check, government]).contains(accessToken))
            }
        }
    }
}

@Suite("ECR and ACR source keys: what is refused, and the ECR host")
struct CloudSourceTests {
    @Test(arguments: [
        (
            #""repository":"r.azurecr.io/app","azure_acr":true,"username":"u","password":"p""#,
            "source.username cannot be combined with azure_acr"
        ),
        (
            #""repository":"r.azurecr.io/app","azure_acr":true,"aws_region":"us-east-1""#,
            "(ECR) and source.azure_acr (ACR) cannot be combined"
        ),
        (
            #""repository":"1.dkr.ecr.us-east-1.amazonaws.com/app","aws_region":"us-east-1","aws_access_key_id":"AKID""#,
            "source.aws_access_key_id is set but source.aws_secret_access_key is not"
        ),
        (
            #""repository":"x.io/app","aws_access_key_id":"AKID","aws_secret_access_key":"s""#,
            "source.aws_access_key_id needs source.aws_region"
        ),
        (
            #""repository":"x.io/app","aws_region":"us-east-1","aws_session_token":"t""#,
            "aws_session_token needs source.aws_access_key_id"
        ),
        (
            #""repository":"x.io/app","aws_region":"us-east-1","aws_role_arn":"arn:aws:iam::123456789012:role/a","aws_role_arns":["arn:aws:iam::123456789012:role/b"]"#,
            "cannot both be set"
        ),
        (
            #""repository":"x.io/app","aws_region":"us-east-1","aws_role_arns":["role/b"]"#,
            "source.aws_role_arns[0]: \"role/b\" is not an IAM role ARN"
        ),
        (#""repository":"x.io/app","aws_region":"Virginia""#, "source.aws_region: \"Virginia\" is not an AWS region"),
        (#""repository":"app","aws_region":"us-east-1","aws_account_id":"12345""#, "is not a 12-digit AWS account id"),
        (
            #""repository":"x.io/app","aws_region":"us-east-1","aws_account_id":"123456789012""#,
            "source.aws_account_id builds the registry host"
        ),
        (
            #""repository":"app","aws_region":"us-east-1","aws_account_id":"123456789012","aws_ecr_registry_id":"210987654321""#,
            "name different registries"
        ),
        (
            #""repository":"r.azurecr.io/app","azure_client_id":"abc""#,
            "source.azure_client_id needs source.azure_acr: true"
        ),
        (
            #""repository":"r.azurecr.io/app","azure_acr":true,"azure_environment":"Mars""#,
            "is not one of AzurePublic, AzureGovernment, AzureChina"
        ),
        (#""repository":"team/app","azure_acr":true"#, "with azure_acr, name the registry"),
        (#""repository":"x.io/app","azure_acr":false"#, "source.azure_acr is false while no other azure_* key is set"),
    ])
    func refusesNonsenseInOneLine(_ source: String, _ expected: String) throws {
        let result = try runResource("check", #"{"source":{\#(source)}}"#, environment: [:])
        #expect(!result.succeeded)
        #expect(result.stderrString.contains(expected), "\(result.stderrString)")
        #expect(result.stderrString.split(separator: "\n").count == 1)
    }

    @Test func secretsNeverAppearInRefusals() throws {
        let secret = "very-secret-" + UUID().uuidString
        for source in [
            #""repository":"x.io/app","aws_region":"us-east-1","aws_secret_access_key":"\#(secret)""#,
            #""repository":"x.io/app","aws_region":"us-east-1","aws_access_key_id":"A","aws_secret_access_key":["\#(secret)"]"#,
            #""repository":"x.io/app","aws_region":"us-east-1","aws_session_token":"\#(secret)""#,
            #""repository":"x.io/app","aws_region":"us-east-1","aws_secret_acces_key":"\#(secret)""#,
        ] {
            let result = try runResource("check", #"{"source":{\#(source)}}"#, environment: [:])
            #expect(!result.succeeded)
            #expect(!everything([result]).contains(secret), "\(result.stderrString)")
        }
    }

    @Test func aBareECRRepositoryGetsTheAccountsRegistryHost() throws {
        func registry(_ source: String) throws -> String {
            let parsed = try Source(try JSONValue.parse(Data("{\(source)}".utf8)))
            return "\(parsed.registry)/\(parsed.repository)"
        }
        #expect(
            try registry(#""repository":"team/app","aws_region":"eu-west-2","aws_account_id":"123456789012""#)
                == "123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/app")
        #expect(
            try registry(#""repository":"app","aws_region":"cn-north-1","aws_ecr_registry_id":"123456789012""#)
                == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app")
        #expect(
            try registry(#""repository":"123456789012.dkr.ecr.us-east-1.amazonaws.com/app","aws_region":"us-east-1""#)
                == "123456789012.dkr.ecr.us-east-1.amazonaws.com/app")
    }
}
