// Byte-level character classes for the identifier grammars. The grammars are ASCII-only,
// so testing UTF-8 bytes rejects every non-ASCII character without Unicode lookups.

func isDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}

func isLowercaseHex(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
}

func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
    isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
}

func isAlphanumeric(_ byte: UInt8) -> Bool {
    isLowerAlphanumeric(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
}

/// Quotes a value for a one-line message: escapes quotes, backslashes, control characters
/// and line separators, so that one bad input cannot break a log line in two or hide part
/// of itself, and shortens very long values (a 1 MiB hostile name) to their first 200
/// characters. Every module's errors quote untrusted values with this.
public func quoted(_ value: String) -> String {
    var out = "\""
    var count = 0
    for scalar in value.unicodeScalars {
        count += 1
        if count > 200 {
            out += "…"
            break
        }
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _
        where scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value)
            || scalar.value == 0x2028 || scalar.value == 0x2029:
            out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
