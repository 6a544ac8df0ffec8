import Console
import Foundation
import ImageLayout
import OCI

extension Unpacker {
    /// Applies every layer of `image`'s manifest for `platform` into `root`, in order, each
    /// checked against its config's diff_id, and returns that config (for `metadata.json`).
    /// `in` (`format: rootfs`) and build-task (`UNPACK_ROOTFS`) both unpack this way.
    public static func unpack(_ image: LayoutImage, platform: Platform? = nil, into root: URL, log: Log) throws
        -> ImageConfiguration
    {
        let manifest = try image.platformManifest(for: platform).manifest
        let configuration = try image.configuration(for: platform)
        let diffIDs = configuration.rootfs.diffIDs
        guard diffIDs.count == manifest.layers.count else {
            throw LayoutError(
                "the image's config lists \(diffIDs.count) layers and its manifest \(manifest.layers.count)")
        }
        let unpacker = Unpacker(root: root, options: .init(log: log))
        for (layer, diffID) in zip(manifest.layers, diffIDs) {
            try unpacker.apply(layer: image.layout.openBlob(layer), expectedDiffID: diffID)
        }
        return configuration
    }
}
