import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing
import Yams

/// The resource examples of registry-image-resource's README, as a team would paste them:
/// only `type: registry-image` is changed (to `slipway`) and the registry host pointed at
/// a real registry on loopback. Each must behave as that README says it does.
@Suite("registry-image's README examples, with only the type swapped")
struct RegistryImageReadmeExamplesTests {
    /// One example: its YAML as the README prints it, and where.
    struct Example {
        let section: String
        let yaml: String
    }

    /// The example's resource as Slipway receives it: type swapped, registry on loopback.
    static func source(of example: Example, registry: String) throws -> (type: String, source: String) {
        let swapped = example.yaml.replacingOccurrences(of: "type: registry-image", with: "type: slipway")
        let document = try #require(try Yams.load(yaml: swapped) as? [String: Any])
        let resource = try #require((document["resources"] as? [[String: Any]])?.first)
        var source = try #require(resource["source"] as? [String: Any])
        let repository = try #require(source["repository"] as? String)
        // A repository without a registry is Docker Hub's; one with a host keeps its path.
        let path =
            repository.split(separator: "/").first.map { $0.contains(".") || $0.contains(":") } == true
            ? repository.split(separator: "/").dropFirst().joined(separator: "/") : repository
        source["repository"] = "\(registry)/\(path)"
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: source, options: [.sortedKeys]), as: UTF8.self)
        return (try #require(resource["type"] as? String), json)
    }

    static func run(_ command: String, _ input: String, _ arguments: [String] = [], home: URL) throws -> ProcessResult {
        try runProcess(
            try builtProduct(command).path, arguments, stdin: Data(input.utf8),
            environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home.path])
    }

    static func push(_ layout: URL, to reference: String) throws {
        try runProcess(
            "skopeo",
            ["copy", "--quiet", "--dest-tls-verify=false", "oci:\(layout.path):latest", "docker://\(reference)"]
        ).checked()
    }

    static func tags(_ result: ProcessResult) throws -> [String] {
        try #require(result.succeeded, "\(result.stderrString)")
        let versions = try JSONDecoder().decode([[String: String]].self, from: result.stdout)
        return versions.compactMap { $0["tag"] }
    }

    /// README, "`check` Step … without `tag` or `tag_regex`: discover semver tags", and
    /// "Variant tags": the semver tags, and with `variant` only that variant's.
    @Test func semverAndVariantExamplesDiscoverTheTagsTheReadmeLists() async throws {
        let plain = Example(
            section: "check without tag or tag_regex: discover semver tags",
            yaml: """
                resources:
                - name: concourse
                  type: registry-image
                  source: {repository: concourse/concourse}
                """)
        let variant = Example(
            section: "Variant tags",
            yaml: """
                resources:
                - name: concourse
                  type: registry-image
                  source:
                    repository: concourse/concourse
                    variant: ubuntu
                """)
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                // One image per version; `latest` and `ubuntu` alias the newest, as on Docker Hub
                // (a bare tag on an image no version names would be listed last, as registry-image does).
                let aliases = ["2.0.0": ["latest"], "5.2.2-ubuntu": ["ubuntu"]]
                for tag in ["1.6.0", "2.0.0", "5.2.1-ubuntu", "5.2.2-ubuntu", "5.2.2-php7.3-ubuntu"] {
                    let layout = directory.appending("layout-\(tag)")
                    try ImageFixture.image(
                        in: try OCILayout.create(at: layout), name: "latest", layerCount: 1, seed: tag)
                    for name in [tag] + aliases[tag, default: []] {
                        try Self.push(layout, to: "\(registry.host)/concourse/concourse:\(name)")
                    }
                }
                let (type, source) = try Self.source(of: plain, registry: registry.host)
                #expect(type == "slipway")
                #expect(
                    try Self.tags(Self.run("check", #"{"source":\#(source)}"#, home: directory.url)) == [
                        "1.6.0", "2.0.0",
                    ])
                let (_, variantSource) = try Self.source(of: variant, registry: registry.host)
                #expect(
                    try Self.tags(Self.run("check", #"{"source":\#(variantSource)}"#, home: directory.url)) == [
                        "5.2.1-ubuntu", "5.2.2-ubuntu",
                    ])
            }
        }
    }

    /// README, "`get` Step Metadata": matching labels and annotations become metadata fields.
    @Test func metadataRegexExampleSurfacesTheLabelsAndAnnotationsItNames() async throws {
        let example = Example(
            section: "get Step Metadata",
            yaml: #"""
                resources:
                - name: my-image
                  type: registry-image
                  source:
                    repository: my-org/my-app
                    label_regex: "^org\\.opencontainers\\.image\\."
                    annotation_regex: "^com\\.example\\."
                """#)
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = directory.appending("layout")
                let labels = ["org.opencontainers.image.version": "1.2.3", "maintainer": "someone"]
                try ImageFixture.image(
                    in: try OCILayout.create(at: layout), name: "latest", layerCount: 1, seed: "meta", labels: labels)
                // The annotation goes on the manifest as a registry receives it: skopeo copies the layout's manifest as it is.
                try Self.annotate(layout, ["com.example.git-sha": "4e5c4ea", "org.example.other": "x"])
                try Self.push(layout, to: "\(registry.host)/my-org/my-app:1.2.3")
                let (_, source) = try Self.source(of: example, registry: registry.host)
                let check = try Self.run("check", #"{"source":\#(source)}"#, home: directory.url)
                let version = try #require(try JSONDecoder().decode([[String: String]].self, from: check.stdout).last)
                let input =
                    #"{"source":\#(source),"version":{"tag":"\#(version["tag"]!)","digest":"\#(version["digest"]!)"},"params":{"skip_download":true}}"#
                let get = try Self.run("in", input, [directory.appending("get").path], home: directory.url)
                try #require(get.succeeded, "\(get.stderrString)")
                let answer = try #require(try JSONSerialization.jsonObject(with: get.stdout) as? [String: Any])
                let metadata = Dictionary(
                    ((answer["metadata"] as? [[String: String]]) ?? []).map { ($0["name"]!, $0["value"]!) }
                ) { $1 }
                #expect(metadata["org.opencontainers.image.version"] == "1.2.3")
                #expect(metadata["com.example.git-sha"] == "4e5c4ea")
                #expect(metadata["maintainer"] == nil && metadata["org.example.other"] == nil)
            }
        }
    }

    /// README, "Signing with Docker Hub": Notary v1 is retired, so the example is refused in
    /// one line that says what to use, with none of its secrets.
    @Test func contentTrustExampleIsRefusedInOneLineWithoutItsSecrets() async throws {
        let example = Example(
            section: "Signing with Docker Hub",
            yaml: """
                resources:
                - name: trusted-image
                  type: registry-image
                  source:
                    repository: docker.io/foo/bar
                    username: jertel
                    password: my_docker_hub_token
                    content_trust:
                      repository_key_id: 1452a842871e529ffc2be29a012618e1b2a0e6984a89e92e34b5a0fc21a04cd
                      repository_key: |
                        -----BEGIN ENCRYPTED PRIVATE KEY-----
                        MIhsj2sd41fwaa...
                        -----END ENCRYPTED PRIVATE KEY-----
                      repository_passphrase: my_dct_key_passphrase
                """)
        try withTemporaryDirectory { directory in
            let (_, source) = try Self.source(of: example, registry: "127.0.0.1:9")
            let check = try Self.run("check", #"{"source":\#(source)}"#, home: directory.url)
            #expect(!check.succeeded)
            let lines = check.stderrString.split(whereSeparator: \.isNewline)
            #expect(
                lines.count == 1 && lines[0].contains("content_trust") && lines[0].contains("cosign"),
                "\(check.stderrString)")
            for secret in ["my_docker_hub_token", "MIhsj2sd41fwaa", "my_dct_key_passphrase"] {
                #expect(!check.stderrString.contains(secret))
            }
        }
    }

    /// README, "Azure Container Registry with Managed Identity": every example, through a
    /// loopback managed identity and ACR exchange in front of a real registry. The registry
    /// host is the fake's, so the cloud a domain names (`.azurecr.us`, `.azurecr.cn`) is not
    /// seen here: `AzureCloud.detect` is unit-tested for it; `azure_environment` is seen.
    @Test(arguments: [
        (
            "System-Assigned Managed Identity",
            "repository: myregistry.azurecr.io/myimage\n    tag: latest\n    azure_acr: true", nil as String?,
            "https://management.azure.com/"
        ),
        (
            "User-Assigned Managed Identity",
            "repository: myregistry.azurecr.io/myimage\n    tag: latest\n    azure_acr: true\n    azure_client_id: 11111111-2222-3333-4444-555555555555",
            "11111111-2222-3333-4444-555555555555", "https://management.azure.com/"
        ),
        (
            "Azure Government", "repository: myregistry.azurecr.us/myimage\n    tag: latest\n    azure_acr: true", nil,
            "https://management.azure.com/"
        ),
        (
            "Azure Government, explicit",
            "repository: myregistry.azurecr.us/myimage\n    tag: latest\n    azure_acr: true\n    azure_environment: AzureGovernment",
            nil, "https://management.usgovcloudapi.net/"
        ),
        (
            "Azure China", "repository: myregistry.azurecr.cn/myimage\n    tag: latest\n    azure_acr: true", nil,
            "https://management.azure.com/"
        ),
        (
            "AKS Kubelet Identity",
            "repository: myregistry.azurecr.io/myimage\n    tag: latest\n    azure_acr: true\n    azure_client_id: 11111111-2222-3333-4444-555555555555  # kubelet MI client ID",
            "11111111-2222-3333-4444-555555555555", "https://management.azure.com/"
        ),
    ])
    func acrExampleChecksAndGetsThroughManagedIdentity(
        section: String, sourceLines: String, clientID: String?, audience: String
    ) async throws {
        let example = Example(
            section: section,
            yaml: """
                resources:
                - name: my-acr-image
                  type: registry-image
                  source:
                    \(sourceLines)
                """)
        let refreshToken = "acr-refresh-" + UUID().uuidString
        try await withTestRegistry(.basic(username: "00000000-0000-0000-0000-000000000000", password: refreshToken)) {
            registry in
            try await withAzureFake(
                upstream: registry.baseURL, accessToken: "entra-" + UUID().uuidString, refreshToken: refreshToken,
                resource: audience, clientID: clientID, tenant: "common"
            ) { azure in
                try withTemporaryDirectory { directory in
                    let layout = directory.appending("layout")
                    try ImageFixture.image(
                        in: try OCILayout.create(at: layout), name: "latest", layerCount: 1, seed: section)
                    try runProcess(
                        "skopeo",
                        [
                            "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds",
                            "00000000-0000-0000-0000-000000000000:\(refreshToken)",
                            "oci:\(layout.path):latest", "docker://\(registry.host)/myimage:latest",
                        ]
                    ).checked()
                    let (_, source) = try Self.source(of: example, registry: azure.host)
                    let environment = [
                        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory.url.path,
                        "AZURE_POD_IDENTITY_AUTHORITY_HOST": azure.baseURL.absoluteString,
                    ]
                    let check = try runProcess(
                        try builtProduct("check").path, [], stdin: Data(#"{"source":\#(source)}"#.utf8),
                        environment: environment)
                    try #require(check.succeeded, "\(section): \(check.stderrString)")
                    let version = try #require(
                        try JSONDecoder().decode([[String: String]].self, from: check.stdout).first)
                    #expect(version["tag"] == "latest")
                    let input =
                        #"{"source":\#(source),"version":{"tag":"latest","digest":"\#(version["digest"]!)"},"params":{"format":"oci-layout"}}"#
                    let get = try runProcess(
                        try builtProduct("in").path, [directory.appending("get").path], stdin: Data(input.utf8),
                        environment: environment)
                    #expect(get.succeeded, "\(section): \(get.stderrString)")
                    #expect(!(check.stderrString + get.stderrString).contains(refreshToken))
                }
            }
        }
    }

    /// README, "Use in tasks": an anonymous resource pinned to a digest, as a task's
    /// `image_resource` (Concourse checks from the given version, then gets it).
    @Test func aTaskImagePinnedByDigestIsCheckedAndFetched() async throws {
        let yaml = """
            image_resource:
              type: docker-image
              source:
                repository: golang
              version:
                digest: 'sha256:5f640aeb8b78e9876546a9d06b928d2ad0c6e51900bcba10ff4e12dc57f6f265'
            """
        try await withTestRegistry(.open) { registry in
            try withTemporaryDirectory { directory in
                let layout = directory.appending("layout")
                try ImageFixture.image(
                    in: try OCILayout.create(at: layout), name: "latest", layerCount: 1, seed: "golang")
                try Self.push(layout, to: "\(registry.host)/golang:latest")
                let digest = try Digest.sha256(
                    runProcess(
                        "skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/golang:latest"]
                    ).checked().stdout)
                // The README's digest is Docker Hub's; the pin here is the same image's digest on the test registry.
                let pinned = yaml.replacingOccurrences(
                    of: "sha256:5f640aeb8b78e9876546a9d06b928d2ad0c6e51900bcba10ff4e12dc57f6f265", with: digest.rawValue
                )
                .replacingOccurrences(of: "type: docker-image", with: "type: slipway")
                let resource = try #require(
                    (try Yams.load(yaml: pinned) as? [String: Any])?["image_resource"] as? [String: Any])
                let repository =
                    "\(registry.host)/\(try #require((resource["source"] as? [String: Any])?["repository"] as? String))"
                let version = try #require(resource["version"] as? [String: String])
                let source = #"{"repository":"\#(repository)"}"#
                let check = try Self.run(
                    "check", #"{"source":\#(source),"version":{"digest":"\#(version["digest"]!)"}}"#,
                    home: directory.url)
                try #require(check.succeeded, "\(check.stderrString)")
                let get = try Self.run(
                    "in", #"{"source":\#(source),"version":{"digest":"\#(version["digest"]!)"}}"#,
                    [directory.appending("get").path], home: directory.url)
                #expect(get.succeeded, "\(get.stderrString)")
                #expect(FileManager.default.fileExists(atPath: directory.appending("get/rootfs/etc/layer0").path))
                #expect(try String(contentsOf: directory.appending("get/digest"), encoding: .utf8) == digest.rawValue)
            }
        }
    }

    /// Adds `annotations` to the manifest of the layout's `latest` image (a new manifest blob).
    static func annotate(_ layout: URL, _ annotations: [String: String]) throws {
        let image = try OCILayout(opening: layout)
        let descriptor = try image.image(named: "latest").descriptor
        var manifest = try #require(try Manifest.decode(image.blob(descriptor), mediaType: descriptor.mediaType).image)
        manifest.annotations = (manifest.annotations ?? [:]).merging(annotations) { $1 }
        let written = try image.writeBlob(try CanonicalJSON.encode(manifest), mediaType: .ociManifest)
        try image.addToIndex(written, name: "latest")
    }
}
