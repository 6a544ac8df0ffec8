import OCI
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why reading or writing a byte stream, a compressed stream or a tar archive failed.
///
/// Every error renders as one line that names the failure, the value at fault and, for
/// archives, the byte offset where it was found, so a log of a failed unpack says which
/// layer byte to look at. Bytes from the archive are quoted and control characters escaped,
/// so a hostile name cannot forge a second log line.
public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    /// The class of failure, as an opaque code with static members (callers branch on it,
    /// the message is for people).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, for logs.
        public let description: String

        /// The stream ended before the format said it would.
        public static let truncated = Code(description: "truncated")
        /// A tar header's checksum does not match its bytes.
        public static let badChecksum = Code(description: "bad checksum")
        /// A tar header field cannot be parsed (octal, base-256, text).
        public static let invalidField = Code(description: "invalid field")
        /// A PAX extended header record is malformed or has an invalid value.
        public static let badPAXRecord = Code(description: "bad PAX record")
        /// The archive's structure is wrong in a way not covered above.
        public static let malformed = Code(description: "malformed archive")
        /// A metadata entry (PAX header, GNU long name) exceeds the reader's limit.
        public static let limitExceeded = Code(description: "limit exceeded")
        /// Compressed data is corrupt, truncated or followed by garbage.
        public static let compressedData = Code(description: "compressed data error")
        /// A verified stream has more or fewer bytes than expected.
        public static let sizeMismatch = Code(description: "size mismatch")
        /// A verified stream's digest differs from the expected one.
        public static let digestMismatch = Code(description: "digest mismatch")
        /// A tar header cannot be written as given (negative id, name with NUL, …).
        public static let unencodable = Code(description: "unencodable header")
        /// An entry body given to the writer is shorter or longer than its header says.
        public static let bodyLength = Code(description: "body length mismatch")
        /// A file could not be opened, read or written.
        public static let io = Code(description: "I/O error")
        /// A compression library could not be set up (out of memory, bad level).
        public static let library = Code(description: "library error")
        /// An API was used out of order (write after finish, a stale entry body).
        public static let misuse = Code(description: "misuse")
    }

    /// What kind of failure this is.
    public let code: Code
    /// The one-line explanation, with the offending value.
    public let message: String

    /// Creates an error; `message` must be one line (callers quote untrusted values with
    /// `quoted(_:)`).
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The one-line message.
    public var description: String { message }
}

extension ArchiveError {
    static func truncated(_ what: String) -> ArchiveError {
        ArchiveError(.truncated, "truncated archive: \(what)")
    }

    /// An error for a failed system call, with `errno` rendered as text.
    static func system(_ operation: String, errno code: Int32) -> ArchiveError {
        ArchiveError(.io, "\(operation): \(String(cString: strerror(code)))")
    }
}


/// Quotes raw bytes from an archive field for an error message (decoded leniently, since the
/// bytes are exactly what was wrong).
func quotedBytes<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    quoted(String(decoding: bytes, as: UTF8.self))
}
