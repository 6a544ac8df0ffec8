import Errors

/// A package database the SBOM reads (`rpmdb.sqlite`, Berkeley DB `Packages`, the rpm headers
/// in them) that is not one its reader understands: the file is the image's, so it is hostile
/// until read, and the kind says which reader refused it.
typealias PackageDatabaseError = KindedError<PackageDatabaseErrorDomain>

/// Whose kinds ``PackageDatabaseError``'s are.
enum PackageDatabaseErrorDomain {}

extension ErrorKind where Owner == PackageDatabaseErrorDomain {
    /// The SQLite file (`rpmdb.sqlite` and its write-ahead log) is not one ``SQLiteFile`` understands.
    static var malformedSQLite: Self { Self("malformed SQLite file") }
    /// The Berkeley DB hash file (`Packages`) is not one ``BerkeleyDBHashFile`` understands.
    static var malformedBerkeleyDB: Self { Self("malformed Berkeley DB file") }
    /// An rpm header blob is not one ``RPMHeader`` understands.
    static var malformedRPMHeader: Self { Self("malformed rpm header") }
}
