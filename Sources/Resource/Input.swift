import Errors
import Foundation

/// JSON as it arrived on stdin, kept as a tree so that every unknown key and wrong type can
/// be named precisely (JSONDecoder would stop at the first and say little).
public indirect enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// What kind of value this is, for messages.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    /// Parses the whole of stdin. Empty input is an error, as Concourse always sends an object.
    public static func parse(_ data: Data) throws(InputError) -> JSONValue {
        guard !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw InputError("no input: expected a JSON object on stdin")
        }
        guard String(data: data, encoding: .utf8) != nil else { throw InputError("the input is not valid UTF-8") }
        do { return try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw InputError("the input is not valid JSON")
        }
    }
}

/// Bad input: one line naming the key and the problem, never a secret's value.
public struct InputError: SlipwayError {
    /// What kind of failure this is (one kind: the message says the rest).
    public typealias Kind = ErrorKind<InputError>
    public var kind: Kind { .invalidInput }
    /// What failed, with which value, and what to do.
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// One JSON object of the input (`source`, `source.git`, `params`, …) whose keys must all be known.
public struct InputObject: Sendable {
    /// Where this object is, e.g. `source.git`.
    public let path: String
    let fields: [String: JSONValue]
    let secrets: Set<String>

    /// - Parameters:
    ///   - keys: every valid key; any other is an error naming the closest valid one.
    ///   - secrets: keys whose values are never shown in a message.
    public init(_ value: JSONValue?, path: String, keys: [String], secrets: Set<String> = []) throws(InputError) {
        self.path = path
        self.secrets = secrets
        switch value {
        case nil, .null?:
            fields = [:]
        case .object(let object)?:
            fields = object
        case let other?:
            throw InputError("\(path): expected an object, got \(other.kind)")
        }
        for key in fields.keys.sorted() where !keys.contains(key) {
            var message = "\(path): unknown key \"\(Self.printable(key))\""
            if let closest = Self.closest(to: key, in: keys) { message += "; did you mean \"\(closest)\"?" }
            message += " Valid keys: \(keys.sorted().joined(separator: ", "))"
            throw InputError(message)
        }
    }

    public var isEmpty: Bool { fields.isEmpty }
    public func has(_ key: String) -> Bool { fields[key].map { $0 != .null } ?? false }
    public func raw(_ key: String) -> JSONValue? { fields[key].flatMap { $0 == .null ? nil : $0 } }

    public func string(_ key: String) throws(InputError) -> String? {
        switch raw(key) {
        case nil: return nil
        case .string(let value)?: return value
        case let other?: throw wrongType(key, expected: "a string", got: other)
        }
    }

    public func requiredString(_ key: String) throws(InputError) -> String {
        guard let value = try string(key), !value.isEmpty else { throw InputError("\(path).\(key) is required") }
        return value
    }

    public func bool(_ key: String) throws(InputError) -> Bool? {
        switch raw(key) {
        case nil: return nil
        case .bool(let value)?: return value
        case let other?: throw wrongType(key, expected: "true or false", got: other)
        }
    }

    public func integer(_ key: String, in range: ClosedRange<Int64>) throws(InputError) -> Int? {
        switch raw(key) {
        case nil: return nil
        case .integer(let value)? where range.contains(value): return Int(value)
        case let other?:
            throw wrongType(key, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)", got: other)
        }
    }

    public func strings(_ key: String) throws(InputError) -> [String]? {
        switch raw(key) {
        case nil: return nil
        case .array(let items)?:
            var result: [String] = []
            for item in items {
                guard case .string(let value) = item else {
                    throw wrongType(key, expected: "a list of strings", got: .array(items))
                }
                result.append(value)
            }
            return result
        case let other?: throw wrongType(key, expected: "a list of strings", got: other)
        }
    }

    /// `key`: a map of names to strings (build args), any names allowed.
    public func stringMap(_ key: String) throws(InputError) -> [String: String]? {
        switch raw(key) {
        case nil: return nil
        case .object(let object)?:
            var result: [String: String] = [:]
            for (name, value) in object {
                guard case .string(let text) = value else {
                    throw wrongType(key, expected: "a map of names to strings", got: .object(object))
                }
                result[name] = text
            }
            return result
        case let other?: throw wrongType(key, expected: "a map of names to strings", got: other)
        }
    }

    public func object(_ key: String, keys: [String], secrets: Set<String> = []) throws(InputError) -> InputObject? {
        guard let value = raw(key) else { return nil }
        return try InputObject(value, path: "\(path).\(key)", keys: keys, secrets: secrets)
    }

    /// An error for a value that parsed but is not acceptable, naming it unless it is secret.
    public func invalid(_ key: String, _ reason: String) -> InputError {
        InputError("\(path).\(key): \(reason)")
    }

    private func wrongType(_ key: String, expected: String, got value: JSONValue) -> InputError {
        var message = "\(path).\(key): expected \(expected), got \(value.kind)"
        if !secrets.contains(key), case .string(let text) = value {
            message += " \"\(Self.printable(String(text.prefix(80))))\""
        }
        if !secrets.contains(key), case .integer(let number) = value { message += " \(number)" }
        return InputError(message)
    }

    static func printable(_ text: String) -> String {
        // C0 and C1 controls and U+2028/U+2029, as OCI's `quoted`: a value cannot break the line.
        String(
            text.prefix(80).unicodeScalars.map {
                $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) || $0.value == 0x2028 || $0.value == 0x2029
                    || $0 == "\"" ? "?" : Character($0)
            })
    }

    /// The valid key nearest to `key` by edit distance, if near enough to be a typo.
    static func closest(to key: String, in keys: [String]) -> String? {
        let scored = keys.map { ($0, distance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= max(2, best.count / 3) else { return nil }
        return best
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.prefix(64))
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension ErrorKind where Owner == InputError {
    /// The JSON on stdin (source, params, version) is not usable as given.
    public static var invalidInput: Self { Self("invalid input") }
}
