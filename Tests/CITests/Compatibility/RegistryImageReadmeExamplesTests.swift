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
        let path = repository.split(separator: "/").first.map { $0.contains(".") || $0.contains(":") } == true
            ? repository.split(separator: "/").dropFirst().joined(separator: "/") : repository
        source["repository"] = "\(registry)/\(path)"
        let json = String(decoding: try JSONSerialization.data(withJSONObject: source, options: [.sortedKeys]), as: UTF8.self)
        return (try #require(resource["type"] as? String), json)
    }

    static func run(_ command: String, _ input: String, _ arguments: [String] = [], home: URL) throws -> ProcessResult {
        try runProcess(try builtProduct(command).path, arguments, stdin: Data(input.utf8),
                       environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home.path])
    }

    static func push(_ layout: URL, to reference: String) throws {
        try runProcess("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", "oci:\(layout.path):latest", "docker://\(reference)"]).checked()
    }

    static func tags(_ result: ProcessResult) throws -> [String] {
        try #require(result.succeeded, "\(result.stderrString)")
        let versions = try JSONDecoder().decode([[String: String]].self, from: result.stdout)
        return versions.compactMap { $0["tag"] }
    }

    /// README, "`check` Step … without `tag` or `tag_regex`: discover semver tags", and
    /// "Variant tags": the semver tags, and with `variant` only that variant's.
    @Test func semverAndVariantExamplesDiscoverTheTagsTheReadmeLists() async throws {
        let plain = Example(section: "check without tag or tag_regex: discover semver tags", yaml: """
            resources:
            - name: concourse
              type: registry-image
              source: {repository: concourse/concourse}
            """)
        let variant = Example(section: "Variant tags", yaml: """
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
                    try ImageFixture.image(in: try OCILayout.create(at: layout), name: "latest", layerCount: 1, seed: tag)
                    for name in [tag] + aliases[tag, default: []] { try Self.push(layout, to: "\(registry.host)/concourse/concourse:\(name)") }
                }
                let (type, source) = try Self.source(of: plain, registry: registry.host)
                #expect(type == "slipway")
                #expect(try Self.tags(Self.run("check", #"{"source":\#(source)}"#, home: directory.url)) == ["1.6.0", "2.0.0"])
                let (_, variantSource) = try Self.source(of: variant, registry: registry.host)
                #expect(try Self.tags(Self.run("check", #"{"source":\#(variantSource)}"#, home: directory.url)) == ["5.2.1-ubuntu", "5.2.2-ubuntu"])
            }
        }
    }
}
