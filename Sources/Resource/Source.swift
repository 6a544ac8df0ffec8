import Console
import Foundation
import HTTP
import OCI
import Registry
import TagPolicy

/// `source`, validated: the registry part every mode shares, and the mode itself.
/// Keys are registry-image's where they mean the same, so users can switch.
public struct Source: Sendable {
    /// How versions are made.
    public enum Mode: Sendable {
        /// `tag` set: versions `{tag, digest}` follow that tag's digest (registry-image's tag mode).
        case tag(Tag)
        /// No `tag`: semver tags of the repository (registry-image's semver mode).
        case semver(SemverSelection)
        /// `tag_regex` set: every matching tag (registry-image's regex mode).
        case tagRegex(TagRegexSelection)
        /// `git` set: versions keyed on path-filtered commits.
        case sourceKeyed(SourceKeyed)
    }

    public var registry: RegistryHost
    public var repository: Repository
    public var credentials: Credentials?
    public var insecure: Bool
    public var caCertificates: [String]
    public var platform: Platform?
    public var debug: Bool
    public var mode: Mode
    /// ECR or ACR login (`aws_*`, `azure_*` keys), done on first use by `client(log:)`.
    public var cloud: CloudLogin?
    /// `label_regex` and `annotation_regex`: what `get` adds to its metadata.
    public var metadataPatterns = MetadataPatterns()
    /// `registry_mirror`: where reads of a Docker Hub repository go first.
    public var mirror: RegistryMirror?
    /// `sign` and `verify`: cosign signatures made on put, required on get.
    var trust = Trust()

    static let commonKeys = [
        "repository", "username", "password", "insecure", "ca_certs", "platform", "debug", "content_trust", "sign",
        "verify",
    ]
    static let imageKeys = [
        "tag", "variant", "semver_constraint", "pre_releases", "pre_release_prefixes",
        "tag_regex", "created_at_sort", "label_regex", "annotation_regex", "registry_mirror",
    ]
    static let sourceKeyedKeys = ["git", "tag_file", "tags", "latest_on", "track_base", "require_image", "tag_prefix"]

    public init(_ value: JSONValue?) throws(InputError) {
        guard let value, value != .null else { throw InputError("source is required") }
        let source = try InputObject(
            value, path: "source", keys: Self.commonKeys + Self.imageKeys + Self.sourceKeyedKeys + Self.cloudKeys,
            secrets: ["password", "aws_secret_access_key", "aws_session_token", "sign"])
        if source.has("content_trust") { throw InputError(Self.contentTrustRefusal) }
        trust = try Trust(source)
        let cloudLogin = try Self.cloudLogin(source)
        cloud = cloudLogin?.login
        let repositoryText =
            if let cloudLogin { cloudLogin.repository } else { try source.requiredString("repository") }
        let reference: ImageReference
        do { reference = try ImageReference(repositoryText) } catch {
            throw source.invalid("repository", "\(error)")
        }
        guard reference.tag == nil, reference.digest == nil else {
            throw source.invalid(
                "repository",
                "\"\(repositoryText)\" names a tag or digest; give the repository only (and `tag` for tag mode)")
        }
        registry = reference.registry
        repository = reference.repository

        credentials = try Self.credentials(source)
        insecure = try source.bool("insecure") ?? false
        caCertificates = try Self.caCertificates(source)
        debug = try source.bool("debug") ?? false
        platform = try Self.platform(source.object("platform", keys: ["os", "architecture", "variant"]))
        mirror = try source.object("registry_mirror", keys: RegistryMirror.keys, secrets: ["password"]).map(
            RegistryMirror.init)

        if source.has("git") {
            if let key = Self.imageKeys.first(where: source.has) {
                throw InputError(
                    "source.\(key) belongs to image mode; with source.git set, versions come from git (see `tags` templates)"
                )
            }
            mode = .sourceKeyed(try SourceKeyed(source))
            return
        }
        if let key = Self.sourceKeyedKeys.first(where: source.has) {
            throw InputError("source.\(key) needs source.git (source-keyed mode)")
        }
        metadataPatterns = try Self.metadataPatterns(source)
        mode = try Self.imageMode(source)
    }

    /// `username` and `password`: both or neither (empty counts as unset).
    static func credentials(_ source: InputObject) throws(InputError) -> Credentials? {
        let username = try source.string("username")
        let password = try source.string("password")
        switch (username.flatMap { $0.isEmpty ? nil : $0 }, password.flatMap { $0.isEmpty ? nil : $0 }) {
        case (let user?, let secret?): return .basic(username: user, password: secret)
        case (nil, nil): return nil
        case (_?, nil): throw InputError("source.username is set but source.password is not")
        case (nil, _?): throw InputError("source.password is set but source.username is not")
        }
    }

    /// `ca_certs`: PEM certificates.
    static func caCertificates(_ source: InputObject) throws(InputError) -> [String] {
        let caCertificates = try source.strings("ca_certs") ?? []
        for (index, certificate) in caCertificates.enumerated()
        where !certificate.contains("-----BEGIN CERTIFICATE-----") {
            throw InputError("source.ca_certs[\(index)]: expected a PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        return caCertificates
    }

    /// Image mode's versions: `tag_regex`, else `tag`, else semver tags with their settings.
    static func imageMode(_ source: InputObject) throws(InputError) -> Mode {
        if let regex = try Self.tagRegex(source) {
            return .tagRegex(regex)
        }
        if let tagText = try Self.tagText(source) {
            let tag: Tag
            do { tag = try Tag(tagText) } catch { throw source.invalid("tag", "\(error)") }
            for key in ["variant", "semver_constraint", "pre_releases", "pre_release_prefixes"] where source.has(key) {
                throw InputError("source.\(key) applies to semver mode, which is used only when source.tag is not set")
            }
            return .tag(tag)
        }
        var selection = SemverSelection()
        if let variant = try source.string("variant") {
            guard (try? Tag(variant)) != nil else {
                throw source.invalid("variant", "\"\(InputObject.printable(variant))\" is not a valid tag")
            }
            selection.variant = variant
        }
        if let text = try source.string("semver_constraint") {
            do { selection.constraint = try VersionConstraint(text) } catch { throw InputError("source.\(error)") }
        }
        selection.preReleases = try source.bool("pre_releases") ?? false
        if let prefixes = try source.strings("pre_release_prefixes") {
            guard selection.preReleases else {
                throw InputError("source.pre_release_prefixes needs source.pre_releases: true")
            }
            selection.preReleasePrefixes = prefixes
        }
        return .semver(selection)
    }

    /// A client for the source's registry; credentials from the source (or its cloud login), else a Docker config.
    public func client(log: Log, retry: RetryPolicy = .standard) throws -> RegistryClient {
        let credentials =
            try self.credentials
            ?? cloud?.credentials(
                insecure: insecure, plainHTTPAllowed: insecure || registry.mayUsePlainHTTP,
                caCertificates: caCertificates, log: log)
        return try RegistryClient(
            host: registry, credentials: credentials, insecure: insecure,
            caCertificates: caCertificates, retry: retry, log: log)
    }
}
