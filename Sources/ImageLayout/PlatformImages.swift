import Foundation
import OCI

extension OCILayout {
    /// Makes the index named `name` list one image per platform of `platforms`, in that
    /// order, each entry's platform the one its config names.
    ///
    /// buildah 1.28 (`bud --manifest --platform a,b`) builds the same image for platforms
    /// whose layers are the same (a context that only copies files, or whose `RUN`s produce
    /// the same files), and `manifest add` keeps one entry for them: its platform is one
    /// platform and its config's architecture the other's. Such images differ only in the
    /// platform their configs name, so each platform left without an image gets the
    /// collapsed image's config with its own `os`/`architecture`/`variant`, and a manifest of
    /// the same layers. An entry whose config names a platform asked for is only relabelled.
    /// The result depends only on the layout, so a reproducible build stays reproducible.
    ///
    /// - Returns: the image named `name`, unchanged when every platform already has its own.
    public func givingEachPlatformItsImage(named name: String, platforms: [Platform]) throws -> LayoutImage {
        let image = try image(named: name)
        guard case .index(let index) = image.manifest, platforms.count > 1 else { return image }
        let built = try index.manifests.filter(\.mediaType.isImageManifest).map { try builtImage($0) }
        var entries: [Descriptor] = []
        for platform in platforms {
            if let own = built.first(where: { $0.configured.matches(platform) }) {
                var entry = own.entry
                entry.platform = platform
                entries.append(entry)
                continue
            }
            // Only a collapsed index (fewer images than platforms) is repaired; an image
            // missing for another reason is a build that went wrong, not one to relabel.
            guard built.count < platforms.count,
                let collapsed = built.first(where: { $0.entry.platform == platform }) ?? built.first
            else {
                let found = built.map { "\($0.configured)" }.joined(separator: ", ")
                throw LayoutError(
                    "the index \(image.descriptor.digest) in \(root.path) has no image for \(platform) (it has: \(found.isEmpty ? "none" : found))"
                )
            }
            entries.append(try writeImage(of: collapsed, for: platform))
        }
        entries += index.manifests.filter { !$0.mediaType.isImageManifest }
        guard
            entries.map(\.digest) != index.manifests.map(\.digest)
                || entries.map(\.platform) != index.manifests.map(\.platform)
        else {
            return image
        }

        var top = try jsonObject(image.bytes, "the index \(image.descriptor.digest)")
        top["manifests"] = try entries.map { try jsonObject(CanonicalJSON.encode($0), "a descriptor") }
        let written = try writeBlob(try Self.sortedJSON(top), mediaType: image.descriptor.mediaType)
        return try repoint(name, from: image.descriptor, to: written, superseded: [image.descriptor.digest])
    }

    /// The image manifest `entry` lists, with its config and the platform that config names.
    private func builtImage(_ entry: Descriptor) throws -> BuiltImage {
        let manifest = try jsonObject(blob(entry), "the manifest \(entry.digest)")
        guard case .image(let parsed) = try Manifest.decode(blob(entry), mediaType: entry.mediaType) else {
            throw LayoutError("\(entry.digest) in \(root.path) is listed as an image manifest but is not one")
        }
        let config = try jsonObject(blob(parsed.config), "the config \(parsed.config.digest)")
        let configured = Platform(
            os: config["os"] as? String ?? "", architecture: config["architecture"] as? String ?? "",
            variant: config["variant"] as? String)
        return BuiltImage(entry: entry, manifest: manifest, config: config, configured: configured)
    }

    /// Writes `collapsed` again as the image for `platform`: its config with that platform's
    /// `os`, `architecture` and `variant`, and a manifest of the same layers naming that config.
    private func writeImage(of collapsed: BuiltImage, for platform: Platform) throws -> Descriptor {
        var config = collapsed.config
        config["os"] = platform.os
        config["architecture"] = platform.architecture
        if let variant = platform.variant { config["variant"] = variant } else { config.removeValue(forKey: "variant") }
        let configBlob = try writeBlob(try Self.sortedJSON(config), mediaType: .ociConfig)
        var manifest = collapsed.manifest
        var configDescriptor = manifest["config"] as? [String: Any] ?? [:]
        configDescriptor["digest"] = configBlob.digest.rawValue
        configDescriptor["size"] = configBlob.size
        manifest["config"] = configDescriptor
        var entry = try writeBlob(try Self.sortedJSON(manifest), mediaType: collapsed.entry.mediaType)
        entry.platform = platform
        return entry
    }
}

/// An image a multi-platform build listed in its index, read as JSON to be rewritten.
private struct BuiltImage {
    var entry: Descriptor
    var manifest: [String: Any]
    var config: [String: Any]
    /// The platform the image's config names.
    var configured: Platform
}
