import Console
import Foundation
import ImageLayout
import OCI
import Registry

/// The single-platform manifest and the config of an image in a registry, read without its
/// layers: what `created_at_sort`, `label_regex` and `annotation_regex` look at. An index
/// gives the manifest for `platform` (nil: the host's), as registry-image's
/// `remote.Image` with `WithPlatform` does.
struct RemoteImage {
    var manifest: ImageManifest
    var configuration: ImageConfiguration

    /// Configs larger than this are refused; real ones are a few KiB.
    static let configLimit: Int64 = 8 << 20

    static func read(_ repository: Repository, _ reference: Reference, platform: Platform?, client: RegistryClient)
        throws -> RemoteImage
    {
        var manifest = try client.manifest(repository, reference).decode()
        if case .index(let index) = manifest {
            let chosen = try index.choose(platform, image: "\(repository)\(reference.separator)\(reference)")
            manifest = try client.manifest(repository, .digest(chosen.digest)).decode()
        }
        guard case .image(let image) = manifest else {
            throw InputError(
                "\(repository)\(reference.separator)\(reference): expected an image manifest inside the index, found another index"
            )
        }
        guard image.config.size <= configLimit else {
            throw InputError(
                "\(repository)\(reference.separator)\(reference): its config is \(image.config.size) bytes, more than a config can sensibly be"
            )
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "slipway-config-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try client.downloadBlob(repository, image.config, to: scratch)
        let configuration: ImageConfiguration
        do { configuration = try JSONDecoder().decode(ImageConfiguration.self, from: Data(contentsOf: scratch)) } catch
        {
            throw InputError(
                "\(repository)\(reference.separator)\(reference): its config \(image.config.digest) is not an image config"
            )
        }
        return RemoteImage(manifest: image, configuration: configuration)
    }

    /// registry-image's metadata from `label_regex` and `annotation_regex`: matching config
    /// labels, then matching manifest annotations, each group sorted by name.
    func metadata(_ patterns: MetadataPatterns) -> [[String: String]] {
        var fields: [[String: String]] = []
        if let labels = patterns.labels {
            let matches = labels.matcher()
            fields += (configuration.config?.labels ?? [:]).filter { matches($0.key) }.sorted { $0.key < $1.key }
                .map { ["name": $0.key, "value": $0.value] }
        }
        if let annotations = patterns.annotations {
            let matches = annotations.matcher()
            fields += (manifest.annotations ?? [:]).filter { matches($0.key) }.sorted { $0.key < $1.key }
                .map { ["name": $0.key, "value": $0.value] }
        }
        return fields
    }

    /// The config's `created` time; nil when absent or unreadable (registry-image's zero time,
    /// which sorts first).
    var created: Date? {
        guard let text = configuration.created else { return nil }
        return Self.parseRFC3339(text)
    }

    /// RFC 3339 with any number of fractional digits, as Go writes it (`2024-05-01T10:00:00.123456789Z`).
    static func parseRFC3339(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        // ISO8601DateFormatter takes at most milliseconds: cut the fraction to three digits.
        var trimmed = text
        if let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) {
            let fraction = text[text.index(after: dot)..<end]
            trimmed = String(text[..<dot]) + "." + String((fraction + "000").prefix(3)) + String(text[end...])
            formatter.formatOptions.insert(.withFractionalSeconds)
        }
        return formatter.date(from: trimmed)
    }
}

extension Check {
    /// registry-image's `tag_regex` mode: each listed tag the pattern matches (anywhere in
    /// the tag unless anchored) that resolves to a manifest, in the registry's listed order;
    /// with `created_at_sort`, oldest image first by the config's `created` time (images
    /// without one first), ties kept in listed order. Every check returns the whole list,
    /// as registry-image does; Concourse keeps the versions it has already seen.
    func checkTagRegex(_ selection: TagRegexSelection, source: Source, client: RegistryClient, log: Log) throws
        -> [ImageVersion]
    {
        let matches = selection.pattern.matcher()
        var found: [(version: ImageVersion, created: Date?)] = []
        for tag in try client.tags(source.repository) where matches(tag.rawValue) {
            guard let descriptor = try client.manifestDescriptor(source.repository, .tag(tag)) else { continue }
            let created =
                selection.createdAtSort
                ? try RemoteImage.read(source.repository, .tag(tag), platform: source.platform, client: client).created
                : nil
            found.append((ImageVersion(tag: tag.rawValue, digest: descriptor.digest), created))
        }
        if selection.createdAtSort {
            found = found.enumerated().sorted { a, b in
                let x = a.element.created ?? .distantPast
                let y = b.element.created ?? .distantPast
                return x != y ? x < y : a.offset < b.offset
            }.map(\.element)
        }
        return found.map(\.version)
    }
}
