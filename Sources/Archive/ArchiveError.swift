import Errors
import Foundation
import OCI

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
public typealias ArchiveError = KindedError<ArchiveErrorDomain>

/// Whose kinds ``ArchiveError``'s are.
public enum ArchiveErrorDomain {}

extension ErrorKind where Owner == ArchiveErrorDomain {
    /// The stream ended before the format said it would.
    public static var truncated: Self { Self("truncated") }
    /// A tar header's checksum does not match its bytes.
    public static var badChecksum: Self { Self("bad checksum") }
    /// A tar header field cannot be parsed (octal, base-256, text).
    public static var invalidField: Self { Self("invalid field") }
    /// A PAX extended header record is malformed or has an invalid value.
    public static var badPAXRecord: Self { Self("bad PAX record") }
    /// The archive's structure is wrong in a way not covered above.
    public static var malformed: Self { Self("malformed archive") }
    /// A metadata entry (PAX header, GNU long name) exceeds the reader's limit.
    public static var limitExceeded: Self { Self("limit exceeded") }
    /// Compressed data is corrupt, truncated or followed by garbage.
    public static var compressedData: Self { Self("compressed data error") }
    /// A verified stream has more or fewer bytes than expected.
    public static var sizeMismatch: Self { Self("size mismatch") }
    /// A verified stream's digest differs from the expected one.
    public static var digestMismatch: Self { Self("digest mismatch") }
    /// A tar header cannot be written as given (negative id, name with NUL, …).
    public static var unencodable: Self { Self("unencodable header") }
    /// An entry body given to the writer is shorter or longer than its header says.
    public static var bodyLength: Self { Self("body length mismatch") }
    /// A file could not be opened, read or written.
    public static var fileSystem: Self { Self("file system") }
    /// A compression library could not be set up (out of memory, a failed call).
    public static var libraryFailed: Self { Self("library failed") }
    /// A compression level outside what the format allows.
    public static var invalidLevel: Self { Self("invalid level") }
    /// An API was used out of order (write after finish, a stale entry body).
    public static var outOfOrder: Self { Self("out of order") }
}

extension ArchiveError {
    static func truncated(_ what: String) -> ArchiveError {
        ArchiveError(.truncated, "truncated archive: \(what)")
    }

    /// An error for a failed system call, with `errno` rendered as text.
    static func system(_ operation: String, errno code: Int32) -> ArchiveError {
        ArchiveError(.fileSystem, "\(operation): \(String(cString: strerror(code)))")
    }
}

/// Quotes raw bytes from an archive field for an error message (decoded leniently, since the
/// bytes are exactly what was wrong).
func quotedBytes<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    quoted(String(decoding: bytes, as: UTF8.self))
}
