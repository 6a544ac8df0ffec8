import Foundation
import HTTP
import Testing

@testable import CloudAuth

/// AWS's Signature Version 4 test suite (aws-sig-v4-test-suite): every case signs with
/// these credentials, at this instant, for this region and service. Expected canonical
/// requests, strings to sign and signatures are the suite's `.creq`, `.sts` and `.authz` files.
let suiteCredentials = AWSCredentials(
    accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z
let suiteSigner = SignatureV4(region: "us-east-1", service: "service")
let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct SuiteCase: Sendable, CustomStringConvertible {
    var name: String
    var method: String
    var url: String
    var headers: [(String, String)]
    var body: String = ""
    var canonicalRequest: String?
    var stringToSign: String?
    var authorization: String
    var description: String { name }
}

let suiteCases: [SuiteCase] = [
    SuiteCase(
        name: "get-vanilla", method: "GET", url: "https://example.amazonaws.com/",
        headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        canonicalRequest:
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
        stringToSign:
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    ),
    SuiteCase(
        name: "post-vanilla", method: "POST", url: "https://example.amazonaws.com/",
        headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    ),
    SuiteCase(
        name: "post-x-www-form-urlencoded", method: "POST", url: "https://example.amazonaws.com/",
        headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ],
        body: "Param1=value1",
        canonicalRequest:
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        stringToSign:
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    ),
    SuiteCase(
        name: "get-vanilla-query-order-key", method: "GET",
        url: "https://example.amazonaws.com/?Param1=value2&Param1=Value1",
        headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        canonicalRequest:
            "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
        stringToSign:
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"
    ),
    SuiteCase(
        name: "get-vanilla-query-order-key-case", method: "GET",
        url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
        headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    ),
    SuiteCase(
        name: "get-header-value-trim", method: "GET", url: "https://example.amazonaws.com/",
        headers: [
            ("Host", "example.amazonaws.com"), ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""),
            ("X-Amz-Date", "20150830T123600Z"),
        ],
        authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
    ),
]

@Suite("AWS Signature Version 4 against AWS's test suite")
struct SignatureV4Tests {
    @Test(arguments: suiteCases)
    func matchesTheSuiteByteForByte(_ test: SuiteCase) throws {
        let url = try #require(URL(string: test.url))
        let payload = Data(test.body.utf8)
        let (canonical, _) = suiteSigner.canonicalRequest(
            method: test.method, url: url, headers: test.headers, payloadHash: SignatureV4.hexSHA256(payload))
        if let expected = test.canonicalRequest { #expect(canonical == expected) }
        let stringToSign = suiteSigner.stringToSign(canonicalRequest: canonical, date: suiteDate)
        if let expected = test.stringToSign { #expect(stringToSign == expected) }
        #expect(
            suiteSigner.authorization(
                method: test.method, url: url, headers: test.headers, payload: payload,
                credentials: suiteCredentials, date: suiteDate) == test.authorization)
    }

    /// post-sts-header-before: a temporary key's token is a signed header; `sign` adds it, the date and the host.
    @Test func signAddsTheSessionTokenBeforeSigning() throws {
        let token =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        var credentials = suiteCredentials
        credentials.sessionToken = token
        var request = HTTPRequest(method: .post, url: URL(string: "https://example.amazonaws.com/")!)
        suiteSigner.sign(&request, credentials: credentials, date: suiteDate)
        #expect(request.headers["Host"] == "example.amazonaws.com")
        #expect(request.headers["X-Amz-Date"] == "20150830T123600Z")
        #expect(request.headers["X-Amz-Security-Token"] == token)
        #expect(
            request.headers["Authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        )
    }

    @Test func signNamesALoopbackPortInTheHostHeader() {
        var request = HTTPRequest(method: .post, url: URL(string: "http://127.0.0.1:40123/")!)
        suiteSigner.sign(&request, credentials: suiteCredentials, date: suiteDate)
        #expect(request.headers["Host"] == "127.0.0.1:40123")
        #expect(request.headers["Authorization"]?.contains("SignedHeaders=host;x-amz-date,") == true)
    }

    @Test func credentialsNeverDescribeTheirSecret() {
        let credentials = AWSCredentials(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "tok"
        )
        #expect("\(credentials)" == "access key AKIDEXAMPLE")
    }
}

@Suite("Cloud login decisions")
struct CloudLoginDecisionTests {
    @Test(arguments: [
        ("myregistry.azurecr.io", AzureCloud.azurePublic), ("MyRegistry.AzureCR.us", .azureGovernment),
        ("r.azurecr.cn:443", .azureChina), ("registry.example.com", .azurePublic),
    ])
    func azureCloudFollowsTheRegistryDomain(_ host: String, _ cloud: AzureCloud) {
        #expect(AzureCloud.detect(registryHost: host) == cloud)
    }

    @Test func awsEndpointsFollowTheSDKVariables() throws {
        let none = AWSEnvironment([:])
        #expect(
            try none.endpoint(variableSuffix: "ECR", hostPrefix: "api.ecr", region: "eu-west-1").absoluteString
                == "https://api.ecr.eu-west-1.amazonaws.com")
        #expect(
            try none.endpoint(variableSuffix: "STS", hostPrefix: "sts", region: "cn-north-1").absoluteString
                == "https://sts.cn-north-1.amazonaws.com.cn")
        #expect(none.instanceMetadataEndpoint.absoluteString == "http://169.254.169.254")
        let both = AWSEnvironment([
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:2",
        ])
        #expect(
            try both.endpoint(variableSuffix: "STS", hostPrefix: "sts", region: "us-east-1").absoluteString
                == "http://127.0.0.1:2")
        #expect(
            try both.endpoint(variableSuffix: "ECR", hostPrefix: "api.ecr", region: "us-east-1").absoluteString
                == "http://127.0.0.1:1")
        #expect(throws: CloudAuthError.self) {
            try AWSEnvironment(["AWS_ENDPOINT_URL": "ftp://x"]).endpoint(
                variableSuffix: "ECR", hostPrefix: "api.ecr", region: "us-east-1")
        }
        #expect(
            AWSEnvironment(["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_SESSION_TOKEN": "T"])
                .credentials
                == AWSCredentials(accessKeyID: "A", secretAccessKey: "S", sessionToken: "T"))
        #expect(AWSEnvironment(["AWS_ACCESS_KEY_ID": "A"]).credentials == nil)
    }
}

@Suite("Cloud answers read as registry-image and AWS write them")
struct CloudAnswerParsingTests {
    @Test(arguments: [
        (
            #"Bearer realm="https://r.azurecr.io/oauth2/exchange?tenant=abc-123",service="r.azurecr.io""#,
            "abc-123" as String?
        ),
        (#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io""#, nil),
        (#"Basic realm="Registry Realm""#, nil),
    ])
    func acrTenantComesFromTheChallenge(_ challenge: String, _ tenant: String?) {
        #expect(ACRLogin.challengeTenant(challenge) == tenant)
    }

    @Test func stsElementsAreFoundAndUnescaped() {
        let xml =
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>a&amp;b&lt;c</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>"
        let credentials = STS.element("Credentials", in: xml)
        #expect(credentials.flatMap { STS.element("AccessKeyId", in: $0) } == "ASIA1")
        #expect(credentials.flatMap { STS.element("SecretAccessKey", in: $0) } == "a&b<c")
        #expect(STS.element("SessionToken", in: xml) == nil)
    }

    @Test func serverTextLosesSecretsAndLineBreaks() {
        #expect(
            CloudAuthError.sanitized("bad key wJalrXUtnFEMI\nsecond line", hiding: ["wJalrXUtnFEMI"])
                == "bad key *** second line")
    }
}
