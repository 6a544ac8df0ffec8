import Foundation
import OCI
import Registry
import TagPolicy
import TestSupport
import Testing

/// The invariants a team relies on, checked on the real registry after every build of a
/// lifecycle scenario:
///
/// - an immutable tag (the first tag template of a source-keyed resource, an `inputs-`
///   cache tag, a full release version) never points at a different image once pushed;
/// - a floating tag never moves to an image built from an older commit (an ancestor of the
///   commit of the image it pointed at);
/// - after the reaper, no tag reaches an image that only a deleted branch needed, and every
///   tag left still pulls completely (`skopeo copy --all`);
/// - no job fails, and no job runs twice with the same inputs.
final class RegistryInvariants: @unchecked Sendable {
    let registry: TestRegistry
    let client: RegistryClient
    let git: TestGitRepository
    let scratch: URL
    private(set) var violations: [String] = []
    /// repository → tag → every digest it pointed at, in order.
    private(set) var history: [String: [String: [String]]] = [:]
    private var immutable: [String: [NSRegularExpression]] = [:]
    private var labelCache: [String: [String: String]] = [:]

    init(registry: TestRegistry, git: TestGitRepository, scratch: URL) throws {
        self.registry = registry
        self.client = try registry.client()
        self.git = git
        self.scratch = scratch
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    /// Learns which tags are immutable from the pipelines' resources.
    func learn(_ model: ConcourseModel) {
        for name in model.pipelineOrder {
            guard let pipeline = model.pipelines[name] else { continue }
            for resource in pipeline.config.resources.values
            where resource.type == "slipway" && resource.source["git"] != nil {
                guard let repository = (resource.source["repository"] as? String).map(Self.repositoryPath) else {
                    continue
                }
                let trackBase =
                    resource.source["track_base"] != nil && !(resource.source["track_base"] is NSNull)
                    && resource.source["track_base"] as? Bool != false
                let first =
                    (resource.source["tags"] as? [String])?.first
                    ?? (trackBase ? "{short_ref}-{short_base}" : "{short_ref}")
                if let pattern = Self.pattern(first),
                    !(immutable[repository] ?? []).contains(where: { $0.pattern == pattern.pattern })
                {
                    immutable[repository, default: []].append(pattern)
                }
            }
        }
    }

    static func repositoryPath(_ reference: String) -> String {
        guard let slash = reference.firstIndex(of: "/") else { return reference }
        return String(reference[reference.index(after: slash)...])
    }

    /// A tag template as a regular expression over the tags it makes.
    static func pattern(_ template: String) -> NSRegularExpression? {
        var regex = NSRegularExpression.escapedPattern(for: template)
        for (placeholder, replacement) in [
            ("{short_ref}", "[0-9a-f]{12}"), ("{short_base}", "[0-9a-f]{12}"), ("{ref}", "[0-9a-f]{40}"),
            ("{release}", "[A-Za-z0-9_.-]+"), ("{tag_file}", "[A-Za-z0-9_.-]+"), ("{branch}", "[A-Za-z0-9_.-]+"),
        ] {
            regex = regex.replacingOccurrences(
                of: NSRegularExpression.escapedPattern(for: placeholder), with: replacement)
        }
        guard !template.contains("{branch}") else { return nil }  // a branch's tag floats
        return try? NSRegularExpression(pattern: "^\(regex)$")
    }

    static let cacheOrRelease = try! NSRegularExpression(pattern: #"^(inputs-[0-9a-f]{64}|v?[0-9]+\.[0-9]+\.[0-9]+)$"#)

    func isImmutable(_ repository: String, _ tag: String) -> Bool {
        let range = NSRange(tag.startIndex..., in: tag)
        if Self.cacheOrRelease.firstMatch(in: tag, range: range) != nil { return true }
        return (immutable[repository] ?? []).contains { $0.firstMatch(in: tag, range: range) != nil }
    }

    func record(_ violation: String) { violations.append(violation) }

    /// Every tag of every repository now, as `[repository: [tag: digest]]`.
    func snapshot() throws -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        for repository in try catalog() {
            var tags: [String: String] = [:]
            for tag in try client.tags(try Repository(repository)) {
                if let descriptor = try client.manifestDescriptor(try Repository(repository), .tag(tag)) {
                    tags[tag.rawValue] = descriptor.digest.rawValue
                }
            }
            result[repository] = tags
        }
        return result
    }

    /// The repositories the registry holds (its catalog).
    func catalog() throws -> [String] {
        // The distribution registry's storage lists repositories as directories with _manifests.
        let root = registry.storageDirectory.appendingPathComponent("docker/registry/v2/repositories")
        var repositories: [String] = []
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            if url.lastPathComponent == "_manifests" {
                repositories.append(String(url.deletingLastPathComponent().path.dropFirst(root.path.count + 1)))
                enumerator?.skipDescendants()
            } else if url.lastPathComponent.hasPrefix("_") {
                enumerator?.skipDescendants()
            }
        }
        return repositories.sorted()
    }

    /// Compares the registry with what it was: immutable tags that moved, floating tags
    /// that went back to an older commit.
    func observe(after what: String) throws {
        for (repository, tags) in try snapshot() {
            for (tag, digest) in tags {
                let seen = history[repository]?[tag] ?? []
                defer { if seen.last != digest { history[repository, default: [:]][tag, default: []].append(digest) } }
                guard let previous = seen.last, previous != digest else { continue }
                if isImmutable(repository, tag), seen.contains(where: { $0 != digest }) {
                    record("immutable tag \(repository):\(tag) moved from \(previous) to \(digest) (after \(what))")
                    continue
                }
                guard let old = try revision(repository, previous), let new = try revision(repository, digest),
                    old != new
                else { continue }
                if try isAncestor(new, of: old) {
                    record(
                        "floating tag \(repository):\(tag) moved back from \(old.prefix(12)) to its ancestor \(new.prefix(12)) (after \(what))"
                    )
                }
            }
        }
    }

    func isAncestor(_ commit: String, of other: String) throws -> Bool {
        let result = try runProcess(
            "/usr/bin/git", ["-C", git.path.path, "merge-base", "--is-ancestor", commit, other])
        return result.status == 0
    }

    /// The image's labels (an index: its first manifest's).
    func labels(_ repository: String, _ digest: String) throws -> [String: String] {
        if let cached = labelCache[digest] { return cached }
        let repo = try Repository(repository)
        var manifest = try client.manifest(repo, .digest(try Digest(digest))).decode()
        if let index = manifest.index, let first = index.manifests.first {
            manifest = try client.manifest(repo, .digest(first.digest)).decode()
        }
        guard let image = manifest.image else { return [:] }
        let file = scratch.appendingPathComponent("config-\(image.config.digest.encoded)")
        if !FileManager.default.fileExists(atPath: file.path) { try client.downloadBlob(repo, image.config, to: file) }
        let configuration = try JSONDecoder().decode(ImageConfiguration.self, from: Data(contentsOf: file))
        let labels = configuration.config?.labels ?? [:]
        labelCache[digest] = labels
        return labels
    }

    func revision(_ repository: String, _ digest: String) throws -> String? {
        try labels(repository, digest)["org.opencontainers.image.revision"]
    }

    /// After the reaper: a tag whose image was built on a deleted branch must share its image
    /// with a tag the reaper keeps by rule (a live branch's floating tag, or a tag no branch
    /// owns: a release, `stable`, an environment); and every tag still pulls.
    func checkReaped(deletedBranches: [String], before: [String: [String: String]], model: ConcourseModel) throws {
        let now = try snapshot()
        for (repository, tags) in protectedTags(model) {
            for tag in tags.sorted() where before[repository]?[tag] != nil && now[repository]?[tag] == nil {
                record("the reaper removed \(repository):\(tag), which a live pipeline's version or branch still uses")
            }
        }
        let deleted = Set(deletedBranches)
        let deletedTags = deletedBranches.map { TagSanitizer.sanitize($0) }
        for (repository, tags) in try snapshot() {
            for (tag, digest) in tags {
                guard let branch = try labels(repository, digest)["dev.slipway.branch"], deleted.contains(branch) else {
                    continue
                }
                let keepers = tags.filter { $0.value == digest }.map(\.key).filter { other in
                    !isImmutable(repository, other)
                        && !deletedTags.contains { other == $0 || other.hasPrefix($0 + "-") }
                }
                if keepers.isEmpty {
                    record(
                        "\(repository):\(tag) still reaches \(digest), built on deleted branch \(branch), with no kept tag sharing it"
                    )
                }
            }
        }
        try checkPulls()
    }

    /// The tags live pipelines still need: each saved version's immutable tag and each
    /// source-keyed resource's floating branch tags, rendered from its templates.
    func protectedTags(_ model: ConcourseModel) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for name in model.pipelineOrder {
            guard let pipeline = model.pipelines[name] else { continue }
            for resource in pipeline.config.resources.values where resource.type == "slipway" {
                guard let git = resource.source["git"] as? [String: Any],
                    let repository = (resource.source["repository"] as? String).map(Self.repositoryPath),
                    let branch = git["branch"] as? String, git["tag_filter"] == nil, git["tag_regex"] == nil
                else { continue }
                let templates = (resource.source["tags"] as? [String]) ?? ["{short_ref}", "{branch}"]
                for (index, template) in templates.enumerated() {
                    if index == 0 {
                        for version in pipeline.versions[resource.name] ?? [] {
                            if let tag = Self.render(template, version: version, branch: branch) {
                                result[repository, default: []].insert(tag)
                            }
                        }
                    } else if template.contains("{branch}"), !template.contains("{short_ref}") {
                        if let tag = Self.render(template, version: [:], branch: branch) {
                            result[repository, default: []].insert(tag)
                        }
                    }
                }
            }
        }
        return result
    }

    /// A tag template rendered for a version, or nil when a placeholder has no value.
    static func render(_ template: String, version: [String: String], branch: String) -> String? {
        var result = template
        let base = version["base"].map { String($0.split(separator: ":").last ?? "") }
        let values: [String: String?] = [
            "{ref}": version["ref"], "{short_ref}": version["ref"].map { String($0.prefix(12)) },
            "{short_base}": base.map { String($0.prefix(12)) }, "{branch}": TagSanitizer.sanitize(branch),
            "{tag_file}": version["tag_file"], "{release}": version["release"],
        ]
        for (placeholder, value) in values where result.contains(placeholder) {
            guard let value else { return nil }
            result = result.replacingOccurrences(of: placeholder, with: value)
        }
        return result
    }

    /// Every tag pulls completely, every platform, with skopeo.
    func checkPulls() throws {
        for (repository, tags) in try snapshot() {
            for tag in tags.keys.sorted() {
                let destination = scratch.appendingPathComponent("pull-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: destination) }
                var arguments = ["copy", "--all", "--quiet", "--src-cert-dir", try certDirectory().path]
                if let username = registry.username, let password = registry.password {
                    arguments += ["--src-creds", "\(username):\(password)"]
                }
                arguments += ["docker://\(registry.host)/\(repository):\(tag)", "oci:\(destination.path):x"]
                let copy = try runProcess("/usr/bin/skopeo", arguments)
                if !copy.succeeded { record("\(repository):\(tag) does not pull: \(copy.stderrString.prefix(300))") }
            }
        }
    }

    private func certDirectory() throws -> URL {
        let directory = scratch.appendingPathComponent("certs")
        if let pem = registry.caCertificatePEM, !FileManager.default.fileExists(atPath: directory.path) {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try pem.write(to: directory.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        }
        return directory
    }

    /// No failed build, no job built twice from the same inputs, no failed check (Concourse
    /// would show the resource errored).
    func checkBuilds(_ model: ConcourseModel) {
        for name in model.pipelineOrder {
            guard let pipeline = model.pipelines[name] else { continue }
            for (resource, error) in pipeline.checkFailures {
                record("\(name)/\(resource): check failed: \(error)")
            }
            var seen: [String: Int] = [:]
            for build in pipeline.builds {
                if build.status == .failed {
                    record("\(name)/\(build.job) build \(build.id) failed: \(build.failure ?? "")")
                }
                let key =
                    build.job + " "
                    + build.inputs.map { "\($0.name)=\($0.version.sorted { $0.key < $1.key })" }.sorted().joined(
                        separator: " ")
                if let earlier = seen[key] {
                    record("\(name)/\(build.job) ran twice with the same inputs (builds \(earlier) and \(build.id))")
                }
                seen[key] = build.id
            }
        }
    }
}
