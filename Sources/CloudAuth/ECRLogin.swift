import Foundation
import HTTP

/// A login to Amazon ECR as registry-image does it: credentials (the source's, else the
/// worker's), each role of `roleARNs` assumed in turn through STS, then ECR's
/// `GetAuthorizationToken`, whose token is `AWS:<password>` for the registry.
public struct ECRLogin: Sendable {
    public var region: String
    public var credentials: AWSCredentialChain
    /// `aws_role_arn` or `aws_role_arns`: each hop is signed with the previous hop's credentials.
    public var roleARNs: [String]
    /// `aws_ecr_registry_id`, sent as `registryIds` when given.
    public var registryIDs: [String]

    public init(region: String, credentials: AWSCredentialChain, roleARNs: [String] = [], registryIDs: [String] = []) {
        self.region = region
        self.credentials = credentials
        self.roleARNs = roleARNs
        self.registryIDs = registryIDs
    }

    /// Logs in; `transport` is the seam tests keep (endpoints come from the environment).
    public func login(
        transport: any HTTPTransport = CurlTransport(timeouts: .init(connect: 5, stalled: 30)),
        instanceMetadataTransport: any HTTPTransport = CurlTransport(timeouts: .init(connect: 2, stalled: 5)),
        now: @Sendable () -> Date = { Date() }
    ) throws(CloudAuthError) -> RegistryLogin {
        var current = try credentials.resolve(transport: instanceMetadataTransport)
        let sts = STS(
            region: region,
            endpoint: try credentials.environment.endpoint(variableSuffix: "STS", hostPrefix: "sts", region: region),
            transport: transport)
        for (hop, role) in roleARNs.enumerated() {
            current = try sts.assumeRole(
                role, sessionName: "slipway-\(Int(now().timeIntervalSince1970))-\(hop + 1)", with: current, date: now())
        }
        let endpoint = try credentials.environment.endpoint(
            variableSuffix: "ECR", hostPrefix: "api.ecr", region: region)
        return try authorizationToken(endpoint: endpoint, credentials: current, transport: transport, date: now())
    }

    /// `GetAuthorizationToken`, AWS JSON 1.1
    /// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html).
    func authorizationToken(endpoint: URL, credentials: AWSCredentials, transport: any HTTPTransport, date: Date)
        throws(CloudAuthError) -> RegistryLogin
    {
        let operation = "get an ECR authorization token in \(region) with \(credentials)"
        var body = Data("{}".utf8)
        if !registryIDs.isEmpty, let encoded = try? JSONEncoder().encode(["registryIds": registryIDs]) {
            body = encoded
        }
        var request = HTTPRequest(method: .post, url: endpoint, body: .data(body))
        request.headers["Content-Type"] = "application/x-amz-json-1.1"
        request.headers["X-Amz-Target"] = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        SignatureV4(region: region, service: "ecr").sign(&request, credentials: credentials, date: date)
        let http = CloudHTTP(transport: transport, trust: .system, secrets: credentials.secrets)
        let response = try http.send(request, operation: operation)
        guard response.status == 200 else {
            throw CloudAuthError(.refused, operation, Self.awsJSONError(response, secrets: credentials.secrets))
        }
        struct Answer: Decodable {
            struct Entry: Decodable {
                var authorizationToken: String?
                var proxyEndpoint: String?
            }
            var authorizationData: [Entry]?
        }
        let answer = try decodeJSON(Answer.self, response.body, operation: operation, what: "authorizationData")
        guard let entry = answer.authorizationData?.first, let token = entry.authorizationToken,
            let decoded = Data(base64Encoded: token).flatMap({ String(data: $0, encoding: .utf8) }),
            let colon = decoded.firstIndex(of: ":")
        else {
            throw CloudAuthError(
                .invalidAnswer, operation, "the answer has no authorizationToken of the form base64(user:password)")
        }
        let password = decoded[decoded.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else {
            throw CloudAuthError(.invalidAnswer, operation, "the authorization token's password is empty")
        }
        var registry: String?
        if let proxyEndpoint = entry.proxyEndpoint {
            registry = try Self.registryHost(proxyEndpoint: proxyEndpoint, operation: operation)
        }
        return RegistryLogin(username: String(decoded[..<colon]), password: password, registry: registry)
    }

    /// `https://<account>.dkr.ecr.<region>.amazonaws.com` → its host, as registry-image
    /// takes it. Only a bare `host[:port]` is accepted: the answer decides where credentials go.
    static func registryHost(proxyEndpoint: String, operation: String) throws(CloudAuthError) -> String {
        var host = proxyEndpoint
        for scheme in ["https://", "http://"] where host.hasPrefix(scheme) { host.removeFirst(scheme.count) }
        if host.hasSuffix("/") { host.removeLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:")
        guard !host.isEmpty, host.count <= 253, host.allSatisfy(allowed.contains), !host.hasPrefix("-"),
            !host.hasPrefix(":")
        else {
            throw CloudAuthError(.invalidAnswer, operation, "the answer's proxyEndpoint is not a registry address")
        }
        return host
    }

    /// `__type` and `message` of an AWS JSON error body, else the status.
    static func awsJSONError(_ response: HTTPResponse, secrets: [String]) -> String {
        struct Body: Decodable {
            var __type: String?
            var message: String?
            var Message: String?
        }
        let body = try? JSONDecoder().decode(Body.self, from: response.body)
        let type =
            (body?.__type ?? response.headers["x-amzn-ErrorType"] ?? "").split(separator: "#").last.map(String.init)
            ?? ""
        let message = body?.message ?? body?.Message ?? ""
        let text = [type, message].filter { !$0.isEmpty }.joined(separator: ": ")
        return "HTTP \(response.status)" + (text.isEmpty ? "" : " \(CloudAuthError.sanitized(text, hiding: secrets))")
    }
}

/// STS `AssumeRole`, Query protocol (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
struct STS: Sendable {
    var region: String
    var endpoint: URL
    var transport: any HTTPTransport

    func assumeRole(_ role: String, sessionName: String, with credentials: AWSCredentials, date: Date)
        throws(CloudAuthError) -> AWSCredentials
    {
        let operation = "assume role \(role) with \(credentials)"
        let form = [
            ("Action", "AssumeRole"), ("RoleArn", role), ("RoleSessionName", sessionName), ("Version", "2011-06-15"),
        ]
        .map { "\(SignatureV4.uriEncode($0.0))=\(SignatureV4.uriEncode($0.1))" }.joined(separator: "&")
        var request = HTTPRequest(method: .post, url: endpoint, body: .data(Data(form.utf8)))
        request.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        SignatureV4(region: region, service: "sts").sign(&request, credentials: credentials, date: date)
        let response = try CloudHTTP(transport: transport, trust: .system, secrets: credentials.secrets).send(
            request, operation: operation)
        let xml = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            let text = [Self.element("Code", in: xml), Self.element("Message", in: xml)].compactMap { $0 }.joined(
                separator: ": ")
            throw CloudAuthError(
                .refused, operation,
                "HTTP \(response.status)"
                    + (text.isEmpty ? "" : " " + CloudAuthError.sanitized(text, hiding: credentials.secrets)))
        }
        guard let block = Self.element("Credentials", in: xml),
            let id = Self.element("AccessKeyId", in: block), let secret = Self.element("SecretAccessKey", in: block),
            let token = Self.element("SessionToken", in: block), !id.isEmpty, !secret.isEmpty
        else {
            throw CloudAuthError(
                .invalidAnswer, operation, "the answer has no Credentials (AccessKeyId, SecretAccessKey, SessionToken)")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// The text of the first `<name>…</name>`, XML entities decoded. STS answers are flat
    /// enough that this is all the XML we need.
    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"),
            let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
