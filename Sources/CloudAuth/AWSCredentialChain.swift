import Foundation
import HTTP

/// Where AWS credentials come from: the source's keys, else what the worker has, in the
/// AWS SDKs' order: the environment, then the EC2 instance's role through the instance
/// metadata service (IMDSv2).
public struct AWSCredentialChain: Sendable {
    /// The source's `aws_access_key_id` / `aws_secret_access_key` / `aws_session_token`.
    public var explicit: AWSCredentials?
    public var environment: AWSEnvironment

    public init(explicit: AWSCredentials?, environment: AWSEnvironment) {
        self.explicit = explicit
        self.environment = environment
    }

    /// The first credentials found; an error listing every place looked when there are none.
    func resolve(transport: any HTTPTransport) throws(CloudAuthError) -> AWSCredentials {
        if let explicit { return explicit }
        if let ambient = environment.credentials { return ambient }
        let operation = "find AWS credentials"
        guard !environment.instanceMetadataDisabled else {
            throw CloudAuthError(
                .noCredentials, operation,
                "none in source (aws_access_key_id), none in the worker's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_EC2_METADATA_DISABLED is set"
            )
        }
        do {
            return try instanceRoleCredentials(transport: transport)
        } catch {
            throw CloudAuthError(
                .noCredentials, operation,
                "none in source (aws_access_key_id), none in the worker's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and no instance role: \(error)"
            )
        }
    }

    /// IMDSv2 (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html):
    /// a session token by PUT, then the role's name and its credentials with that token.
    func instanceRoleCredentials(transport: any HTTPTransport) throws(CloudAuthError) -> AWSCredentials {
        let base = environment.instanceMetadataEndpoint
        let http = CloudHTTP(transport: transport, trust: .system, secrets: [])
        let operation = "ask the instance metadata service at \(redacted(base))"
        var tokenRequest = HTTPRequest(
            method: .put, url: base.appendingPathComponent("latest/api/token"), body: .data(Data()))
        tokenRequest.headers["X-aws-ec2-metadata-token-ttl-seconds"] = "300"
        let tokenAnswer = try http.send(tokenRequest, operation: operation, attempts: 1)
        guard tokenAnswer.status == 200, let token = String(data: tokenAnswer.body, encoding: .utf8), !token.isEmpty
        else {
            throw CloudAuthError(
                .refused, operation, "PUT /latest/api/token answered HTTP \(tokenAnswer.status) (IMDSv2 session token)")
        }
        let listURL = base.appendingPathComponent("latest/meta-data/iam/security-credentials/")
        var list = HTTPRequest(method: .get, url: listURL)
        list.headers["X-aws-ec2-metadata-token"] = token
        let roles = try http.send(list, operation: operation, attempts: 1)
        guard roles.status == 200,
            let role = String(decoding: roles.body, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(
                String.init), !role.isEmpty
        else {
            throw CloudAuthError(
                .noCredentials, operation,
                "the instance has no IAM role (HTTP \(roles.status) for iam/security-credentials/)")
        }
        var fetch = HTTPRequest(method: .get, url: listURL.appendingPathComponent(role))
        fetch.headers["X-aws-ec2-metadata-token"] = token
        let answer = try http.send(fetch, operation: operation, attempts: 1)
        struct Body: Decodable {
            var Code: String?
            var AccessKeyId: String?
            var SecretAccessKey: String?
            var Token: String?
        }
        guard answer.status == 200 else {
            throw CloudAuthError(.refused, operation, "HTTP \(answer.status) for the credentials of role \(role)")
        }
        let body = try decodeJSON(Body.self, answer.body, operation: operation, what: "role credentials")
        guard body.Code.map({ $0 == "Success" }) ?? true, let id = body.AccessKeyId, let secret = body.SecretAccessKey,
            !id.isEmpty, !secret.isEmpty
        else {
            throw CloudAuthError(
                .invalidAnswer, operation, "role \(role) has no usable credentials (Code \(body.Code ?? "absent"))")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: body.Token)
    }
}
