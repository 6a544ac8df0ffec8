/// Which commits count as changes by the files they touch: `paths`, `ignore_paths` and the
/// tag file, turned into the pathspecs of one or more first-parent walks.
///
/// A commit is a change when it touches a watched path that is not ignored, or touches the
/// tag file (always watched, even when `ignore_paths` would exclude it). Every entry is
/// passed to git as one argument, so a name with spaces is one pathspec (git-resource
/// split it into several), and git's own pathspec rules apply: prefix match on directory
/// boundaries, `*` crossing `/`, magic such as `:(glob)` and `:(icase)`.
///
/// Why several walks: git answers "does this commit touch X" from the changed-path Bloom
/// filters only when the walk has a single literal pathspec (git 2.39), and a pathspec
/// with exclusions cannot also re-include the tag file. Each group is one walk; the
/// results are merged along the first-parent chain.
struct PathFilter: Sendable, Equatable {
    /// The pathspec groups, one walk each; empty when every commit counts.
    let groups: [[String]]

    /// True when every commit counts (no path limiting at all, so empty commits count too).
    var isUnfiltered: Bool { groups.isEmpty }

    /// - Parameter splitLiterals: Give every literal path its own walk so each can use the
    ///   Bloom filters; only worth it when the cache has a commit-graph.
    init(paths: [String], ignorePaths: [String], tagFile: String?, splitLiterals: Bool) {
        let excludes = ignorePaths.map(Self.exclusion)
        var includes = paths
        var separateTagFile = false
        if let tagFile, !paths.isEmpty || !excludes.isEmpty {
            if !excludes.isEmpty {
                separateTagFile = true
            } else if !paths.contains(where: { Self.literalCovers($0, tagFile) }) {
                includes.append(Self.literal(tagFile))
            }
        }
        var groups: [[String]] = []
        if !excludes.isEmpty {
            groups.append((includes.isEmpty ? ["."] : includes) + excludes)
        } else if !includes.isEmpty {
            if splitLiterals && includes.count > 1 && includes.allSatisfy(Self.isPlainLiteral) {
                groups = includes.map { [$0] }
            } else {
                groups = [includes]
            }
        }
        if separateTagFile, let tagFile {
            groups.append([Self.literal(tagFile)])
        }
        self.groups = groups
    }

    /// `ignore_paths` entry → an exclusion pathspec that keeps the entry's own magic:
    /// `dir` → `:(exclude)dir`, `:(glob)**/x` → `:(exclude,glob)**/x`, `:/x` → `:(exclude,top)x`.
    static func exclusion(_ pathspec: String) -> String {
        if pathspec.hasPrefix(":("), let close = pathspec.firstIndex(of: ")") {
            let magic = pathspec[pathspec.index(pathspec.startIndex, offsetBy: 2)..<close]
            let rest = pathspec[pathspec.index(after: close)...]
            let words = magic.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if words.contains("exclude") { return pathspec }
            return ":(" + (["exclude"] + words).joined(separator: ",") + ")" + rest
        }
        if pathspec.hasPrefix(":") {
            // Short magic: `:` then any of `/` (top) and `!`/`^` (exclude), then an optional `:`.
            var words = ["exclude"]
            var index = pathspec.index(after: pathspec.startIndex)
            while index < pathspec.endIndex, "/!^".contains(pathspec[index]) {
                if pathspec[index] == "/" && !words.contains("top") { words.append("top") }
                index = pathspec.index(after: index)
            }
            if index < pathspec.endIndex, pathspec[index] == ":" { index = pathspec.index(after: index) }
            return ":(" + words.joined(separator: ",") + ")" + pathspec[index...]
        }
        return ":(exclude)" + pathspec
    }

    /// A path as a pathspec that matches exactly that path (and what is below it).
    static func literal(_ path: String) -> String {
        isPlainLiteral(path) ? path : ":(literal)" + path
    }

    /// No magic and no wildcard: git treats it literally, and can use Bloom filters for it.
    static func isPlainLiteral(_ pathspec: String) -> Bool {
        !pathspec.hasPrefix(":") && !pathspec.contains(where: { "*?[\\".contains($0) })
    }

    /// Whether the literal pathspec `pathspec` matches `path` (equal, or a directory above it).
    static func literalCovers(_ pathspec: String, _ path: String) -> Bool {
        guard isPlainLiteral(pathspec) else { return false }
        var directory = pathspec
        while directory.hasPrefix("./") { directory.removeFirst(2) }
        while directory.hasSuffix("/") { directory.removeLast() }
        if directory.isEmpty || directory == "." { return true }
        return path == directory || path.hasPrefix(directory + "/")
    }
}
