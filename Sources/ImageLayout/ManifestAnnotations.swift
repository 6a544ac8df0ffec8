import Foundation
import OCI

extension OCILayout {
    /// Rewrites the annotations of every image manifest of the image named `name` (the
    /// manifest, or each manifest of an index, whose own entries and `index.json`'s entry then
    /// name the rewritten ones) and returns the image as it now is.
    ///
    /// Each manifest is edited as JSON, not re-encoded from ``ImageManifest``, so fields this
    /// module does not model survive. The superseded manifests' blobs are removed when no
    /// entry of `index.json` still reaches them.
    public func rewriteAnnotations(ofImageNamed name: String, _ change: ([String: String]) -> [String: String]) throws
        -> LayoutImage
    {
        let image = try image(named: name)
        var superseded: [Descriptor] = []

        func rewritten(_ descriptor: Descriptor) throws -> Descriptor {
            var object = try jsonObject(blob(descriptor), "the manifest \(descriptor.digest)")
            let before = object["annotations"] as? [String: String] ?? [:]
            let after = change(before)
            guard after != before else { return descriptor }
            object["annotations"] = after.isEmpty ? nil : after
            let written = try writeBlob(
                try Self.sortedJSON(object),
                mediaType: descriptor.mediaType)
            superseded.append(descriptor)
            var replacement = descriptor
            replacement.digest = written.digest
            replacement.size = written.size
            return replacement
        }

        var top = image.descriptor
        switch image.manifest {
        case .image:
            top = try rewritten(image.descriptor)
        case .index:
            guard var object = try JSONSerialization.jsonObject(with: image.bytes) as? [String: Any],
                let children = object["manifests"] as? [[String: Any]]
            else {
                throw LayoutError("the index \(image.descriptor.digest) has no manifests")
            }
            var changed = false
            object["manifests"] = try children.map { child -> [String: Any] in
                let descriptor = try JSONDecoder().decode(
                    Descriptor.self, from: JSONSerialization.data(withJSONObject: child))
                guard descriptor.mediaType.isImageManifest else { return child }
                let replacement = try rewritten(descriptor)
                guard replacement.digest != descriptor.digest else { return child }
                changed = true
                return child.merging(["digest": replacement.digest.rawValue, "size": replacement.size]) { $1 }
            }
            if changed {
                let written = try writeBlob(
                    try Self.sortedJSON(object),
                    mediaType: image.descriptor.mediaType)
                superseded.append(image.descriptor)
                top.digest = written.digest
                top.size = written.size
            }
        }
        guard top.digest != image.descriptor.digest else { return image }
        return try repoint(name, from: image.descriptor, to: top, superseded: superseded.map(\.digest))
    }

    /// Names `replacement` `name` where `index.json` named `old`, then removes the
    /// `superseded` blobs (those the rewrite replaced) that nothing named still reaches.
    func repoint(_ name: String, from old: Descriptor, to replacement: Descriptor, superseded: [Digest]) throws
        -> LayoutImage
    {
        var index = try index()
        guard index.manifests.contains(where: { $0.digest == old.digest }) else {
            throw LayoutError(
                "\(root.path): the image named \(name) is nested in another index; it cannot be rewritten")
        }
        index.manifests = index.manifests.map { entry in
            guard entry.annotations?[Self.refName] == name, entry.digest == old.digest else { return entry }
            var replaced = entry
            replaced.digest = replacement.digest
            replaced.size = replacement.size
            return replaced
        }
        try writeIndex(index)
        let reachable = Set(
            try index.manifests.filter { $0.mediaType.isIndex || $0.mediaType.isImageManifest }
                .flatMap { try blobs(reachableFrom: $0) }.map(\.digest))
        for digest in superseded where !reachable.contains(digest) {
            try? FileManager.default.removeItem(at: blobPath(digest))
        }
        return try self.image(named: name)
    }

    /// A manifest, index or config as a JSON object, edited as such so that fields this module
    /// does not model survive a rewrite.
    func jsonObject(_ bytes: Data, _ what: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw LayoutError("\(what) in \(root.path) is not a JSON object")
        }
        return object
    }

    /// JSON with sorted keys: the same object always gives the same bytes, so a rewrite of
    /// a reproducible image stays reproducible.
    static func sortedJSON(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
