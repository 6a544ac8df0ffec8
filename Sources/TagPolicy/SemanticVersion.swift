/// A semantic version as container tags use it (https://semver.org, with the leniency of
/// Masterminds/semver that registry-image applies): an optional `v`, one to three numeric
/// parts (`1`, `1.2`, `1.2.3`), an optional `-prerelease` and `+build`.
///
/// `original` keeps the tag as written; `parts` says how many numbers it had, which decides
/// between aliases of one image (`3.2.1` is preferred over `3.2` and `3`).
public struct SemanticVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let major: UInt64
    public let minor: UInt64
    public let patch: UInt64
    /// Dot-separated identifiers after `-`; empty for a final release.
    public let prerelease: [String]
    public let build: String?
    public let original: String
    /// How many numeric parts the text had (1 to 3).
    public let parts: Int

    public var isPrerelease: Bool { !prerelease.isEmpty }

    /// Parses `text`, or returns nil if it is not a version.
    public init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "v" || rest.first == "V" { rest = rest.dropFirst() }
        var build: String?
        if let plus = rest.firstIndex(of: "+") {
            build = String(rest[rest.index(after: plus)...])
            guard let build, !build.isEmpty,
                build.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(Self.isIdentifier)
            else { return nil }
            rest = rest[..<plus]
        }
        var prerelease: [String] = []
        if let dash = rest.firstIndex(of: "-") {
            let text = rest[rest.index(after: dash)...]
            let identifiers = text.split(separator: ".", omittingEmptySubsequences: false)
            guard !text.isEmpty, identifiers.allSatisfy(Self.isIdentifier) else { return nil }
            // Numeric identifiers must not have leading zeros (semver 2.0 §9).
            guard identifiers.allSatisfy({ !($0.allSatisfy(\.isASCIIDigit) && $0.count > 1 && $0.first == "0") }) else {
                return nil
            }
            prerelease = identifiers.map(String.init)
            rest = rest[..<dash]
        }
        let numbers = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(numbers.count) else { return nil }
        var values: [UInt64] = []
        for number in numbers {
            guard !number.isEmpty, number.count <= 19, number.allSatisfy(\.isASCIIDigit),
                number == "0" || number.first != "0", let value = UInt64(number)
            else { return nil }
            values.append(value)
        }
        self.major = values[0]
        self.minor = values.count > 1 ? values[1] : 0
        self.patch = values.count > 2 ? values[2] : 0
        self.prerelease = prerelease
        self.build = build
        self.original = text
        self.parts = values.count
    }

    private static func isIdentifier(_ part: Substring) -> Bool {
        !part.isEmpty && part.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" }
    }

    /// `major.minor.patch[-prerelease]`, without `v` or build metadata.
    public var normalized: String {
        "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: "."))
    }

    public var description: String { original }

    /// Precedence (semver 2.0 §11); build metadata is ignored.
    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        if (lhs.major, lhs.minor, lhs.patch) != (rhs.major, rhs.minor, rhs.patch) {
            return (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        switch (lhs.prerelease.isEmpty, rhs.prerelease.isEmpty) {
        case (true, true), (true, false): return false
        case (false, true): return true
        case (false, false): break
        }
        for (a, b) in zip(lhs.prerelease, rhs.prerelease) where a != b {
            switch (UInt64(a), UInt64(b)) {
            case (let x?, let y?): return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }

    /// Equal precedence, whatever the spelling (`v1.2` equals `1.2.0`).
    public func samePrecedence(as other: SemanticVersion) -> Bool { !(self < other) && !(other < self) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isASCIILetter: Bool { isASCII && isLetter }
}
