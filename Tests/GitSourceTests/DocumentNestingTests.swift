import Foundation
@testable import GitSource
import Testing
import Yams

/// The depth limit on YAML and JSON documents from repositories and build inputs: the scan
/// refuses what nests too deeply before Yams (whose recursion overflowed the stack) sees it,
/// lets ordinary documents through, and never estimates less than the depth Yams reaches.
@Suite struct DocumentNestingTests {
    static let limit = DocumentNesting.maximumDepth

    @Test(arguments: [
        ("flow sequences", String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)),
        ("flow mappings", String(repeating: "{a: ", count: 5000) + "x" + String(repeating: "}", count: 5000)),
        ("compact block sequences", String(repeating: "- ", count: 5000) + "x"),
        ("indented block mappings", (0..<200).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " x"),
        ("JSON arrays", "{\"a\": " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"),
        ("closes hidden in strings", String(repeating: #"["]", "#, count: 100) + String(repeating: "]", count: 100)),
        ("a quote inside a plain scalar", "[a 'b, " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + " 'c]"),
        ("a block scalar holding a quote", "a: |\n  \"\nb: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)),
        ("a comment holding closes", "a: # ]]]]]]]]\n  " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)),
    ])
    func deepDocumentsAreRefusedBeforeYamsComposesThem(_ kind: String, _ text: String) throws {
        #expect(DocumentNesting.exceedsLimit(text), "\(kind) is refused by the scan")
        #expect(throws: DocumentNesting.Refusal.self, "\(kind) is refused by compose") { try DocumentNesting.compose(text, what: "x") }
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
            #expect(!DocumentNesting.exceedsLimit(text), "passes: \(text.prefix(60)), estimated \(DocumentNesting.estimatedDepth(text))")
            #expect(throws: Never.self) { _ = try DocumentNesting.compose(text, what: "x") }
        }
    }

    @Test func largeAndExpandingDocumentsAreRefused() throws {
        let large = String(repeating: "k: v\n", count: DocumentNesting.maximumBytes / 5 + 1)
        #expect(throws: DocumentNesting.Refusal.self) { try DocumentNesting.compose(large, what: "x") }
        // Aliases of aliases: nine levels of ten expand to a billion values.
        var laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { laughs += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        #expect(throws: DocumentNesting.Refusal.self) { try DocumentNesting.load(laughs, what: "x") }
    }

    @Test func theMessageNamesTheFileAndTheLimit() {
        let message = DocumentNesting.message(for: "BUILD_ARGS_FILE=/x/args.yaml")
        #expect(message.contains("BUILD_ARGS_FILE=/x/args.yaml") && message.contains("\(Self.limit) levels") && !message.contains("\n"))
    }

    /// Yams on the large stack survives a document nested 30,000 levels deep (20,000
    /// overflowed the 8 MiB main thread's stack), so a document the scan misjudged does not
    /// crash the process; the depth check afterwards refuses it.
    @Test func theLargeStackHoldsDocumentsTheMainThreadCannot() throws {
        let depth = 30_000
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let measured = try DocumentNesting.onLargeStack { () throws -> Int in
            var visited = 0
            return DocumentNesting.depth(of: try #require(try Yams.compose(yaml: text)), limit: .max, visited: &visited, budget: .max)
        }
        #expect(measured == depth)
    }

    /// Random documents from YAML's structural pieces: whatever Yams composes nests no
    /// deeper than the scan estimated.
    @Test func theEstimateIsNeverBelowTheDepthYamsReaches() throws {
        let pieces = ["[", "]", "{", "}", "'", "\"", ",", ": ", ":", "- ", "? ", " #", "\n", "\n  ", "\n    ", "a", "b c",
                      "|\n", ">\n", "!t ", "&a ", "*a", "\\", "''", " "]
        var generator = SystemRandomNumberGenerator()
        var composed = 0
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 1...40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
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
}
