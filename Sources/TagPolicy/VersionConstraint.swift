import Errors
import Foundation
import OCI

/// A version constraint with the grammar and the matching rules of Masterminds/semver v3,
/// which registry-image's `semver_constraint` uses
/// (https://github.com/Masterminds/semver#checking-version-constraints): comparisons `=`,
/// `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`); `~1.2` (patch updates), `^1.2` (no major
/// change); wildcards `1.2.x`, `1.*`, `*`; hyphen ranges `1.2 - 1.4.5`; clauses joined by
/// `,` or spaces (all must hold) and `||` (either).
///
/// Prereleases follow v3's group rule: a prerelease version can satisfy an `||` alternative
/// only if some clause of that alternative names a prerelease (any one: `>= 1.2.0-0` admits
/// `1.5.0-beta.1`); otherwise it is refused, as `>= 1.2` refuses `1.3.0-rc.1`.
public struct VersionConstraint: Sendable, CustomStringConvertible {
    public struct ValidationError: SlipwayError {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<VersionConstraint.ValidationError>
        public var kind: Kind { .invalidConstraint }
        /// What failed, with which value, and what to do.
        public let message: String
        public init(_ message: String) { self.message = message }
    }

    /// One comparison, kept as Masterminds keeps it: the operator, the version with missing
    /// or wildcard parts set to zero, and which parts were wildcards.
    private struct Clause: Sendable {
        enum Operator: String, Sendable, CaseIterable {
            case tildeOrEqual = ""
            case equal = "="
            case notEqual = "!="
            case greater = ">"
            case less = "<"
            case greaterOrEqual = ">="
            case greaterOrEqualAlias = "=>"
            case lessOrEqual = "<="
            case lessOrEqualAlias = "=<"
            case tilde = "~"
            case tildeAlias = "~>"
            case caret = "^"
        }
        var op: Operator
        var version: SemanticVersion
        /// Some part was a wildcard or missing (`1.2`, `1.x`, `*`).
        var dirty: Bool
        /// The minor part (and so the patch) was a wildcard or missing.
        var minorDirty: Bool
        /// Only the patch part was a wildcard or missing.
        var patchDirty: Bool
    }

    /// Alternatives (`||`), each a conjunction of clauses, and whether it names a prerelease.
    private let alternatives: [(clauses: [Clause], admitsPrereleases: Bool)]
    public let description: String

    // The patterns of Masterminds v3 (`constraints.go`), in ICU syntax, which reads them alike.
    private static let versionPattern =
        #"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?"#
        + #"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"#
    private static let operatorPattern = #"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"#

    public init(_ text: String) throws(ValidationError) {
        description = text
        let v = Self.versionPattern
        let ops = Self.operatorPattern
        let range = Self.regex(#"\s*("# + v + #")\s+-\s+("# + v + #")\s*"#)
        let valid = Self.regex(
            #"^(\s*("# + ops + #")\s*("# + v + #")\s*)((?:\s+|,\s*)("# + ops + #")\s*("# + v + #")\s*)*$"#)
        let find = Self.regex("(" + ops + #")\s*("# + v + ")")
        let single = Self.regex(#"^\s*("# + ops + #")\s*("# + v + #")\s*$"#)

        // `1.2 - 1.4.5` becomes `>= 1.2, <= 1.4.5`, as Masterminds rewrites it before anything else.
        var rewritten = text
        for match in Self.matches(range, in: text) {
            let low = match[1] ?? ""
            let high = match[11] ?? ""
            if let found = rewritten.range(of: match[0] ?? "") {
                rewritten.replaceSubrange(found, with: ">= \(low), <= \(high) ")
            }
        }
        var alternatives: [(clauses: [Clause], admitsPrereleases: Bool)] = []
        for alternative in rewritten.components(separatedBy: "||") {
            guard !Self.matches(valid, in: alternative).isEmpty else {
                throw ValidationError(
                    "invalid semver_constraint \(quoted(text)): cannot read \(quoted(alternative.trimmingCharacters(in: .whitespaces))) (e.g. \">= 1.2, < 2\", \"~1.4\", \"1.x || >= 3\")"
                )
            }
            var clauses: [Clause] = []
            for found in Self.matches(find, in: alternative) {
                let token = found[0] ?? ""
                guard let parts = Self.matches(single, in: token).first,
                    let clause = Self.clause(operator: parts[1] ?? "", parts: parts)
                else {
                    throw ValidationError("invalid semver_constraint \(quoted(text)): cannot read \(quoted(token))")
                }
                clauses.append(clause)
            }
            alternatives.append((clauses, clauses.contains { $0.version.isPrerelease }))
        }
        self.alternatives = alternatives
    }

    /// Whether `version` satisfies the constraint (Masterminds' `Constraints.Check`).
    public func allows(_ version: SemanticVersion) -> Bool {
        alternatives.contains { alternative in
            if version.isPrerelease && !alternative.admitsPrereleases { return false }
            return alternative.clauses.allSatisfy { Self.check(version, $0) }
        }
    }

    // MARK: - Parsing

    /// `parts` are the groups of the single-clause pattern: 2 the version as written,
    /// 3 the major, 4 `.minor`, 5 `.patch`, 6 `-prerelease`.
    private static func clause(operator text: String, parts: [String?]) -> Clause? {
        guard let op = Clause.Operator(rawValue: text) else { return nil }
        let major = parts[3] ?? ""
        let minor = (parts[4] ?? "").dropFirst()
        let patch = (parts[5] ?? "").dropFirst()
        let pre = parts[6] ?? ""
        var written = parts[2] ?? ""
        var dirty = false
        var minorDirty = false
        var patchDirty = false
        if isWildcard(major) || major.isEmpty {
            written = "0.0.0" + pre
            dirty = true
        } else if isWildcard(minor) || minor.isEmpty {
            written = "\(major).0.0" + pre
            dirty = true
            minorDirty = true
        } else if isWildcard(patch) || patch.isEmpty {
            written = "\(major).\(minor).0" + pre
            dirty = true
            patchDirty = true
        }
        guard let version = SemanticVersion(written) else { return nil }
        return Clause(op: op, version: version, dirty: dirty, minorDirty: minorDirty, patchDirty: patchDirty)
    }

    private static func isWildcard<S: StringProtocol>(_ part: S) -> Bool { part == "x" || part == "X" || part == "*" }

    // MARK: - Matching, one function per operator as in Masterminds

    private static func check(_ v: SemanticVersion, _ c: Clause) -> Bool {
        switch c.op {
        case .tildeOrEqual, .equal: return c.dirty ? tilde(v, c) : v.samePrecedence(as: c.version)
        case .notEqual: return notEqual(v, c)
        case .greater: return greater(v, c)
        case .less: return v < c.version
        case .greaterOrEqual, .greaterOrEqualAlias: return !(v < c.version)
        case .lessOrEqual, .lessOrEqualAlias: return lessOrEqual(v, c)
        case .tilde, .tildeAlias: return tilde(v, c)
        case .caret: return caret(v, c)
        }
    }

    private static func notEqual(_ v: SemanticVersion, _ c: Clause) -> Bool {
        if c.dirty {
            if c.version.major != v.major { return true }
            if c.version.minor != v.minor && !c.minorDirty { return true }
            if c.minorDirty { return false }
            if c.version.patch != v.patch && !c.patchDirty { return true }
            if c.patchDirty {
                if v.isPrerelease || c.version.isPrerelease { return v.prerelease != c.version.prerelease }
                return false
            }
        }
        return !v.samePrecedence(as: c.version)
    }

    private static func greater(_ v: SemanticVersion, _ c: Clause) -> Bool {
        guard c.dirty else { return c.version < v }
        if v.major != c.version.major { return v.major > c.version.major }
        if c.minorDirty { return false }  // 11.1.0 is not > 11
        if c.patchDirty { return v.minor > c.version.minor }  // 11.1.1 is not > 11.1
        return c.version < v
    }

    private static func lessOrEqual(_ v: SemanticVersion, _ c: Clause) -> Bool {
        guard c.dirty else { return !(c.version < v) }
        if v.major > c.version.major { return false }
        if v.major == c.version.major && v.minor > c.version.minor && !c.minorDirty { return false }
        return true
    }

    /// `~1.2.3` is `>= 1.2.3, < 1.3.0`; `~1` and `~1.x` are `>= 1.0.0, < 2.0.0`; `~*` is anything.
    private static func tilde(_ v: SemanticVersion, _ c: Clause) -> Bool {
        if v < c.version { return false }
        let con = c.version
        if con.major == 0 && con.minor == 0 && con.patch == 0 && !c.minorDirty && !c.patchDirty { return true }
        if v.major != con.major { return false }
        if v.minor != con.minor && !c.minorDirty { return false }
        return true
    }

    /// `^1.2.3` is `>= 1.2.3, < 2.0.0`; `^0.2.3` is `>= 0.2.3, < 0.3.0`; `^0.0.3` is `= 0.0.3`.
    private static func caret(_ v: SemanticVersion, _ c: Clause) -> Bool {
        if v < c.version { return false }
        let con = c.version
        if con.major > 0 || c.minorDirty { return v.major == con.major }
        if v.major > 0 { return false }
        if con.minor > 0 || c.patchDirty { return v.minor == con.minor }
        if v.minor > 0 { return false }
        return v.patch == con.patch
    }

    // MARK: - Regular expressions

    private static func regex(_ pattern: String) -> NSRegularExpression {
        // The patterns are constants of this file; a failure here is a bug caught by the unit tests.
        try! NSRegularExpression(pattern: pattern)
    }

    /// Every non-overlapping match, leftmost first, each as its groups (nil for a group that took no part).
    private static func matches(_ regex: NSRegularExpression, in text: String) -> [[String?]] {
        let whole = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: whole).map { match in
            (0..<match.numberOfRanges).map { index in
                Range(match.range(at: index), in: text).map { String(text[$0]) }
            }
        }
    }
}

extension ErrorKind where Owner == VersionConstraint.ValidationError {
    /// A version constraint is not valid.
    public static var invalidConstraint: Self { Self("invalid constraint") }
}
