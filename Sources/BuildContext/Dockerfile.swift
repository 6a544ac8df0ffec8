import Errors
import Foundation
import OCI

/// The stages of a Dockerfile as far as a build's inputs go: which image each `FROM` names
/// once `ARG` defaults and build args are applied, and which of those come from outside
/// (not `scratch`, not an earlier stage).
public struct DockerfileStages: Sendable, Equatable {
    public struct Stage: Sendable, Equatable {
        /// The `AS` name, lowercased as Docker compares it.
        public var name: String?
        /// The image reference after substitution, as written.
        public var base: String
        /// `--platform=…` after substitution, if given. `$BUILDPLATFORM` and the other
        /// automatic platform args only have values when the parse was given ``Platforms``.
        public var platform: String?
        /// `--platform=…` as written, before substitution.
        public var platformFlag: String? = nil
        /// Whether the stage has a `RUN` instruction: whether building it runs its programs.
        public var runs: Bool = false
        /// The line of its `FROM`.
        public var line: Int = 0
        /// What follows `FROM`, as written.
        public var written: String = ""
        /// The instructions after its `FROM`, unsubstituted, for the assembler to judge and apply.
        public var instructions: [Instruction] = []

        /// Whether its `FROM` reads `$BUILDPLATFORM`, `$BUILDOS`, `$BUILDARCH` or `$BUILDVARIANT`.
        public var usesBuildPlatformArgs: Bool {
            ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"].contains {
                written.contains("$" + $0) || written.contains("${" + $0)
            }
        }

        /// `FROM --platform=$BUILDPLATFORM …`: the stage runs on the builder's own platform
        /// (a cross-build), whatever the target.
        public var onBuildPlatform: Bool {
            guard let flag = platformFlag?.trimmingCharacters(in: .whitespaces) else { return false }
            return flag == "$BUILDPLATFORM" || flag == "${BUILDPLATFORM}"
        }
    }

    /// The platform a build runs on and the one it builds for: the values of the automatic
    /// args buildah (like BuildKit) defines in the global scope, `BUILDPLATFORM`, `BUILDOS`,
    /// `BUILDARCH`, `BUILDVARIANT` and the `TARGET*` four, spelled as the platforms are
    /// given (buildah gives `linux/arm64` for `--platform linux/arm64`, measured).
    public struct Platforms: Sendable, Equatable {
        public var build: Platform
        public var target: Platform
        public init(build: Platform, target: Platform) {
            self.build = build
            self.target = target
        }

        public var arguments: [String: String] {
            var result: [String: String] = [:]
            for (prefix, platform) in [("BUILD", build), ("TARGET", target)] {
                result[prefix + "PLATFORM"] = platform.description
                result[prefix + "OS"] = platform.os
                result[prefix + "ARCH"] = platform.architecture
                result[prefix + "VARIANT"] = platform.variant ?? ""
            }
            return result
        }
    }

    public struct ParseError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<DockerfileStages.ParseError>
        public var kind: Kind { .invalidDockerfile }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    public var stages: [Stage]

    /// The global `ARG` values (build args over defaults, and the automatic platform args):
    /// what a stage's `ARG <name>` without a default of its own takes.
    public var globalArgs: [String: String] = [:]

    /// The build args whose values only choose `FROM` images: declared by an `ARG` in the
    /// global scope (before the first `FROM`) and never declared by an `ARG` inside a stage,
    /// so no `RUN`, `COPY` or `ENV` can read them. Their effect on a build is the base each
    /// `FROM` resolves to, so the inputs digest records those bases instead of their values.
    ///
    /// Left out, to stay on the safe side: an arg read by a `FROM --platform=…` flag (it picks
    /// the manifest of an index, which the index digest does not say), and one read by the
    /// default of a global arg that is not itself FROM-only. The automatic platform args
    /// (`TARGETARCH`, `BUILDPLATFORM`, …) count only when the Dockerfile declares them globally.
    public var fromOnlyArgs: Set<String> = []

    /// Bases that must come from a registry (or an `IMAGE_ARG_*`), in `FROM` order, once each.
    public var externalBases: [String] {
        var names = Set<String>()
        var result: [String] = []
        for stage in stages {
            let base = stage.base
            if base.lowercased() != "scratch", !names.contains(base.lowercased()), !result.contains(base) {
                result.append(base)
            }
            if let name = stage.name { names.insert(name) }
        }
        return result
    }

    /// Parses `text` with `buildArgs` overriding `ARG` defaults (global ARGs, before the first
    /// `FROM`, are the only ones `FROM` lines can use, as in Docker). With `platforms`, `FROM`
    /// lines may also use the automatic platform args (`--platform=$BUILDPLATFORM`,
    /// `base:${TARGETARCH}`) as buildah gives them; without, those are empty.
    public init(_ text: String, buildArgs: [String: String] = [:], platforms: Platforms? = nil) throws(ParseError) {
        var globals: [String: String] = platforms?.arguments ?? [:]
        var stages: [Stage] = []
        var declaredGlobally: Set<String> = []
        var defaultReads: [String: Set<String>] = [:]  // global arg → the args its default reads
        var seenByStages: Set<String> = []  // declared in a stage, or read by a --platform flag
        for (number, instruction) in Self.instructions(text) {
            let (keyword, rest) = Self.split(instruction)
            switch keyword {
            case "ARG" where stages.isEmpty:
                for declaration in rest.split(separator: " ", omittingEmptySubsequences: true) {
                    let parts = declaration.split(separator: "=", maxSplits: 1).map(String.init)
                    let name = parts[0]
                    let fallback = parts.count > 1 ? Self.unquote(parts[1]) : nil
                    if let value = buildArgs[name] ?? fallback.map({ Self.substitute($0, globals) }) {
                        globals[name] = value
                    }
                    declaredGlobally.insert(name)
                    defaultReads[name, default: []].formUnion(fallback.map(Self.references) ?? [])
                }
            case "ARG":
                for declaration in rest.split(separator: " ", omittingEmptySubsequences: true) {
                    seenByStages.insert(String(declaration.split(separator: "=", maxSplits: 1)[0]))
                }
                stages[stages.count - 1].instructions.append(
                    Instruction(keyword: keyword, arguments: rest, line: number))
            case "FROM":
                stages.append(try Self.stage(from: rest, line: number, globals: globals, seenByStages: &seenByStages))
            case "RUN" where !stages.isEmpty:
                stages[stages.count - 1].runs = true
                stages[stages.count - 1].instructions.append(
                    Instruction(keyword: keyword, arguments: rest, line: number))
            default:
                if !stages.isEmpty {
                    stages[stages.count - 1].instructions.append(
                        Instruction(keyword: keyword, arguments: rest, line: number))
                }
            }
        }
        guard !stages.isEmpty else { throw ParseError("the Dockerfile has no FROM instruction") }
        self.stages = stages
        self.globalArgs = globals
        self.fromOnlyArgs = Self.fromOnly(
            declaredGlobally: declaredGlobally, seenByStages: seenByStages, defaultReads: defaultReads)
    }

    /// The global args no stage sees (``fromOnlyArgs``): what a stage sees includes what the
    /// defaults of the global args it sees read.
    static func fromOnly(declaredGlobally: Set<String>, seenByStages: Set<String>, defaultReads: [String: Set<String>])
        -> Set<String>
    {
        var seenByStages = seenByStages
        var pending = Array(seenByStages)
        while let name = pending.popLast() {
            for read in defaultReads[name] ?? [] where seenByStages.insert(read).inserted { pending.append(read) }
        }
        return declaredGlobally.subtracting(seenByStages)
    }

    /// The stage a `FROM` line (its arguments, `rest`) starts, its image and `--platform`
    /// substituted with the global args; the args its `--platform` reads are seen by stages.
    static func stage(from rest: String, line number: Int, globals: [String: String], seenByStages: inout Set<String>)
        throws(ParseError) -> Stage
    {
        var words = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var platform: String?
        var platformFlag: String?
        while let first = words.first, first.hasPrefix("--") {
            if first.lowercased().hasPrefix("--platform=") {
                platformFlag = String(first.dropFirst(11))
                seenByStages.formUnion(Self.references(String(first.dropFirst(11))))
                platform = Self.substitute(String(first.dropFirst(11)), globals)
            }
            words.removeFirst()
        }
        guard let image = words.first else {
            throw ParseError("Dockerfile line \(number): FROM names no image")
        }
        var name: String?
        if words.count >= 3, words[1].lowercased() == "as" { name = words[2].lowercased() }
        let base = Self.substitute(image, globals)
        guard !base.isEmpty else {
            throw ParseError(
                "Dockerfile line \(number): FROM \(image) is empty once build args are applied; give it a default (ARG) or a build arg"
            )
        }
        return Stage(
            name: name, base: base, platform: platform, platformFlag: platformFlag, line: number, written: rest)
    }

    /// The Dockerfile's text with the image of each `FROM` whose base (after substitution,
    /// as in ``stages``) is a key of `replacements` replaced by its value: how a build is
    /// pinned to the exact digests its inputs digest and labels name. Every other byte is kept.
    public static func pinning(
        _ text: String, buildArgs: [String: String], platforms: Platforms? = nil,
        replacements: [String: String]
    ) throws(ParseError) -> String {
        let stages = try DockerfileStages(text, buildArgs: buildArgs, platforms: platforms).stages
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        var stageIndex = 0
        var continuing = false
        for (number, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") || (trimmed.isEmpty && !continuing) { continue }
            defer { continuing = trimmed.hasSuffix("\\") }
            guard !continuing else { continue }
            var words = trimmed.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.first?.uppercased() == "FROM", stageIndex < stages.count else { continue }
            let stage = stages[stageIndex]
            stageIndex += 1
            guard let replacement = replacements[stage.base] else { continue }
            guard let imageIndex = words.indices.dropFirst().first(where: { !words[$0].hasPrefix("--") }),
                words[imageIndex] != "\\"
            else {
                throw ParseError(
                    "Dockerfile line \(number + 1): cannot pin a FROM whose image is on a continuation line")
            }
            words[imageIndex] = replacement
            let indent = line.prefix(while: { $0 == " " || $0 == "\t" })
            lines[number] = indent + words.joined(separator: " ")
        }
        return lines.joined(separator: "\n")
    }

    /// The parser directives (`# escape=\``, `# syntax=…`): `# key=value` comments before
    /// anything else, keys lowercased.
    public static func directives(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { break }
            let key = line[line.index(after: line.startIndex)..<equals].trimmingCharacters(in: .whitespaces)
                .lowercased()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter }) else { break }
            result[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    /// Logical instructions with their first line number: comments dropped, `\` continuations joined.
    static func instructions(_ text: String) -> [(Int, String)] {
        var result: [(Int, String)] = []
        var current = ""
        var start = 0
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if current.isEmpty && (line.isEmpty || line.hasPrefix("#")) { continue }
            if !current.isEmpty && line.hasPrefix("#") { continue }  // comments inside a continuation
            if current.isEmpty { start = index + 1 }
            if line.hasSuffix("\\") {
                current += line.dropLast() + " "
            } else {
                result.append((start, current + line))
                current = ""
            }
        }
        if !current.isEmpty { result.append((start, current)) }
        return result
    }

    static func split(_ instruction: String) -> (String, String) {
        let trimmed = instruction.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(where: \.isWhitespace) else { return (trimmed.uppercased(), "") }
        return (trimmed[..<space].uppercased(), trimmed[space...].trimmingCharacters(in: .whitespaces))
    }

    static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    /// The names `text` reads as `$NAME` or `${NAME…}`, nested ones included (a superset is
    /// harmless: it only keeps more args in the inputs digest).
    static func references(_ text: String) -> Set<String> {
        var names: Set<String> = []
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            defer { index += 1 }
            if characters[index] == "\\" {
                index += 1
                continue
            }
            guard characters[index] == "$" else { continue }
            var start = index + 1
            if start < characters.count, characters[start] == "{" { start += 1 }
            var end = start
            while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_"
            { end += 1 }
            if end > start { names.insert(String(characters[start..<end])) }
        }
        return names
    }

    /// `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}`, as Docker expands them.
    public static func substitute(_ text: String, _ values: [String: String]) -> String {
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\\", text.index(after: index) < text.endIndex, text[text.index(after: index)] == "$" {
                result.append("$")
                index = text.index(index, offsetBy: 2)
                continue
            }
            guard character == "$" else {
                result.append(character)
                index = text.index(after: index)
                continue
            }
            var next = text.index(after: index)
            if next < text.endIndex, text[next] == "{", let close = text[next...].firstIndex(of: "}") {
                let body = String(text[text.index(after: next)..<close])
                if let range = body.range(of: ":-") {
                    let name = String(body[..<range.lowerBound])
                    let value = values[name].flatMap { $0.isEmpty ? nil : $0 }
                    result += value ?? substitute(String(body[range.upperBound...]), values)
                } else if let range = body.range(of: ":+") {
                    let name = String(body[..<range.lowerBound])
                    if let value = values[name], !value.isEmpty {
                        result += substitute(String(body[range.upperBound...]), values)
                    }
                } else {
                    result += values[body] ?? ""
                }
                index = text.index(after: close)
                continue
            }
            let nameStart = next
            while next < text.endIndex, text[next].isLetter || text[next].isNumber || text[next] == "_" {
                next = text.index(after: next)
            }
            if nameStart == next {
                result.append("$")
            } else {
                result += values[String(text[nameStart..<next])] ?? ""
            }
            index = next
        }
        return result
    }
}

extension ErrorKind where Owner == DockerfileStages.ParseError {
    /// The Dockerfile cannot be parsed.
    public static var invalidDockerfile: Self { Self("invalid Dockerfile") }
}
