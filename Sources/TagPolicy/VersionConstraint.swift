import OCI
/// A version constraint in the syntax of Masterminds/semver, which registry-image's
/// `semver_constraint` uses: comparisons `=`, `!=`, `>`, `<`, `>=`, `<=` (`=<`); `~1.2`
/// (patch updates), `^1.2` (no major change); wildcards `1.2.x`, `1.*`; hyphen ranges
/// `1.2 - 1.4.5`; clauses joined by `,` or spaces (all must hold) and `||` (either).
///
/// As there, a prerelease version satisfies a clause only if the clause names a
/// prerelease of the same major.minor.patch.
public struct VersionConstraint: Sendable, CustomStringConvertible {
    public struct ValidationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    private struct Bound: Sendable {
        enum Operator: Sendable { case equal, notEqual, greater, less, greaterOrEqual, lessOrEqual }
        var op: Operator
        var version: SemanticVersion
    }

    /// Alternatives (`||`), each a conjunction of bounds.
    private let alternatives: [[Bound]]
    public let description: String

    public init(_ text: String) throws(ValidationError) {
        description = text
        var alternatives: [[Bound]] = []
        for alternative in text.split(separator: "||", omittingEmptySubsequences: false).map(String.init) {
            var bounds: [Bound] = []
            let tokens = Self.tokens(alternative)
            var index = 0
            while index < tokens.count {
                if index + 2 < tokens.count, tokens[index + 1] == "-" {
                    guard let low = Self.partial(tokens[index]), let high = Self.partial(tokens[index + 2]) else {
                        throw ValidationError(description: "invalid semver_constraint \(quoted(text)): bad range \(quoted(tokens[index]).dropFirst().dropLast()) - \(quoted(tokens[index + 2]).dropFirst().dropLast())")
                    }
                    bounds.append(Bound(op: .greaterOrEqual, version: low.floor))
                    bounds += high.upper(inclusive: true)
                    index += 3
                    continue
                }
                guard let clause = Self.clause(tokens[index]) else {
                    throw ValidationError(description: "invalid semver_constraint \(quoted(text)): cannot read \(quoted(tokens[index]))")
                }
                bounds += clause
                index += 1
            }
            guard !bounds.isEmpty else {
                throw ValidationError(description: "invalid semver_constraint \(quoted(text)): an empty clause")
            }
            alternatives.append(bounds)
        }
        self.alternatives = alternatives
    }

    /// Whether `version` satisfies the constraint.
    public func allows(_ version: SemanticVersion) -> Bool {
        alternatives.contains { bounds in
            if version.isPrerelease {
                // Masterminds: a prerelease only matches when a bound names that same version line as a prerelease.
                let named = bounds.contains {
                    $0.version.isPrerelease && ($0.version.major, $0.version.minor, $0.version.patch) == (version.major, version.minor, version.patch)
                }
                guard named else { return false }
            }
            return bounds.allSatisfy { bound in
                switch bound.op {
                case .equal: version.samePrecedence(as: bound.version)
                case .notEqual: !version.samePrecedence(as: bound.version)
                case .greater: bound.version < version
                case .less: version < bound.version
                case .greaterOrEqual: !(version < bound.version)
                case .lessOrEqual: !(bound.version < version)
                }
            }
        }
    }

    /// Splits on commas and spaces, keeping an operator with its version (`>= 1.2` → `>=1.2`).
    private static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var pendingOperator = ""
        for raw in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
            let token = String(raw)
            if token.allSatisfy({ "<>=!~^".contains($0) }) && token != "-" {
                pendingOperator += token
                continue
            }
            tokens.append(pendingOperator + token)
            pendingOperator = ""
        }
        if !pendingOperator.isEmpty { tokens.append(pendingOperator) }
        return tokens
    }

    /// A version that may have wildcards or missing parts: `1`, `1.2`, `1.x`, `*`.
    private struct Partial {
        var numbers: [UInt64]      // the parts given, before any wildcard
        var version: SemanticVersion
        var isWildcardOrShort: Bool { numbers.count < 3 }

        var floor: SemanticVersion { version }

        /// The bounds that keep a version at or below this partial (`<= 1.4` means `< 1.5.0`).
        func upper(inclusive: Bool) -> [Bound] {
            guard isWildcardOrShort else { return [Bound(op: inclusive ? .lessOrEqual : .less, version: version)] }
            guard let bumped = Partial.bump(numbers) else { return [] }
            return [Bound(op: .less, version: bumped)]
        }

        static func bump(_ numbers: [UInt64]) -> SemanticVersion? {
            switch numbers.count {
            case 0: return nil
            case 1: return SemanticVersion("\(numbers[0] + 1).0.0")
            default: return SemanticVersion("\(numbers[0]).\(numbers[1] + 1).0")
            }
        }
    }

    private static func partial(_ text: String) -> Partial? {
        var body = Substring(text)
        if body.first == "v" || body.first == "V" { body = body.dropFirst() }
        if body == "*" || body == "x" || body == "X" {
            return Partial(numbers: [], version: SemanticVersion("0.0.0")!)
        }
        let core = body.split(separator: "-", maxSplits: 1).first.map(String.init) ?? ""
        var numbers: [UInt64] = []
        for piece in core.split(separator: ".", omittingEmptySubsequences: false) {
            if piece == "x" || piece == "X" || piece == "*" { break }
            guard let value = UInt64(piece) else { return nil }
            numbers.append(value)
        }
        guard numbers.count <= 3 else { return nil }
        if numbers.count == 3 {
            guard let version = SemanticVersion(String(body)) else { return nil }
            return Partial(numbers: numbers, version: version)
        }
        let padded = (numbers + [0, 0, 0]).prefix(3).map(String.init).joined(separator: ".")
        return Partial(numbers: numbers, version: SemanticVersion(padded)!)
    }

    private static func clause(_ token: String) -> [Bound]? {
        let operators = [">=", "=>", "<=", "=<", "!=", "~>", ">", "<", "=", "~", "^"]
        let op = operators.first { token.hasPrefix($0) } ?? ""
        guard let partial = partial(String(token.dropFirst(op.count))) else { return nil }
        let v = partial.version
        switch op {
        case "", "=":
            if partial.numbers.isEmpty { return [Bound(op: .greaterOrEqual, version: v)] }
            if partial.isWildcardOrShort { return [Bound(op: .greaterOrEqual, version: v)] + partial.upper(inclusive: false) }
            return [Bound(op: .equal, version: v)]
        case "!=":
            return [Bound(op: .notEqual, version: v)]
        case ">":
            guard partial.isWildcardOrShort, let bumped = Partial.bump(partial.numbers) else { return [Bound(op: .greater, version: v)] }
            return [Bound(op: .greaterOrEqual, version: bumped)]
        case ">=", "=>":
            return [Bound(op: .greaterOrEqual, version: v)]
        case "<":
            return [Bound(op: .less, version: v)]
        case "<=", "=<":
            return partial.upper(inclusive: true)
        case "~", "~>":
            // ~1.2.3 → >=1.2.3 <1.3.0; ~1 → >=1.0.0 <2.0.0
            let upper = partial.numbers.count <= 1 ? Partial.bump([v.major]) : Partial.bump([v.major, v.minor])
            return [Bound(op: .greaterOrEqual, version: v)] + (upper.map { [Bound(op: .less, version: $0)] } ?? [])
        case "^":
            // ^1.2.3 → <2.0.0; ^0.2.3 → <0.3.0; ^0.0.3 → <0.0.4
            let upper: SemanticVersion? =
                if v.major > 0 || partial.numbers.count <= 1 { Partial.bump([v.major]) }
                else if v.minor > 0 || partial.numbers.count == 2 { Partial.bump([v.major, v.minor]) }
                else { SemanticVersion("0.0.\(v.patch + 1)") }
            return [Bound(op: .greaterOrEqual, version: v)] + (upper.map { [Bound(op: .less, version: $0)] } ?? [])
        default:
            return nil
        }
    }
}
