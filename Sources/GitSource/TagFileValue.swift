import Foundation
import OCI
import Yams

/// Reads the value of a tag file from its bytes at one commit.
///
/// - plain: the content without surrounding whitespace and newlines.
/// - YAML: the scalar at the dotted key, exactly as written (`1.10` stays `1.10`, where a
///   YAML library converting to a number would give `1.1`).
/// - JSON: the string at the dotted key; a number or boolean in its JSON spelling (numbers
///   pass through a double, so quote a version like `"1.10"` to keep its zero).
///
/// A dotted key walks mappings (and sequences, by index); when a mapping has a key that
/// itself contains dots (`"tags.base": …`), the longest matching key wins.
enum TagFileValue {
    static func read(_ data: Data, spec: TagFileSpec, commit: GitCommitID) throws -> String {
        let location = "tag file \(quoted(spec.normalizedPath)) at commit \(commit.short)"
        guard let text = String(data: data, encoding: .utf8) else {
            throw GitSourceError(.unusableTagFile, "\(location) is not UTF-8 text")
        }
        let value: String
        switch spec.format {
        case .plain:
            value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        case .yaml:
            value = try yamlValue(text, key: spec.key, location: location)
        case .json:
            value = try jsonValue(data, key: spec.key, location: location)
        }
        if value.isEmpty {
            throw GitSourceError(
                .unusableTagFile, "\(location)\(keyPhrase(spec.key)) is empty: a version needs a value")
        }
        if value.contains(where: \.isNewline) {
            throw GitSourceError(
                .unusableTagFile,
                "\(location)\(keyPhrase(spec.key)) spans several lines: a version value must be one line")
        }
        return value
    }

    private static func keyPhrase(_ key: String?) -> String {
        key.map { ", key \(quoted($0))," } ?? ""
    }

    // MARK: YAML

    private static func yamlValue(_ text: String, key: String?, location: String) throws -> String {
        let root: Node?
        do {
            root = try DocumentNesting.compose(text, what: location)
        } catch let refusal as DocumentNesting.Refusal {
            throw GitSourceError(.unusableTagFile, refusal.message)
        } catch {
            throw GitSourceError(.unusableTagFile, "\(location) is not valid YAML: \(error)")
        }
        guard let root else { throw GitSourceError(.unusableTagFile, "\(location) is an empty YAML document") }
        let node = try descend(root, key: key, location: location, child: yamlChild)
        guard case .scalar(let scalar) = node else {
            let what = node.mapping != nil ? "a mapping" : "a list"
            throw GitSourceError(
                .unusableTagFile,
                "\(location)\(keyPhrase(key)) is \(what), not a single value\(key == nil ? ": give a key such as tags.base" : "")"
            )
        }
        if scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
            throw GitSourceError(.unusableTagFile, "\(location)\(keyPhrase(key)) is null")
        }
        return scalar.string.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The node `key` (dotted, `a.b.c`) names below `root`, one step of `child` at a time; a
    /// step may take several components when a key itself holds dots. Nil `key`: the root.
    private static func descend<Tree>(
        _ root: Tree, key: String?, location: String, child: (Tree, [String]) -> (Tree, Int)?
    ) throws -> Tree {
        guard let key else { return root }
        var node = root
        var remaining = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var walked: [String] = []
        while !remaining.isEmpty {
            guard let (next, used) = child(node, remaining) else {
                let at =
                    walked.isEmpty ? "" : " (found \(walked.joined(separator: ".")), but not \(remaining[0]) inside it)"
                throw GitSourceError(.unusableTagFile, "\(location) has no key \(quoted(key))\(at)")
            }
            walked.append(remaining.prefix(used).joined(separator: "."))
            remaining.removeFirst(used)
            node = next
        }
        return node
    }

    /// The child for the longest prefix of `components` that names one, and how many
    /// components it used.
    private static func yamlChild(of node: Node, _ components: [String]) -> (Node, Int)? {
        for count in stride(from: components.count, through: 1, by: -1) {
            let name = components.prefix(count).joined(separator: ".")
            if let mapping = node.mapping {
                for (key, value) in mapping where key.scalar?.string == name {
                    return (value, count)
                }
            } else if let sequence = node.sequence, count == 1, let index = Int(name), sequence.indices.contains(index)
            {
                return (sequence[index], 1)
            }
        }
        return nil
    }

    // MARK: JSON

    private static func jsonValue(_ data: Data, key: String?, location: String) throws -> String {
        if data.count > DocumentNesting.maximumBytes {
            throw GitSourceError(.unusableTagFile, DocumentNesting.sizeMessage(for: location))
        }
        if DocumentNesting.exceedsLimit(String(decoding: data, as: UTF8.self)) {
            throw GitSourceError(.unusableTagFile, DocumentNesting.message(for: location))
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw GitSourceError(.unusableTagFile, "\(location) is not valid JSON: \(error.localizedDescription)")
        }
        let value = try descend(root, key: key, location: location, child: jsonChild)
        switch value {
        case let string as String:
            return string.trimmingCharacters(in: .whitespacesAndNewlines)
        case let number as NSNumber:
            // JSON booleans come back as NSNumber with the C type `c` (char).
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        case is NSNull:
            throw GitSourceError(.unusableTagFile, "\(location)\(keyPhrase(key)) is null")
        case is [Any]:
            throw GitSourceError(.unusableTagFile, "\(location)\(keyPhrase(key)) is a list, not a single value")
        default:
            throw GitSourceError(
                .unusableTagFile,
                "\(location)\(keyPhrase(key)) is an object, not a single value\(key == nil ? ": give a key such as tags.base" : "")"
            )
        }
    }

    private static func jsonChild(of value: Any, _ components: [String]) -> (Any, Int)? {
        for count in stride(from: components.count, through: 1, by: -1) {
            let name = components.prefix(count).joined(separator: ".")
            if let object = value as? [String: Any], let child = object[name] {
                return (child, count)
            }
            if let array = value as? [Any], count == 1, let index = Int(name), array.indices.contains(index) {
                return (array[index], 1)
            }
        }
        return nil
    }
}

extension TagFileSpec {
    /// The tag file's value from its bytes at `commit` (which only names the place in
    /// messages). See ``TagFileFormat`` for the rules.
    /// - Throws: ``GitSourceError`` (`.tagFile`) naming the file, the key and the commit.
    public func value(from data: Data, at commit: GitCommitID) throws -> String {
        try TagFileValue.read(data, spec: self, commit: commit)
    }
}

// MARK: Rewriting

extension TagFileValue {
    /// `text` with the tag file's value replaced by `newValue` and everything else kept
    /// (comments, order, spacing): a plain file becomes the value and a newline; in YAML or
    /// JSON the scalar at the key is rewritten where it stands, in its own quoting style.
    /// Callers check the result by reading it back.
    static func replacing(_ text: String, spec: TagFileSpec, with newValue: String) throws -> String {
        guard !newValue.isEmpty, !newValue.contains(where: { $0.isNewline || $0 == "\"" || $0 == "'" || $0 == "\\" })
        else {
            throw GitSourceError(
                .unusableTagFile,
                "the new tag file value \(quoted(newValue)) must be one line without quotes or backslashes")
        }
        if spec.format == .plain { return newValue + "\n" }
        let location = "tag file \(quoted(spec.normalizedPath))"
        guard var node = try? DocumentNesting.compose(text, what: location) else {
            throw GitSourceError(.unusableTagFile, "\(location) cannot be parsed to rewrite it")
        }
        var remaining = (spec.key ?? "").split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if spec.key == nil { remaining = [] }
        while !remaining.isEmpty {
            guard let (next, used) = yamlChild(of: node, remaining) else {
                throw GitSourceError(.unusableTagFile, "\(location) has no key \(quoted(spec.key ?? ""))")
            }
            remaining.removeFirst(used)
            node = next
        }
        guard case .scalar(let scalar) = node, let mark = scalar.mark else {
            throw GitSourceError(
                .unusableTagFile, "\(location): the value at \(quoted(spec.key ?? "")) is not a single value")
        }
        let quote: String
        switch scalar.style {
        case .plain: quote = ""
        case .doubleQuoted: quote = "\""
        case .singleQuoted: quote = "'"
        default:
            throw GitSourceError(
                .unusableTagFile,
                "\(location): the value at \(quoted(spec.key ?? "")) is a block scalar, which is not rewritten")
        }
        // Yams marks are 1-based lines and columns, in characters.
        var scalars = Array(text.unicodeScalars)
        var line = 1
        var start = 0
        while line < mark.line, start < scalars.count {
            if scalars[start] == "\n" { line += 1 }
            start += 1
        }
        start += mark.column - 1
        let old = Array((quote + scalar.string + quote).unicodeScalars)
        guard start >= 0, start + old.count <= scalars.count, Array(scalars[start..<(start + old.count)]) == old else {
            throw GitSourceError(
                .unusableTagFile,
                "\(location): the value at \(quoted(spec.key ?? "")) is written in a way that cannot be rewritten in place (escapes?)"
            )
        }
        scalars.replaceSubrange(start..<(start + old.count), with: Array((quote + newValue + quote).unicodeScalars))
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }
}
