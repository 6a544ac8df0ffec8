import Foundation
import Testing
import Yams

@testable import GitSource

/// The depth limit on YAML and JSON documents from repositories and build inputs: the scan
/// refuses what nests too deeply before Yams (whose recursion overflowed the stack) sees it,
/// lets ordinary documents through, and never estimates less than the depth Yams reaches.
@Suite struct DocumentNestingTests {
    static let limit = DocumentNesting.maximumDepth

    @Test(arguments: [
        ("flow sequences", String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)),
        ("flow mappings", String(repeating: "{a: ", count: 5000) + "x" + String(repeating: "}", count: 5000)),
        ("compact block sequences", String(repeating: "- ", count: 5000) + "x"),
        (
            "indented block mappings",
            (0..<200).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " x"
        ),
        ("JSON arrays", "{\"a\": " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"),
        ("closes hidden in strings", String(repeating: #"["]", "#, count: 100) + String(repeating: "]", count: 100)),
        (
            "a quote inside a plain scalar",
            "[a 'b, " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + " 'c]"
        ),
        (
            "a block scalar holding a quote",
            "a: |\n  \"\nb: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        ),
        (
            "a comment holding closes",
            "a: # ]]]]]]]]\n  " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        ),
    ])
    func deepDocumentsAreRefusedBeforeYamsComposesThem(_ kind: String, _ text: String) throws {
        #expect(DocumentNesting.exceedsLimit(text), "\(kind) is refused by the scan")
        #expect(throws: DocumentNesting.Refusal.self, "\(kind) is refused by compose") {
            try DocumentNesting.compose(text, what: "x")
        }
    }

    @Test func ordinaryDocumentsPass() throws {
        let documents = [
            "tags:\n  base: '1.10'\n  other: \"[not a list\"\n",
            "# a comment with [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ brackets\nversion: 1.2.3\n",
            "script: |\n  if [ -n \"$X\" ]; then\n    echo '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'\n  fi\nversion: 2\n",
            "[" + (0..<500).map { #"{"name": "n\#($0)", "tags": ["a", "b"]}"# }.joined(separator: ", ") + "]",
            "a:\n  b:\n    c:\n      - d: [1, 2, {e: f}]\n      - 'it''s'\n",
            "text: don't [stop] me\nmore: a 'b\" c\n",
        ]
        for text in documents {
            #expect(
                !DocumentNesting.exceedsLimit(text),
                "passes: \(text.prefix(60)), estimated \(DocumentNesting.estimatedDepth(text))")
            #expect(throws: Never.self) { _ = try DocumentNesting.compose(text, what: "x") }
        }
    }

    @Test func largeAndExpandingDocumentsAreRefused() throws {
        let large = String(repeating: "k: v\n", count: DocumentNesting.maximumBytes / 5 + 1)
        #expect(throws: DocumentNesting.Refusal.self) { try DocumentNesting.compose(large, what: "x") }
        // Aliases of aliases: nine levels of ten expand to a billion values.
        var laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            laughs +=
                "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
                + "]\n"
        }
        #expect(throws: DocumentNesting.Refusal.self) { try DocumentNesting.load(laughs, what: "x") }
    }

    @Test func theMessageNamesTheFileAndTheLimit() {
        let message = DocumentNesting.message(for: "BUILD_ARGS_FILE=/x/args.yaml")
        #expect(
            message.contains("BUILD_ARGS_FILE=/x/args.yaml") && message.contains("\(Self.limit) levels")
                && !message.contains("\n"))
    }

    /// Yams on the large stack survives a document nested 30,000 levels deep (20,000
    /// overflowed the 8 MiB main thread's stack), so a document the scan misjudged does not
    /// crash the process; the depth check afterwards refuses it.
    @Test func theLargeStackHoldsDocumentsTheMainThreadCannot() throws {
        let depth = 30_000
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let measured = try DocumentNesting.onLargeStack { () throws -> Int in
            var visited = 0
            return DocumentNesting.depth(
                of: try #require(try Yams.compose(yaml: text)), limit: .max, visited: &visited, budget: .max)
        }
        #expect(measured == depth)
    }

    /// Random documents from YAML's structural pieces: whatever Yams composes nests no
    /// deeper than the scan estimated.
    @Test func theEstimateIsNeverBelowTheDepthYamsReaches() throws {
        let pieces = [
            "[", "]", "{", "}", "'", "\"", ",", ": ", ":", "- ", "? ", " #", "\n", "\n  ", "\n    ", "a", "b c",
            "|\n", ">\n", "!t ", "&a ", "*a", "\\", "''", " ",
        ]
        var generator = SystemRandomNumberGenerator()
        var composed = 0
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 1...40, using: &generator)).map { _ in
                pieces.randomElement(using: &generator)!
            }.joined()
            guard let node = try? Yams.compose(yaml: text) else { continue }
            composed += 1
            var visited = 0
            let real = DocumentNesting.depth(of: node, limit: .max, visited: &visited, budget: .max)
            let estimate = DocumentNesting.estimatedDepth(text)
            #expect(estimate >= real, "estimate \(estimate) < real \(real) for \(text.debugDescription)")
            if estimate < real { break }
        }
        #expect(composed > 1000, "enough random documents composed: \(composed)")
    }

    /// Valid documents built from the constructs that could mislead the scan (quoted and
    /// plain scalars holding brackets, quotes and `#`, multi-line quoted scalars, block
    /// scalars, flow inside block, block nesting by indentation and by `-`), up to 13 deep:
    /// the estimate is never below the depth Yams reaches.
    @Test func theEstimateHoldsForNestedDocumentsWithTrickyScalars() throws {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let text = "root:" + Self.block(Int.random(in: 0...12, using: &g), indent: 1, &g) + "\n"
            let node = try #require(try Yams.compose(yaml: text), "\(text.debugDescription)")
            var visited = 0
            let real = DocumentNesting.depth(of: node, limit: .max, visited: &visited, budget: .max)
            let estimate = DocumentNesting.estimatedDepth(text)
            #expect(estimate >= real, "estimate \(estimate) < real \(real) for \(text.debugDescription)")
            if estimate < real { break }
        }
    }

    // The generator of valid documents.
    static let plains = ["a", "a'b", "x\"y", "a]b", "a}b", "p#q", "a: b", "it's [x]", "-x", ":y", "?z"]
    static let flowPlains = ["a", "a'b", "x\"y", "p#q", "-x", "b c"]
    static let singles = ["'a'", "']]]'", "'\"[['", "'it''s ]'", "'a\n  ]] b'"]
    static let doubles = ["\"a\"", "\"]]]\"", "\"'[[\"", "\"\\\" ]]\"", "\"a\n  }} b\""]

    static func flow(_ depth: Int, _ g: inout SystemRandomNumberGenerator) -> String {
        let choice = depth <= 0 ? Int.random(in: 0...2, using: &g) : Int.random(in: 0...5, using: &g)
        switch choice {
        case 0: return flowPlains.randomElement(using: &g)!
        case 1: return singles.randomElement(using: &g)!
        case 2: return doubles.randomElement(using: &g)!
        case 3, 4:
            return "["
                + (0..<Int.random(in: 0...3, using: &g)).map { _ in flow(depth - 1, &g) }.joined(
                    separator: Bool.random(using: &g) ? ", " : ",\n  ") + "]"
        default:
            return "{"
                + (0..<Int.random(in: 0...3, using: &g)).map { i in "k\(i): " + flow(depth - 1, &g) }.joined(
                    separator: ", ") + "}"
        }
    }

    static func block(_ depth: Int, indent: Int, _ g: inout SystemRandomNumberGenerator) -> String {
        let pad = String(repeating: " ", count: indent)
        let choice = depth <= 0 ? Int.random(in: 0...3, using: &g) : Int.random(in: 0...6, using: &g)
        switch choice {
        case 0: return " " + plains.randomElement(using: &g)!.replacingOccurrences(of: ": ", with: " ")
        case 1:
            return " "
                + (singles + doubles).randomElement(using: &g)!.replacingOccurrences(of: "\n", with: "\n" + pad + " ")
        case 2:
            return " "
                + flow(Int.random(in: 0...depth, using: &g), &g).replacingOccurrences(of: "\n", with: "\n" + pad + " ")
        case 3: return " |\n" + pad + "  \"]]' [[ {{ #\n" + pad + "  - x\n"
        case 4, 5:
            let step = Int.random(in: 1...3, using: &g)
            return "\n"
                + (0..<Int.random(in: 1...3, using: &g)).map { _ in
                    pad + "-" + block(depth - 1, indent: indent + step + 1, &g)
                }.joined(separator: "\n")
        default:
            let step = Int.random(in: 1...3, using: &g)
            return "\n"
                + (0..<Int.random(in: 1...3, using: &g)).map { i in
                    pad + "k\(i) :".replacingOccurrences(of: " :", with: ":")
                        + block(depth - 1, indent: indent + step, &g)
                }.joined(separator: "\n")
        }
    }

}
