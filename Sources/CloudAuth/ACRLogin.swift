import Foundation
import HTTP

/// The Azure cloud an Azure Container Registry lives in, which decides the audience of the
/// managed identity's token.
public enum AzureCloud: String, Sendable, CaseIterable {
    case azurePublic = "AzurePublic"
    case azureGovernment = "AzureGovernment"
    case azureChina = "AzureChina"

    /// The Azure Resource Manager resource a token is asked for, as registry-image asks.
    public var managementResource: String {
        switch self {
        case .azurePublic: "https://management.azure.com/"
        case .azureGovernment: "https://management.usgovcloudapi.net/"
        case .azureChina: "https://management.chinacloudapi.cn/"
        }
    }

    /// From the registry's domain: `*.azurecr.us` is Government, `*.azurecr.cn` China, anything else Public.
    public static func detect(registryHost: String) -> AzureCloud {
        let host = registryHost.lowercased().split(separator: ":").first.map(String.init) ?? ""
        if host.hasSuffix(".azurecr.us") { return .azureGovernment }
        if host.hasSuffix(".azurecr.cn") { return .azureChina }
        return .azurePublic
    }
}

/// What a worker's process environment says about Azure managed identity.
public struct AzureEnvironment: Sendable {
    public let variables: [String: String]

    public init(_ variables: [String: String] = ProcessInfo.processInfo.environment) { self.variables = variables }

    /// The instance metadata service: `AZURE_POD_IDENTITY_AUTHORITY_HOST` (the variable the
    /// Azure identity libraries read to move IMDS, as aad-pod-identity does), else
    /// `http://169.254.169.254`.
    public var instanceMetadataEndpoint: URL {
        variables["AZURE_POD_IDENTITY_AUTHORITY_HOST"].flatMap { $0.isEmpty ? nil : URL(string: $0) } ?? URL(
            string: "http://169.254.169.254")!
    }
}

/// A login to an Azure Container Registry as registry-image does it: a managed identity's
/// Entra ID token from the instance metadata service, exchanged at the registry's
/// `/oauth2/exchange` for an ACR refresh token, which is the password of the null-GUID user.
public struct ACRLogin: Sendable {
    /// The user name ACR expects beside a refresh token.
    public static let refreshTokenUser = "00000000-0000-0000-0000-000000000000"

    /// The registry's host (and port), e.g. `myregistry.azurecr.io`.
    public var registryHost: String
    public var cloud: AzureCloud
    /// A user-assigned identity's client id; nil uses the system-assigned identity.
    public var clientID: String?
    /// The registry's tenant; nil asks the registry's `/v2/` challenge, else `common`.
    public var tenantID: String?
    public var environment: AzureEnvironment

    public init(
        registryHost: String, cloud: AzureCloud, clientID: String?, tenantID: String?, environment: AzureEnvironment
    ) {
        self.registryHost = registryHost
        self.cloud = cloud
        self.clientID = clientID
        self.tenantID = tenantID
        self.environment = environment
    }

    /// Logs in. The registry is reached over https with `trust`; `plainHTTPAllowed` (the
    /// source's `insecure`, or a local registry, as the registry client decides) also allows
    /// plain http when https does not answer.
    public func login(
        trust: TLSTrust, plainHTTPAllowed: Bool,
        transport: any HTTPTransport = CurlTransport(timeouts: .init(connect: 5, stalled: 30)),
        instanceMetadataTransport: any HTTPTransport = CurlTransport(timeouts: .init(connect: 2, stalled: 10))
    ) throws(CloudAuthError) -> RegistryLogin {
        let accessToken = try managedIdentityToken(transport: instanceMetadataTransport)
        let (base, challenge) = try registryBase(trust: trust, plainHTTPAllowed: plainHTTPAllowed, transport: transport)
        let tenant = tenantID ?? Self.challengeTenant(challenge) ?? "common"
        let refreshToken = try exchange(
            accessToken: accessToken, tenant: tenant, base: base, trust: trust, transport: transport)
        return RegistryLogin(username: Self.refreshTokenUser, password: refreshToken)
    }

    /// https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http
    func managedIdentityToken(transport: any HTTPTransport) throws(CloudAuthError) -> String {
        let base = environment.instanceMetadataEndpoint
        let identity = clientID.map { "user-assigned identity \($0)" } ?? "the system-assigned identity"
        let operation = "get a token for \(identity) from the Azure instance metadata service at \(redacted(base))"
        var components = URLComponents(
            url: base.appendingPathComponent("metadata/identity/oauth2/token"), resolvingAgainstBaseURL: false)!
        components.queryItems =
            [
                URLQueryItem(name: "api-version", value: "2018-02-01"),
                URLQueryItem(name: "resource", value: cloud.managementResource),
            ]
            + (clientID.map { [URLQueryItem(name: "client_id", value: $0)] } ?? [])
        var request = HTTPRequest(method: .get, url: components.url!)
        request.headers["Metadata"] = "true"
        let response = try CloudHTTP(transport: transport, trust: .system, secrets: []).send(
            request, operation: operation)
        struct Answer: Decodable {
            var access_token: String?
            var error: String?
            var error_description: String?
        }
        let answer = try? JSONDecoder().decode(Answer.self, from: response.body)
        guard response.status == 200, let token = answer?.access_token, !token.isEmpty else {
            let said = [answer?.error, answer?.error_description].compactMap { $0 }.joined(separator: ": ")
            throw CloudAuthError(
                .refused, operation,
                "HTTP \(response.status)" + (said.isEmpty ? "" : " " + CloudAuthError.sanitized(said, hiding: [])))
        }
        return token
    }

    /// The registry's base URL (https; when allowed, plain http when https does not answer)
    /// and its `WWW-Authenticate` challenge to an anonymous `GET /v2/`.
    func registryBase(trust: TLSTrust, plainHTTPAllowed: Bool, transport: any HTTPTransport) throws(CloudAuthError) -> (
        URL, String?
    ) {
        let operation = "reach \(registryHost)"
        var schemes = ["https"]
        if plainHTTPAllowed { schemes.append("http") }
        var lastError: CloudAuthError?
        for scheme in schemes {
            let base = URL(string: "\(scheme)://\(registryHost)")!
            do {
                let response = try CloudHTTP(transport: transport, trust: trust, secrets: []).send(
                    HTTPRequest(method: .get, url: base.appendingPathComponent("v2/")), operation: operation,
                    attempts: scheme == "https" && plainHTTPAllowed ? 1 : 3)
                return (base, response.status == 401 ? response.headers["WWW-Authenticate"] : nil)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    /// `tenant=` in the challenge's realm, as registry-image reads it.
    static func challengeTenant(_ challenge: String?) -> String? {
        guard let challenge, challenge.lowercased().hasPrefix("bearer "), let range = challenge.range(of: "tenant=")
        else { return nil }
        let tenant = challenge[range.upperBound...].prefix { $0 != "\"" && $0 != "&" && $0 != "," }
        return tenant.isEmpty ? nil : String(tenant)
    }

    /// https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md: access token → refresh token.
    func exchange(accessToken: String, tenant: String, base: URL, trust: TLSTrust, transport: any HTTPTransport)
        throws(CloudAuthError) -> String
    {
        let operation = "exchange the Entra ID token for an ACR refresh token at \(registryHost) (tenant \(tenant))"
        let form = [
            ("grant_type", "access_token"), ("service", registryHost), ("tenant", tenant),
            ("access_token", accessToken),
        ]
        .map { "\(SignatureV4.uriEncode($0.0))=\(SignatureV4.uriEncode($0.1))" }.joined(separator: "&")
        var request = HTTPRequest(
            method: .post, url: base.appendingPathComponent("oauth2/exchange"), body: .data(Data(form.utf8)))
        request.headers["Content-Type"] = "application/x-www-form-urlencoded"
        let response = try CloudHTTP(transport: transport, trust: trust, secrets: [accessToken]).send(
            request, operation: operation)
        struct Answer: Decodable {
            var refresh_token: String?
        }
        guard response.status == 200 else {
            var reason =
                "HTTP \(response.status) "
                + CloudAuthError.sanitized(
                    String(decoding: response.body.prefix(400), as: UTF8.self), hiding: [accessToken])
            if tenantID != nil { reason += "; azure_tenant_id must be the registry's tenant, not the worker's" }
            throw CloudAuthError(.refused, operation, reason)
        }
        guard
            let token = try decodeJSON(Answer.self, response.body, operation: operation, what: "refresh_token")
                .refresh_token, !token.isEmpty
        else {
            throw CloudAuthError(.invalidAnswer, operation, "the answer has an empty refresh_token")
        }
        return token
    }
}
