import Foundation
import OCI

/// The image a layout holds, as `out` pushes it and `in` reads it: one manifest, or an
/// index of per-platform manifests.
public struct LayoutImage: Sendable {
    public let layout: OCILayout
    /// The top of the image: a manifest or an index. Its digest is the image's digest.
    public let descriptor: Descriptor
    /// The top's exact bytes.
    public let bytes: Data
    public let manifest: Manifest

    public init(layout: OCILayout, descriptor: Descriptor, bytes: Data, manifest: Manifest) {
        self.layout = layout
        self.descriptor = descriptor
        self.bytes = bytes
        self.manifest = manifest
    }

    /// The single-platform manifest for `platform` (nil: the host's, else the only one).
    /// For a single manifest, that manifest whatever the platform asked.
    public func platformManifest(for platform: Platform? = nil) throws -> (
        descriptor: Descriptor, manifest: ImageManifest
    ) {
        switch manifest {
        case .image(let image):
            return (descriptor, image)
        case .index(let index):
            let chosen = try index.choose(platform, image: "the image \(descriptor.digest)")
            guard case .image(let image) = try Manifest.decode(layout.blob(chosen), mediaType: chosen.mediaType) else {
                throw LayoutError("\(chosen.digest) is listed as an image manifest but is not one")
            }
            return (chosen, image)
        }
    }

    /// The configuration of the manifest for `platform`.
    public func configuration(for platform: Platform? = nil) throws -> ImageConfiguration {
        let config = try platformManifest(for: platform).manifest.config
        do { return try JSONDecoder().decode(ImageConfiguration.self, from: layout.blob(config)) } catch let error
            as LayoutError
        {
            throw error
        } catch {
            throw LayoutError("the config \(config.digest) is not an image configuration: \(error)")
        }
    }
}

extension OCILayout {
    /// The image `index.json` points at.
    ///
    /// With `name`, the entry annotated `org.opencontainers.image.ref.name: name`; without,
    /// the only entry. An index whose only child is another index (as BuildKit writes) is
    /// unwrapped to that child.
    public func image(named name: String? = nil) throws -> LayoutImage {
        let entries = try index().manifests.filter { $0.mediaType.isIndex || $0.mediaType.isImageManifest }
        let entry: Descriptor
        if let name {
            guard let named = entries.first(where: { $0.annotations?[Self.refName] == name }) else {
                let names = entries.compactMap { $0.annotations?[Self.refName] }
                throw LayoutError(
                    "\(root.path) has no image named \(name) (names: \(names.isEmpty ? "none" : names.joined(separator: ", ")))"
                )
            }
            entry = named
        } else if let whole = try layoutIndexAsImage(entries) {
            return whole
        } else {
            guard entries.count == 1, let only = entries.first else {
                throw LayoutError(
                    entries.isEmpty
                        ? "\(root.path) holds no image (index.json lists no manifest)"
                        : "\(root.path) holds \(entries.count) images; name one (org.opencontainers.image.ref.name)")
            }
            entry = only
        }
        var top = entry
        var bytes = try blob(top)
        var manifest = try decode(bytes, top)
        // Unwrap index → index (one child) nesting.
        while case .index(let index) = manifest, index.manifests.count == 1, let child = index.manifests.first,
            child.mediaType.isIndex
        {
            top = child
            bytes = try blob(top)
            manifest = try decode(bytes, top)
        }
        top.annotations = nil
        return LayoutImage(layout: self, descriptor: top, bytes: bytes, manifest: manifest)
    }

    /// `index.json` itself as the image, when it is one multi-platform image: several
    /// unnamed image manifests, each for a platform. `in` with `format: oci-layout` writes the
    /// registry's index there byte for byte (as registry-image does), so its digest is the
    /// image's, and registry-image's `out` pushes such a layout as that index, which is how
    /// its documented mirroring (a get with `oci-layout`, put to another repository) works.
    private func layoutIndexAsImage(_ entries: [Descriptor]) throws -> LayoutImage? {
        guard entries.count > 1,
            entries.allSatisfy({
                $0.mediaType.isImageManifest && $0.platform != nil && $0.annotations?[Self.refName] == nil
            })
        else { return nil }
        let bytes = try indexBytes()
        let descriptor = Descriptor(mediaType: try index().mediaType ?? .ociIndex, content: bytes)
        return LayoutImage(layout: self, descriptor: descriptor, bytes: bytes, manifest: try decode(bytes, descriptor))
    }

    private func decode(_ bytes: Data, _ descriptor: Descriptor) throws -> Manifest {
        do { return try Manifest.decode(bytes, mediaType: descriptor.mediaType) } catch {
            throw LayoutError("\(descriptor.digest) in \(root.path): \(error)")
        }
    }
}

extension ImageIndex {
    /// The image manifest for `platform`; with none asked, the host's, else the only one.
    /// - Parameter image: how the image is named in the error, e.g. `team/app@sha256:…`.
    public func choose(_ platform: Platform?, image: String) throws -> Descriptor {
        let wanted = platform ?? Platform.host
        let candidates = manifests.filter { $0.mediaType.isImageManifest }
        guard let chosen = manifest(for: wanted) ?? (platform == nil && candidates.count == 1 ? candidates.first : nil)
        else {
            let available = candidates.compactMap { $0.platform?.description }.joined(separator: ", ")
            throw LayoutError(
                "\(image) has no manifest for \(wanted) (it has: \(available.isEmpty ? "none" : available))")
        }
        return chosen
    }
}
