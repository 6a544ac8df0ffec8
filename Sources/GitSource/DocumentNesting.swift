import Errors
import Foundation
import Yams

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
        if text.utf8.count > maximumBytes { throw Refusal(sizeMessage(for: what)) }
        if exceedsLimit(text) { throw Refusal(message(for: what)) }
        return try onLargeStack {
            let node = try Yams.compose(yaml: text)
            // Measured here, on the large stack, where a misjudged document can be walked
            // (and freed: releasing a deep tree recurses too) without harm.
            if let node {
                var visited = 0
                let deepest = depth(of: node, limit: maximumDepth + 1, visited: &visited)
                if deepest > maximumDepth { throw Refusal(message(for: what)) }
                if visited > maximumNodes {
                    throw Refusal(
                        "\(what) expands to more than \(maximumNodes) values (aliases of aliases?), the most Slipway reads"
                    )
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
            for child in sequence {
                deepest = max(deepest, depth(of: child, limit: limit - 1, visited: &visited, budget: budget))
            }
        case .mapping(let mapping):
            for (key, value) in mapping {
                deepest = max(
                    deepest, depth(of: key, limit: limit - 1, visited: &visited, budget: budget),
                    depth(of: value, limit: limit - 1, visited: &visited, budget: budget))
            }
        }
        return 1 + deepest
    }

    /// A document refused before parsing, with its one-line reason.
    public struct Refusal: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<DocumentNesting.Refusal>
        public var kind: Kind { .refusedDocument }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
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
        if line.count >= 3, line[0] == line[1], line[1] == line[2],
            line[0] == UInt8(ascii: "-") || line[0] == UInt8(ascii: "."),
            line.count == 3 || Self.isBlank(line[3])
        {
            mode = .token
            flow = 0
            indents.removeAll()
            line.replaceSubrange(0..<3, with: [Self.space, Self.space, Self.space])
        }
        guard let column = startLine(line) else { return deepest }
        return scanTokens(line, from: column)
    }

    /// Where `line`'s tokens begin, once its indentation has ended the block or plain scalar
    /// it closes and opened or closed block levels; nil when the whole line belongs to a
    /// scalar still open.
    private mutating func startLine(_ line: [UInt8]) -> Int? {
        var column = 0
        while column < line.count, line[column] == Self.space || line[column] == Self.tab { column += 1 }
        let empty = column == line.count || line[column] == UInt8(ascii: "\r")
        switch mode {
        case .block(let parent, let content):
            if empty { return nil }
            let needed = content ?? (column > parent ? column : Int.max)
            if column >= needed {
                mode = .block(parent: parent, content: needed)
                return nil
            }
            mode = .token
        case .plain(let indent):
            if empty { return nil }
            // A plain scalar goes on over lines indented more than the line it began on
            // (and in flow context over any line); a comment or a document marker ends it.
            let marker =
                column == 0 && line.count >= 3
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
        return column
    }

    /// Follows `line`'s tokens from `column` to its end, noting the estimate wherever it
    /// may grow, and returns the deepest so far.
    ///
    /// One loop over the bytes, kept whole: it is the scanner's state machine, each mode's
    /// case reading the byte and its neighbours, and split up it would read no clearer.
    private mutating func scanTokens(_ line: [UInt8], from column: Int) -> Int {
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
                        if line[index] == UInt8(ascii: "[") || line[index] == UInt8(ascii: "{") {
                            flow += 1
                            note()
                        }
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

extension ErrorKind where Owner == DocumentNesting.Refusal {
    /// A tag file document is refused before parsing (too deep, too large).
    public static var refusedDocument: Self { Self("refused document") }
}
