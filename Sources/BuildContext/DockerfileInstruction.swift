import Foundation

extension DockerfileStages {
    /// One instruction of a stage as written (continuations joined, comments dropped), before
    /// any substitution: a builder substitutes with the values it has at that point of the stage.
    public struct Instruction: Sendable, Equatable {
        /// The keyword, uppercased (`COPY`, `ENV`, …).
        public var keyword: String
        /// What follows the keyword.
        public var arguments: String
        /// The line it starts on.
        public var line: Int

        public init(keyword: String, arguments: String, line: Int) {
            self.keyword = keyword
            self.arguments = arguments
            self.line = line
        }

        /// `--name=value` flags at the start (`COPY --chown=1:1 --from=build …`), and the rest.
        /// A flag without `=` (`--link`) has the value `""`.
        public var flagsAndRest: (flags: [(name: String, value: String)], rest: String) {
            var flags: [(String, String)] = []
            var rest = Substring(arguments)
            while rest.hasPrefix("--") {
                let word = rest.prefix(while: { !$0.isWhitespace })
                let body = word.dropFirst(2)
                if let equals = body.firstIndex(of: "=") {
                    flags.append((String(body[..<equals]).lowercased(), String(body[body.index(after: equals)...])))
                } else {
                    flags.append((String(body).lowercased(), ""))
                }
                rest = rest.dropFirst(word.count).drop(while: \.isWhitespace)
            }
            return (flags, String(rest))
        }

        /// The JSON (exec) form, `["a", "b"]`, when `text` is one; nil for the shell form.
        public static func execForm(_ text: String) -> [String]? {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("["), trimmed.hasSuffix("]") else { return nil }
            return try? JSONDecoder().decode([String].self, from: Data(trimmed.utf8))
        }

        /// Whether the arguments hold a heredoc (`COPY <<EOF …`), which is Dockerfile syntax 1.4's.
        public var hasHeredoc: Bool {
            arguments.range(of: #"<<-?["']?[A-Za-z_]"#, options: .regularExpression) != nil
        }
    }

    /// Shell-like words of `text` as Docker's lexer reads `ENV`, `LABEL`, `EXPOSE` and
    /// `VOLUME`: whitespace separates words; `"…"` and `'…'` quote (the quotes go); `\`
    /// escapes the next character; `$NAME` and `${NAME…}` are expanded from `values` outside
    /// single quotes. An `=` is an ordinary character: `ENV` splits pairs itself.
    public static func words(_ text: String, values: [String: String]) -> [String] {
        var words: [String] = []
        var current = ""
        var started = false
        var pending = ""  // unquoted or double-quoted text awaiting substitution
        func flushPending() {
            current += substitute(pending, values)
            pending = ""
        }
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            switch character {
            case " ", "\t", "\n":
                if started {
                    flushPending()
                    words.append(current)
                    current = ""
                    started = false
                }
            case "\\":
                started = true
                if let next = characters.popFirst() {
                    if next == "$" {
                        pending += "\\$"
                    } else {
                        flushPending()
                        current.append(next)
                    }
                }
            case "'":
                started = true
                flushPending()
                while let next = characters.popFirst(), next != "'" { current.append(next) }
            case "\"":
                started = true
                while let next = characters.popFirst(), next != "\"" {
                    if next == "\\", let escaped = characters.first, escaped == "\"" || escaped == "\\" {
                        characters.removeFirst()
                        flushPending()
                        current.append(escaped)
                    } else {
                        pending.append(next)
                    }
                }
            default:
                started = true
                pending.append(character)
            }
        }
        if started {
            flushPending()
            words.append(current)
        }
        return words
    }

    /// `KEY=value …` pairs (`ENV`, `LABEL`), or the old form `KEY value with spaces`,
    /// with values substituted as ``words(_:values:)`` does. nil when a word lacks `=` in the new form.
    public static func keyValues(_ text: String, values: [String: String]) -> [(key: String, value: String)]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let firstSpace = trimmed.firstIndex(where: \.isWhitespace) ?? Optional(trimmed.endIndex) else {
            return nil
        }
        let firstWord = trimmed[..<firstSpace]
        if !firstWord.contains("=") {
            // The old form: one key, the rest of the line its value.
            let value = trimmed[firstSpace...].trimmingCharacters(in: .whitespaces)
            guard !firstWord.isEmpty, !value.isEmpty else { return nil }
            return [(String(firstWord), words(value, values: values).joined(separator: " "))]
        }
        var pairs: [(String, String)] = []
        for word in words(trimmed, values: values) {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { return nil }
            pairs.append((String(word[..<equals]), String(word[word.index(after: equals)...])))
        }
        return pairs
    }
}
