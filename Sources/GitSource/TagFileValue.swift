import OCI
import Foundation
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
            throw GitSourceError(.tagFile, "\(location) is not UTF-8 text")
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
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(spec.key)) is empty: a version needs a value")
        }
        if value.contains(where: \.isNewline) {
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(spec.key)) spans several lines: a version value must be one line")
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
            throw GitSourceError(.tagFile, refusal.message)
        } catch {
            throw GitSourceError(.tagFile, "\(location) is not valid YAML: \(error)")
        }
        guard let root else { throw GitSourceError(.tagFile, "\(location) is an empty YAML document") }
        var node = root
        if let key {
            var remaining = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var walked: [String] = []
            while !remaining.isEmpty {
                guard let (next, used) = yamlChild(of: node, remaining) else {
                    let at = walked.isEmpty ? "" : " (found \(walked.joined(separator: ".")), but not \(remaining[0]) inside it)"
                    throw GitSourceError(.tagFile, "\(location) has no key \(quoted(key))\(at)")
                }
                walked.append(remaining.prefix(used).joined(separator: "."))
                remaining.removeFirst(used)
                node = next
            }
        }
        guard case .scalar(let scalar) = node else {
            let what = node.mapping != nil ? "a mapping" : "a list"
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(key)) is \(what), not a single value\(key == nil ? ": give a key such as tags.base" : "")")
        }
        if scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(key)) is null")
        }
        return scalar.string.trimmingCharacters(in: .whitespacesAndNewlines)
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
            } else if let sequence = node.sequence, count == 1, let index = Int(name), sequence.indices.contains(index) {
                return (sequence[index], 1)
            }
        }
        return nil
    }

    // MARK: JSON

    private static func jsonValue(_ data: Data, key: String?, location: String) throws -> String {
        if data.count > DocumentNesting.maximumBytes {
            throw GitSourceError(.tagFile, DocumentNesting.sizeMessage(for: location))
        }
        if DocumentNesting.exceedsLimit(String(decoding: data, as: UTF8.self)) {
            throw GitSourceError(.tagFile, DocumentNesting.message(for: location))
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw GitSourceError(.tagFile, "\(location) is not valid JSON: \(error.localizedDescription)")
        }
        var value = root
        if let key {
            var remaining = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var walked: [String] = []
            while !remaining.isEmpty {
                guard let (next, used) = jsonChild(of: value, remaining) else {
                    let at = walked.isEmpty ? "" : " (found \(walked.joined(separator: ".")), but not \(remaining[0]) inside it)"
                    throw GitSourceError(.tagFile, "\(location) has no key \(quoted(key))\(at)")
                }
                walked.append(remaining.prefix(used).joined(separator: "."))
                remaining.removeFirst(used)
                value = next
            }
        }
        switch value {
        case let string as String:
            return string.trimmingCharacters(in: .whitespacesAndNewlines)
        case let number as NSNumber:
            // JSON booleans come back as NSNumber with the C type `c` (char).
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        case is NSNull:
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(key)) is null")
        case is [Any]:
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(key)) is a list, not a single value")
        default:
            throw GitSourceError(.tagFile, "\(location)\(keyPhrase(key)) is an object, not a single value\(key == nil ? ": give a key such as tags.base" : "")")
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
        guard !newValue.isEmpty, !newValue.contains(where: { $0.isNewline || $0 == "\"" || $0 == "'" || $0 == "\\" }) else {
            throw GitSourceError(.tagFile, "the new tag file value \(quoted(newValue)) must be one line without quotes or backslashes")
        }
        if spec.format == .plain { return newValue + "\n" }
        let location = "tag file \(quoted(spec.normalizedPath))"
        guard var node = try? DocumentNesting.compose(text, what: location) else {
            throw GitSourceError(.tagFile, "\(location) cannot be parsed to rewrite it")
        }
        var remaining = (spec.key ?? "").split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if spec.key == nil { remaining = [] }
        while !remaining.isEmpty {
            guard let (next, used) = yamlChild(of: node, remaining) else {
                throw GitSourceError(.tagFile, "\(location) has no key \(quoted(spec.key ?? ""))")
            }
            remaining.removeFirst(used)
            node = next
        }
        guard case .scalar(let scalar) = node, let mark = scalar.mark else {
            throw GitSourceError(.tagFile, "\(location): the value at \(quoted(spec.key ?? "")) is not a single value")
        }
        let quote: String
        switch scalar.style {
        case .plain: quote = ""
        case .doubleQuoted: quote = "\""
        case .singleQuoted: quote = "'"
        default:
            throw GitSourceError(.tagFile, "\(location): the value at \(quoted(spec.key ?? "")) is a block scalar, which is not rewritten")
        }
        // Yams marks are 1-based lines and columns, in characters.
        var scalars = Array(text.unicodeScalars)
        var line = 1, start = 0
        while line < mark.line, start < scalars.count {
            if scalars[start] == "\n" { line += 1 }
            start += 1
        }
        start += mark.column - 1
        let old = Array((quote + scalar.string + quote).unicodeScalars)
        guard start >= 0, start + old.count <= scalars.count, Array(scalars[start..<(start + old.count)]) == old else {
            throw GitSourceError(.tagFile, "\(location): the value at \(quoted(spec.key ?? "")) is written in a way that cannot be rewritten in place (escapes?)")
        }
        scalars.replaceSubrange(start..<(start + old.count), with: Array((quote + newValue + quote).unicodeScalars))
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }
}

// MARK: Nesting depth

/// The deepest nesting Slipway reads in a YAML or JSON file that comes from a repository
/// or a build's inputs (a tag file, `BUILD_ARGS_FILE`, `LABELS_FILE`), and the one way
/// such a file is composed.
///
/// Why: Yams composes a document recursively, one stack frame per level, so a file of a
/// few kilobytes (`[[[[…]]]]` or `- - - - …`, 5,000 deep) overflows the stack and the
/// process dies of SIGSEGV before any error can be reported. Two guards, each enough for
/// ordinary files and together enough for hostile ones:
/// - a linear pre-scan (``exceedsLimit(_:)``) that follows YAML's tokens (quoted, plain and
///   block scalars, comments, flow brackets, block indentation and indicators) and
///   over-estimates the depth; anything it estimates deeper than ``maximumDepth`` is refused;
/// - ``compose(_:)`` runs Yams on a thread with a large stack and refuses documents over
///   ``maximumBytes``, so even a document the scan misjudged cannot nest deep enough to
///   exhaust that stack.
public enum DocumentNesting {
    /// The most levels a document may nest; files that need more are refused. Real tag
    /// files and build-argument files nest two or three levels.
    public static let maximumDepth = 64

    /// The largest document composed (256 KiB); tag files and build-argument files are a
    /// few hundred bytes.
    public static let maximumBytes = 256 << 10

    /// The stack of the thread Yams composes on (1 GiB of address space, used only as deep
    /// as the document goes): a document of ``maximumBytes`` nested as deeply as its size
    /// allows (one level a byte) still fits at 4 KiB a level; Yams takes about 0.4 to 1.6.
    static let composeStackBytes = 1 << 30

    /// The message for a file that nests too deeply: `what` names it (a tag file at a
    /// commit, `BUILD_ARGS_FILE=path`).
    public static func message(for what: String) -> String {
        "\(what) nests deeper than \(maximumDepth) levels, the most Slipway reads (deeper documents can crash the YAML parser); flatten it"
    }

    /// The message for a file over ``maximumBytes``.
    public static func sizeMessage(for what: String) -> String {
        "\(what) is larger than \(maximumBytes / 1024) KiB, the most Slipway reads for such a file"
    }

    /// Composes `text` with Yams after both checks; `what` names the file in errors.
    /// - Throws: ``DocumentNesting/Refusal`` (too deep or too large, one line), or Yams' own
    ///   error for invalid YAML.
    public static func compose(_ text: String, what: String) throws -> Node? {
        if text.utf8.count > maximumBytes { throw Refusal(message: sizeMessage(for: what)) }
        if exceedsLimit(text) { throw Refusal(message: message(for: what)) }
        return try onLargeStack {
            let node = try Yams.compose(yaml: text)
            // Measured here, on the large stack, where a misjudged document can be walked
            // (and freed: releasing a deep tree recurses too) without harm.
            if let node {
                var visited = 0
                let deepest = depth(of: node, limit: maximumDepth + 1, visited: &visited)
                if deepest > maximumDepth { throw Refusal(message: message(for: what)) }
                if visited > maximumNodes {
                    throw Refusal(message: "\(what) expands to more than \(maximumNodes) values (aliases of aliases?), the most Slipway reads")
                }
            }
            return node
        }
    }

    /// Composes `text` as ``compose(_:what:)`` does and converts it to Swift values
    /// (`[String: Any]`, `[Any]`, `String`, `Int`…) as `Yams.load` does.
    public static func load(_ text: String, what: String) throws -> Any? {
        try compose(text, what: what)?.any
    }

    /// The most values a composed document may hold once its aliases are expanded: a
    /// few lines of aliases of aliases ("billion laughs") otherwise expand to billions.
    public static let maximumNodes = 100_000

    /// How deeply `node` nests, counted up to `limit`; `visited` counts the nodes walked
    /// and stops the walk past ``maximumNodes``.
    static func depth(of node: Node, limit: Int, visited: inout Int, budget: Int = maximumNodes) -> Int {
        visited += 1
        guard limit > 0, visited <= budget else { return 0 }
        var deepest = 0
        switch node {
        case .scalar:
            return 0
        case .sequence(let sequence):
            for child in sequence { deepest = max(deepest, depth(of: child, limit: limit - 1, visited: &visited, budget: budget)) }
        case .mapping(let mapping):
            for (key, value) in mapping {
                deepest = max(deepest, depth(of: key, limit: limit - 1, visited: &visited, budget: budget),
                                  depth(of: value, limit: limit - 1, visited: &visited, budget: budget))
            }
        }
        return 1 + deepest
    }

    /// A document refused before parsing, with its one-line reason.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public let message: String
        public var description: String { message }
    }

    /// Runs `body` on a new thread with a stack of ``composeStackBytes`` and waits for it.
    static func onLargeStack<R>(_ body: @escaping () throws -> R) throws -> R {
        nonisolated(unsafe) var result: Result<R, Error>?
        nonisolated(unsafe) let work = body
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result = Result { try work() }
            done.signal()
        }
        thread.stackSize = composeStackBytes
        thread.start()
        done.wait()
        return try result!.get()
    }

    /// True when `text` (YAML, or JSON, which YAML's flow syntax reads) may nest deeper
    /// than ``maximumDepth``.
    ///
    /// The estimate at each token: twice the open flow brackets (each may also hold an
    /// implicit single-pair mapping), plus twice the block indentation levels open (a
    /// mapping's value may be a sequence at the key's own indentation), plus the block
    /// indicators (`- `, `? `, `: `) before it on its line (compact nesting, `- - - x`).
    /// Where the token rules leave a doubt, it errs towards a deeper estimate.
    public static func exceedsLimit(_ text: String) -> Bool {
        estimatedDepth(text) > maximumDepth
    }

    /// The scan's estimate of how deeply `text` nests (at least the depth Yams reaches).
    static func estimatedDepth(_ text: String) -> Int {
        var scanner = NestingScanner()
        var deepest = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            deepest = scanner.scan(line: Array(line))
        }
        return deepest
    }
}

/// The state of ``DocumentNesting/exceedsLimit(_:)`` between lines.
private struct NestingScanner {
    enum Mode: Equatable {
        case token  // between tokens
        case plain(indent: Int)  // a plain scalar begun on a line indented `indent`
        case single, double  // inside a quoted scalar
        case block(parent: Int, content: Int?)  // a literal or folded block scalar's lines
    }
    var mode = Mode.token
    var flow = 0
    var indents: [Int] = []
    var deepest = 0

    static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    static func isBlank(_ byte: UInt8?) -> Bool {
        byte == nil || byte == space || byte == tab || byte == UInt8(ascii: "\r")
    }

    static func isFlowIndicator(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte == UInt8(ascii: ",") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
            || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}")
    }

    /// Scans one line and returns the deepest estimate so far.
    mutating func scan(line: [UInt8]) -> Int {
        var line = line
        // `---` or `...` at the start of a line ends whatever was open and starts a new
        // document; what follows it on the line is read as if indented past it.
        if line.count >= 3, line[0] == line[1], line[1] == line[2], line[0] == UInt8(ascii: "-") || line[0] == UInt8(ascii: "."),
           line.count == 3 || Self.isBlank(line[3]) {
            mode = .token
            flow = 0
            indents.removeAll()
            line.replaceSubrange(0..<3, with: [Self.space, Self.space, Self.space])
        }
        var column = 0
        while column < line.count, line[column] == Self.space || line[column] == Self.tab { column += 1 }
        let empty = column == line.count || line[column] == UInt8(ascii: "\r")
        switch mode {
        case .block(let parent, let content):
            if empty { return deepest }
            let needed = content ?? (column > parent ? column : Int.max)
            if column >= needed {
                mode = .block(parent: parent, content: needed)
                return deepest
            }
            mode = .token
        case .plain(let indent):
            if empty { return deepest }
            // A plain scalar goes on over lines indented more than the line it began on
            // (and in flow context over any line); a comment or a document marker ends it.
            let marker = column == 0 && line.count >= 3
                && (line[0..<3].elementsEqual("---".utf8) || line[0..<3].elementsEqual("...".utf8))
            if (flow > 0 || column > indent) && line[column] != UInt8(ascii: "#") && !marker {
                // stays plain
            } else {
                mode = .token
            }
        default:
            break
        }
        if mode == .token && !empty && line[column] != UInt8(ascii: "#") && flow == 0 {
            while let last = indents.last, last > column { indents.removeLast() }
            if indents.last != column { indents.append(column) }
        }
        var indicators = 0
        var index = column
        func note() {
            deepest = max(deepest, 2 * flow + 2 * indents.count + indicators)
        }
        note()
        while index < line.count {
            let byte = line[index]
            let next: UInt8? = index + 1 < line.count ? line[index + 1] : nil
            let previous: UInt8? = index > 0 ? line[index - 1] : nil
            switch mode {
            case .single:
                if byte == UInt8(ascii: "'") {
                    if next == UInt8(ascii: "'") { index += 1 } else { mode = .token }
                }
            case .double:
                if byte == UInt8(ascii: "\\") { index += 1 } else if byte == UInt8(ascii: "\"") { mode = .token }
            case .plain:
                if byte == UInt8(ascii: ":") && (Self.isBlank(next) || (flow > 0 && Self.isFlowIndicator(next))) {
                    mode = .token
                    continue  // the indicator, as a token
                }
                if byte == UInt8(ascii: "#") && Self.isBlank(previous) { return deepest }  // a comment ends the line
                if flow > 0 && Self.isFlowIndicator(byte) {
                    mode = .token
                    continue
                }
            case .block:
                return deepest
            case .token:
                if Self.isBlank(byte) { break }
                switch byte {
                case UInt8(ascii: "#"):
                    return deepest  // a comment to the end of the line
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flow += 1
                    note()
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    flow = max(0, flow - 1)
                case UInt8(ascii: ","):
                    break
                case UInt8(ascii: "'"):
                    mode = .single
                case UInt8(ascii: "\""):
                    mode = .double
                case UInt8(ascii: "-") where Self.isBlank(next),
                     UInt8(ascii: "?") where flow > 0 || Self.isBlank(next),
                     UInt8(ascii: ":") where flow > 0 || Self.isBlank(next):
                    // In flow context a key makes at most the single-pair mapping the
                    // doubled bracket count already allows for.
                    if flow == 0 {
                        indicators += 1
                        note()
                    }
                case UInt8(ascii: "|") where flow == 0, UInt8(ascii: ">") where flow == 0:
                    mode = .block(parent: indents.last ?? -1, content: nil)
                    // An explicit indentation indicator (`|2`) is not needed: lines more
                    // indented than the parent are content either way, until a line is not.
                    return deepest
                case UInt8(ascii: "!"), UInt8(ascii: "&"), UInt8(ascii: "*"):
                    // A tag, an anchor or an alias: up to a blank (a flow indicator ends an
                    // anchor or alias; an open bracket in a tag is counted, which errs deep).
                    index += 1
                    while index < line.count, !Self.isBlank(line[index]) {
                        if line[index] == UInt8(ascii: "[") || line[index] == UInt8(ascii: "{") { flow += 1; note() }
                        if byte != UInt8(ascii: "!"), Self.isFlowIndicator(line[index]) { break }
                        index += 1
                    }
                    continue
                default:
                    mode = .plain(indent: column)
                }
            }
            index += 1
        }
        note()
        return deepest
    }
}
