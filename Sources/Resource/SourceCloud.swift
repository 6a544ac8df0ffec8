import CloudAuth
import Console
import Foundation
import HTTP
import OCI
import Registry
import Synchronization

/// ECR or ACR credentials asked for in `source` (registry-image's `aws_*` and `azure_*` keys).
///
/// Parsing needs no network; the login happens on the first `Source.client(log:)` and its
/// result is kept for the rest of the process, so `in` with base tracking logs in once.
public final class CloudLogin: Sendable, CustomStringConvertible {
    public enum Provider: Sendable {
        case ecr(ECRLogin)
        case acr(ACRLogin)
    }

    public let provider: Provider
    /// The repository as written, when it names no registry and no account: the registry is
    /// the one ECR's answer names (registry-image's rule), known only after the login.
    let bareRepository: String?
    private let cached = Mutex<RegistryLogin?>(nil)

    init(_ provider: Provider, bareRepository: String? = nil) {
        self.provider = provider
        self.bareRepository = bareRepository
    }

    public var description: String {
        switch provider {
        case .ecr(let login): "ECR in \(login.region)"
        case .acr(let login): "ACR \(login.registryHost)"
        }
    }

    /// The registry credentials, logging in on first use.
    /// - Parameter plainHTTPAllowed: `insecure`, or a registry that may speak plain HTTP by
    ///   itself (``RegistryHost/mayUsePlainHTTP``), as the registry client decides.
    func credentials(insecure: Bool, plainHTTPAllowed: Bool, caCertificates: [String], log: Log) throws -> Credentials {
        let login = try self.login(
            insecure: insecure, plainHTTPAllowed: plainHTTPAllowed, caCertificates: caCertificates, log: log)
        return Credentials.basic(username: login.username, password: login.password)
    }

    /// Logs in once per process; later calls return the first answer.
    func login(insecure: Bool, plainHTTPAllowed: Bool, caCertificates: [String], log: Log) throws -> RegistryLogin {
        if let known = cached.withLock({ $0 }) { return known }
        log.debug("logging in to \(self)")
        let login: RegistryLogin
        switch provider {
        case .ecr(let ecr): login = try ecr.login()
        case .acr(let acr):
            // The exchange is on the registry's host, so it is trusted exactly as the registry is.
            let trust = TLSTrust(additionalCertificates: caCertificates, verifyPeer: !insecure)
            login = try acr.login(trust: trust, plainHTTPAllowed: plainHTTPAllowed)
        }
        cached.withLock { $0 = login }
        return login
    }
}

extension Source {
    static let awsKeys = [
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region", "aws_ecr_registry_id",
        "aws_role_arn", "aws_role_arns", "aws_account_id",
    ]
    static let azureKeys = ["azure_acr", "azure_client_id", "azure_tenant_id", "azure_environment"]
    static let cloudKeys = awsKeys + azureKeys

    /// The cloud login the source asks for and the repository text to parse (ECR builds the
    /// host from `aws_account_id`), or nil when no `aws_*`/`azure_*` key is set.
    static func cloudLogin(_ source: InputObject, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(InputError) -> (repository: String, login: CloudLogin)?
    {
        let aws = awsKeys.filter(source.has)
        let azure = azureKeys.filter(source.has)
        if aws.isEmpty && azure.isEmpty { return nil }
        if let key = aws.first, !azure.isEmpty {
            throw InputError(
                "source.\(key) (ECR) and source.\(azure[0]) (ACR) cannot be combined; a repository lives in one registry"
            )
        }
        for key in ["username", "password"] where source.has(key) {
            let cloud = aws.isEmpty ? "azure_acr" : "aws_* keys"
            throw InputError(
                "source.\(key) cannot be combined with \(cloud): the cloud login supplies the registry credentials; remove one"
            )
        }
        let repository = try source.requiredString("repository")
        return aws.isEmpty
            ? try acrLogin(source, repository: repository, environment: environment)
            : try ecrLogin(source, repository: repository, environment: environment)
    }

    /// ECR is used when `aws_region` is set, as in registry-image.
    private static func ecrLogin(_ source: InputObject, repository: String, environment: [String: String])
        throws(InputError) -> (repository: String, login: CloudLogin)
    {
        guard let region = try source.string("aws_region"), !region.isEmpty else {
            let key = awsKeys.first(where: source.has)!
            throw InputError("source.\(key) needs source.aws_region: ECR is used only when aws_region is set")
        }
        guard region.range(of: #"^[a-z]{2}(-[a-z]+)+-[0-9]+$"#, options: .regularExpression) != nil else {
            throw source.invalid(
                "aws_region", "\"\(InputObject.printable(region))\" is not an AWS region such as us-east-1")
        }
        let explicit = try awsCredentials(source)
        let roles = try awsRoles(source)
        let accounts = try awsAccounts(source)
        let login = ECRLogin(
            region: region,
            credentials: AWSCredentialChain(explicit: explicit, environment: AWSEnvironment(environment)),
            roleARNs: roles, registryIDs: accounts["aws_ecr_registry_id"].map { [$0] } ?? [])

        // A repository that names its host is used as it is; a bare name gets the ECR host.
        if hasExplicitHost(repository) {
            if accounts["aws_account_id"] != nil {
                throw InputError(
                    "source.aws_account_id builds the registry host, but source.repository already names one; give a repository without host, or drop aws_account_id"
                )
            }
            return (repository, CloudLogin(.ecr(login)))
        }
        guard let account = accounts["aws_account_id"] ?? accounts["aws_ecr_registry_id"] else {
            // Neither: the registry is the one ECR's answer names, as registry-image takes it.
            return (repository, CloudLogin(.ecr(login), bareRepository: repository))
        }
        return (
            "\(account).dkr.ecr.\(region).\(AWSEnvironment.domain(region: region))/\(repository)",
            CloudLogin(.ecr(login))
        )
    }

    /// `aws_access_key_id` and `aws_secret_access_key` (both or neither), with `aws_session_token`.
    private static func awsCredentials(_ source: InputObject) throws(InputError) -> AWSCredentials? {
        let keyID = try source.string("aws_access_key_id").flatMap { $0.isEmpty ? nil : $0 }
        let secret = try source.string("aws_secret_access_key").flatMap { $0.isEmpty ? nil : $0 }
        let token = try source.string("aws_session_token").flatMap { $0.isEmpty ? nil : $0 }
        switch (keyID, secret) {
        case (let id?, let secret?):
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
        case (nil, nil):
            if token != nil {
                throw InputError(
                    "source.aws_session_token needs source.aws_access_key_id and source.aws_secret_access_key")
            }
            return nil
        case (_?, nil): throw InputError("source.aws_access_key_id is set but source.aws_secret_access_key is not")
        case (nil, _?): throw InputError("source.aws_secret_access_key is set but source.aws_access_key_id is not")
        }
    }

    /// `aws_role_arn` or `aws_role_arns`: the roles assumed in turn.
    private static func awsRoles(_ source: InputObject) throws(InputError) -> [String] {
        let single = try source.string("aws_role_arn").flatMap { $0.isEmpty ? nil : $0 }
        let chain = try source.strings("aws_role_arns") ?? []
        if single != nil && !chain.isEmpty {
            throw InputError(
                "source.aws_role_arn and source.aws_role_arns cannot both be set; list every role in aws_role_arns")
        }
        let roles = single.map { [$0] } ?? chain
        for (index, role) in roles.enumerated()
        where role.range(of: #"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"#, options: .regularExpression) == nil {
            let key = single != nil ? "aws_role_arn" : "aws_role_arns[\(index)]"
            throw InputError(
                "source.\(key): \"\(InputObject.printable(role))\" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        }
        return roles
    }

    /// `aws_account_id` and `aws_ecr_registry_id`, by key: 12-digit ids naming one registry.
    private static func awsAccounts(_ source: InputObject) throws(InputError) -> [String: String] {
        var accounts: [String: String] = [:]
        for key in ["aws_account_id", "aws_ecr_registry_id"] {
            guard let value = try source.string(key), !value.isEmpty else { continue }
            guard value.count == 12, value.allSatisfy(\.isASCII), value.allSatisfy(\.isNumber) else {
                throw source.invalid(key, "\"\(InputObject.printable(value))\" is not a 12-digit AWS account id")
            }
            accounts[key] = value
        }
        if let account = accounts["aws_account_id"], let registry = accounts["aws_ecr_registry_id"], account != registry
        {
            throw InputError(
                "source.aws_account_id (\(account)) and source.aws_ecr_registry_id (\(registry)) name different registries; give one"
            )
        }
        return accounts
    }

    /// ACR is used when `azure_acr` is true, as in registry-image.
    private static func acrLogin(_ source: InputObject, repository: String, environment: [String: String])
        throws(InputError) -> (repository: String, login: CloudLogin)
    {
        guard try source.bool("azure_acr") == true else {
            let key = azureKeys.first { source.has($0) && $0 != "azure_acr" } ?? "azure_acr"
            if key == "azure_acr" {
                throw InputError("source.azure_acr is false while no other azure_* key is set; remove it")
            }
            throw InputError("source.\(key) needs source.azure_acr: true")
        }
        guard hasExplicitHost(repository), let host = repository.split(separator: "/").first.map(String.init) else {
            throw source.invalid(
                "repository",
                "with azure_acr, name the registry, e.g. myregistry.azurecr.io/\(InputObject.printable(repository))")
        }
        var cloud = AzureCloud.detect(registryHost: host)
        if let name = try source.string("azure_environment"), !name.isEmpty {
            guard let chosen = AzureCloud(rawValue: name) else {
                throw source.invalid(
                    "azure_environment",
                    "\"\(InputObject.printable(name))\" is not one of \(AzureCloud.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            cloud = chosen
        }
        let clientID = try source.string("azure_client_id").flatMap { $0.isEmpty ? nil : $0 }
        let tenantID = try source.string("azure_tenant_id").flatMap { $0.isEmpty ? nil : $0 }
        for (key, value) in [("azure_client_id", clientID), ("azure_tenant_id", tenantID)] {
            guard let value else { continue }
            guard value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) else {
                throw source.invalid(key, "\"\(InputObject.printable(value))\" is not an Entra ID identifier (a GUID)")
            }
        }
        return (
            repository,
            CloudLogin(
                .acr(
                    ACRLogin(
                        registryHost: host, cloud: cloud, clientID: clientID, tenantID: tenantID,
                        environment: AzureEnvironment(environment))))
        )
    }

    /// Docker's rule: the first component is a host when it has a `.` or `:` or is `localhost`.
    static func hasExplicitHost(_ repository: String) -> Bool {
        guard let slash = repository.firstIndex(of: "/") else { return false }
        let first = repository[..<slash]
        return first.contains(".") || first.contains(":") || first == "localhost"
    }
}

extension Source {
    /// The source with its registry known: for a bare ECR repository (no host, no
    /// `aws_account_id`), the login is done now and the registry is the one ECR names.
    /// Every command calls this once, before anything names the registry.
    public func resolvingRegistry(log: Log) throws -> Source {
        guard let cloud, let bare = cloud.bareRepository else { return self }
        let login = try cloud.login(
            insecure: insecure, plainHTTPAllowed: insecure, caCertificates: caCertificates, log: log)
        guard let host = login.registry else {
            throw InputError(
                "source.repository \"\(InputObject.printable(bare))\" names no registry and ECR's answer named none; write the registry host in source.repository or set source.aws_account_id"
            )
        }
        var resolved = self
        do {
            let reference = try ImageReference("\(host)/\(bare)")
            resolved.registry = reference.registry
            resolved.repository = reference.repository
        } catch {
            throw InputError(
                "source.repository: \"\(host)/\(InputObject.printable(bare))\" (the registry ECR names, then the repository) is not a repository: \(error)"
            )
        }
        log.debug("ECR names the registry \(host)")
        return resolved
    }
}
