import Errors
import Foundation

/// `.dockerignore` rules with Docker's semantics (moby/patternmatcher): one pattern a line,
/// `#` comments, `!` re-includes, a leading `/` is dropped, `*` and `?` stay within one path
/// component, `**` spans any number of them, `[…]` classes and `\` escapes work; a pattern
/// that matches a directory matches everything below it; the last matching pattern decides.
public struct Dockerignore: Sendable {
    public struct ValidationError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Dockerignore.ValidationError>
        public var kind: Kind { .invalidPattern }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    struct Rule: @unchecked Sendable {  // NSRegularExpression is immutable once made
        let pattern: String
        let regex: NSRegularExpression
        let excludes: Bool
    }

    let rules: [Rule]

    /// No rules: everything is included.
    public static let none = Dockerignore(rules: [])

    init(rules: [Rule]) { self.rules = rules }

    /// Parses the text of a `.dockerignore` file.
    public init(_ text: String) throws(ValidationError) {
        var rules: [Rule] = []
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var excludes = true
            if line.hasPrefix("!") {
                excludes = false
                line = String(line.dropFirst()).trimmingCharacters(in: .whitespaces)
            }
            let cleaned = Self.clean(line)
            if cleaned.isEmpty || cleaned == "." { continue }
            guard let regex = try? NSRegularExpression(pattern: Self.regex(for: cleaned)) else {
                throw ValidationError(".dockerignore: cannot read the pattern \"\(line)\"")
            }
            rules.append(Rule(pattern: cleaned, regex: regex, excludes: excludes))
        }
        self.rules = rules
    }

    /// Reads `<context>/.dockerignore`, or no rules when there is none.
    public init(contextDirectory: URL) throws {
        let file = contextDirectory.appendingPathComponent(".dockerignore")
        guard let data = FileManager.default.contents(atPath: file.path) else {
            self = .none
            return
        }
        try self.init(String(decoding: data, as: UTF8.self))
    }

    /// These rules, then one per path in `paths` (relative to the context, taken literally)
    /// that leaves it and everything below it out: last, so no `!` exception brings it back.
    public func excluding(_ paths: [String]) -> Dockerignore {
        let added = paths.compactMap { path -> Rule? in
            let pattern = Self.literalPattern(path)
            guard let regex = try? NSRegularExpression(pattern: Self.regex(for: pattern)) else { return nil }
            return Rule(pattern: pattern, regex: regex, excludes: true)
        }
        return Dockerignore(rules: rules + added)
    }

    /// `path` as a pattern that matches only itself: `*`, `?`, `[` and `\` escaped, and a
    /// leading `!` or `#` too (an exception, a comment), in moby's escape syntax.
    public static func literalPattern(_ path: String) -> String {
        var pattern = ""
        for character in clean(path) {
            if "*?[\\".contains(character) || (pattern.isEmpty && "!#".contains(character)) { pattern.append("\\") }
            pattern.append(character)
        }
        return pattern
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the build.
    public func excludes(_ path: String) -> Bool {
        let candidates = Self.selfAndParents(Self.clean(path))
        var excluded = false
        for rule in rules where candidates.contains(where: { rule.matches($0) }) {
            excluded = rule.excludes
        }
        return excluded
    }

    /// Whether a directory must still be walked although it is excluded: an exception
    /// (`!pattern`) may re-include something below it.
    public func mayReinclude(below directory: String) -> Bool {
        rules.contains { !$0.excludes }
    }

    static func selfAndParents(_ path: String) -> [String] {
        var result: [String] = []
        var parts = path.split(separator: "/").map(String.init)
        while !parts.isEmpty {
            result.append(parts.joined(separator: "/"))
            parts.removeLast()
        }
        return result
    }

    /// Go's filepath.Clean for a relative pattern, with a leading `/` removed.
    static func clean(_ path: String) -> String {
        var parts: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty && parts.last != ".." { parts.removeLast() } else { parts.append("..") }
            default: parts.append(String(part))
            }
        }
        return parts.joined(separator: "/")
    }

    /// The anchored regular expression for a pattern.
    static func regex(for pattern: String) -> String {
        var regex = "^"
        let characters = Array(pattern)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "*":
                if index + 1 < characters.count, characters[index + 1] == "*" {
                    index += 1
                    if index + 1 < characters.count, characters[index + 1] == "/" {
                        index += 1
                        regex += "(?:.*/)?"  // `**/` : zero or more directories
                    } else {
                        regex += ".*"
                    }
                } else {
                    regex += "[^/]*"
                }
            case "?":
                regex += "[^/]"
            case "[":
                var end = index + 1
                if end < characters.count, characters[end] == "!" || characters[end] == "^" { end += 1 }
                if end < characters.count, characters[end] == "]" { end += 1 }
                while end < characters.count, characters[end] != "]" { end += 1 }
                if end < characters.count {
                    var body = String(characters[(index + 1)..<end])
                    if body.hasPrefix("!") { body = "^" + body.dropFirst() }
                    regex += "[" + body.replacingOccurrences(of: "\\", with: "\\\\") + "]"
                    index = end
                } else {
                    regex += "\\["
                }
            case "\\":
                if index + 1 < characters.count {
                    index += 1
                    regex += NSRegularExpression.escapedPattern(for: String(characters[index]))
                } else {
                    regex += "\\\\"
                }
            default:
                regex += NSRegularExpression.escapedPattern(for: String(character))
            }
            index += 1
        }
        return regex + "$"
    }
}

extension Dockerignore.Rule {
    func matches(_ path: String) -> Bool {
        regex.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil
    }
}

extension ErrorKind where Owner == Dockerignore.ValidationError {
    /// A .dockerignore line is not a valid pattern.
    public static var invalidPattern: Self { Self("invalid pattern") }
}
