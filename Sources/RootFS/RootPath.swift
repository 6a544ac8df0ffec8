/// A path inside the root as a list of components, none of them empty, `.` or `..`.
///
/// Built from a layer entry's name (or a hardlink's target) by ``parse(_:)``, which is where
/// names that could reach outside the root are refused; or produced by resolution inside the
/// root, where every component is a real directory.
struct RootPath: Hashable, Sendable, CustomStringConvertible {
    /// The longest path Linux accepts (`PATH_MAX`, counting bytes).
    static let maximumLength = 4096
    /// The longest single component Linux file systems accept (`NAME_MAX`).
    static let maximumComponentLength = 255

    var components: [String]

    init(_ components: [String] = []) {
        self.components = components
    }

    /// The root itself.
    static let root = RootPath()

    /// Whether this is the root itself.
    var isRoot: Bool { components.isEmpty }

    /// The components joined by `/`, without a leading slash; empty for the root.
    var description: String { components.joined(separator: "/") }

    /// The parent path; the root's parent is the root.
    var parent: RootPath { RootPath(Array(components.dropLast())) }

    /// The last component, or nil for the root.
    var name: String? { components.last }

    func appending(_ component: String) -> RootPath {
        RootPath(components + [component])
    }

    /// Parses a name from a layer.
    ///
    /// Contained (rewritten to stay inside the root): a leading `/` (names are relative to the
    /// root, as a chroot sees them), `.` components and empty components (`a//b`), which POSIX
    /// resolution ignores too.
    ///
    /// Refused: a `..` component anywhere (no layer a real builder writes has one; following it
    /// lexically is how zip-slip and its relatives escape), a NUL byte (the kernel would see a
    /// shorter name than the one checked), more than 4096 bytes or a component over 255 bytes.
    ///
    /// - Throws: ``UnpackError`` of kind `unsafePath` or
    ///   `nameTooLong`; the caller adds the entry name.
    static func parse(_ name: String, what: String = "the name") throws(UnpackError) -> RootPath {
        let bytes = name.utf8
        if bytes.contains(0) {
            throw UnpackError(
                .unsafePath,
                "refused: \(what) contains a NUL byte, so the file system would see a different name than the one checked"
            )
        }
        if bytes.count > maximumLength {
            throw UnpackError(
                .nameTooLong, "refused: \(what) is \(bytes.count) bytes long; the limit is \(maximumLength)")
        }
        var components: [String] = []
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".":
                continue
            case "..":
                throw UnpackError(
                    .unsafePath,
                    "refused: \(what) has a \"..\" component, which could reach outside the root; no image builder writes one, so the layer is malformed or hostile"
                )
            default:
                if component.utf8.count > maximumComponentLength {
                    throw UnpackError(
                        .nameTooLong,
                        "refused: \(what) has a component of \(component.utf8.count) bytes; the limit is \(maximumComponentLength)"
                    )
                }
                components.append(String(component))
            }
        }
        return RootPath(components)
    }
}
