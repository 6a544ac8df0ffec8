import Foundation

/// What a worker's process environment says about AWS, read the way the AWS SDKs read it.
///
/// These come from the environment of the process running `check`, `in` or `out` (the
/// worker), never from `source`: endpoint overrides and ambient credentials belong to where
/// the resource runs, not to the pipeline.
public struct AWSEnvironment: Sendable {
    public let variables: [String: String]

    public init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
    }

    private func value(_ name: String) -> String? {
        variables[name].flatMap {
            $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0.trimmingCharacters(in: .whitespaces)
        }
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, when both key parts are set.
    public var credentials: AWSCredentials? {
        guard let id = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else { return nil }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
    }

    /// The service endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the
    /// regional public endpoint (`https://api.ecr.<region>.amazonaws.com`, `https://sts.<region>.amazonaws.com`).
    /// - Parameters:
    ///   - variableSuffix: the service's part of the variable name, `ECR` or `STS`.
    ///   - hostPrefix: the regional endpoint's first labels, `api.ecr` or `sts`.
    public func endpoint(variableSuffix: String, hostPrefix: String, region: String) throws(CloudAuthError) -> URL {
        for name in ["AWS_ENDPOINT_URL_\(variableSuffix)", "AWS_ENDPOINT_URL"] {
            guard let text = value(name) else { continue }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                ["http", "https"].contains(scheme), url.host != nil
            else {
                throw CloudAuthError(
                    .invalidSetting, "read \(name)",
                    "\"\(CloudAuthError.sanitized(text, hiding: []))\" is not an http(s) URL")
            }
            return url
        }
        return URL(string: "https://\(hostPrefix).\(region).\(Self.domain(region: region))")!
    }

    /// `amazonaws.com`, or `amazonaws.com.cn` in the China regions.
    public static func domain(region: String) -> String {
        region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
    }

    /// The EC2 instance metadata service: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`.
    public var instanceMetadataEndpoint: URL {
        value("AWS_EC2_METADATA_SERVICE_ENDPOINT").flatMap(URL.init(string:)) ?? URL(string: "http://169.254.169.254")!
    }

    /// `AWS_EC2_METADATA_DISABLED=true` turns the instance metadata service off, as in the SDKs.
    public var instanceMetadataDisabled: Bool { value("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" }
}
