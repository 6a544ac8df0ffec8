import OCI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A POSIX regular expression, compiled by the C library: the same engine and dialect as
/// git's `--grep` (basic) and `grep -E` (extended), which is what git-resource's
/// `commit_filter` and `tag_regex` mean. Swift's `Regex` and ICU differ in small ways
/// (`\s` in brackets, `{` handling, POSIX classes) that users would trip over.
struct PosixRegex {
    enum Dialect {
        /// What `git log --grep` uses by default.
        case basic
        /// What `grep -E` uses.
        case extended
    }

    let pattern: String
    let dialect: Dialect

    /// Compiles `pattern` once to check it.
    /// - Throws: ``GitSourceError`` (`.configuration`) naming the key, the pattern and the
    ///   C library's reason.
    init(_ pattern: String, dialect: Dialect, key: String) throws {
        self.pattern = pattern
        self.dialect = dialect
        if let problem = Self.withCompiled(pattern, dialect: dialect, { _ in () }).error {
            throw GitSourceError(
                .invalidConfiguration, "\(key): invalid regular expression \(quoted(pattern)): \(problem)")
        }
    }

    /// True when the whole of `text` matches (as `grep -x`).
    func matchesWhole(_ text: String) -> Bool {
        let anchored = dialect == .extended ? "^(" + pattern + ")$" : "^\\(" + pattern + "\\)$"
        let result = Self.withCompiled(anchored, dialect: dialect) { regex in
            regexec(&regex, text, 0, nil, 0) == 0
        }
        return result.value ?? false
    }

    private static func withCompiled<R>(_ pattern: String, dialect: Dialect, _ body: (inout regex_t) -> R) -> (
        value: R?, error: String?
    ) {
        var regex = regex_t()
        let flags = (dialect == .extended ? REG_EXTENDED : 0) | REG_NOSUB
        let status = regcomp(&regex, pattern, Int32(flags))
        guard status == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(status, &regex, &buffer, buffer.count)
            let message = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
            return (nil, String(decoding: message, as: UTF8.self))
        }
        defer { regfree(&regex) }
        return (body(&regex), nil)
    }
}
