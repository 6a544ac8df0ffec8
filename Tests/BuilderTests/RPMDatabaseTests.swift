import Foundation
import TestSupport
import Testing

@testable import Builder

/// Packages built by `rpmbuild` and recorded by `rpm --justdb` in a root of their own: rpm's
/// own database, written by rpm itself (Debian's rpm 4.18 keeps it in `rpmdb.sqlite`).
struct RPMRoot {
    struct Package {
        var name: String
        var version: String
        var release: String
        var epoch: Int? = nil
        var architecture = "x86_64"
        /// A long description makes the header spill onto SQLite overflow pages.
        var descriptionLines = 1
    }

    let root: URL
    let packages: URL

    init(_ directory: URL) throws {
        root = directory.appendingPathComponent("root")
        packages = directory.appendingPathComponent("rpmbuild")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        _ = try runProcess("rpm", ["--root", root.path, "--dbpath", "/var/lib/rpm", "--initdb"]).checked()
    }

    /// Builds `package` (no files) and records it as installed.
    func install(_ package: Package) throws {
        let spec = packages.appendingPathComponent("\(package.name).spec")
        try FileManager.default.createDirectory(at: packages, withIntermediateDirectories: true)
        let text = """
            Name: \(package.name)
            Version: \(package.version)
            Release: \(package.release)
            \(package.epoch.map { "Epoch: \($0)" } ?? "")
            Summary: a package of the SBOM tests
            License: MIT
            BuildArch: \(package.architecture)
            %define debug_package %{nil}
            %description
            \((0..<package.descriptionLines).map { "line \($0) of a description long enough to need more than one page" }.joined(separator: "\n"))
            %files

            """
        try Data(text.utf8).write(to: spec)
        _ = try runProcess(
            "rpmbuild",
            ["-bb", "--quiet", "--define", "_topdir \(packages.path)", "--define", "_build_id_links none", spec.path]
        ).checked()
        let file = packages.appendingPathComponent(
            "RPMS/\(package.architecture)/\(package.name)-\(package.version)-\(package.release).\(package.architecture).rpm"
        )
        _ = try runProcess(
            "rpm", rpm(["-i", "--justdb", "--nodeps", "--noscripts", "--nosignature", "--ignorearch", file.path])
        ).checked()
    }

    func erase(_ name: String) throws {
        _ = try runProcess("rpm", rpm(["-e", "--justdb", "--nodeps", "--noscripts", name])).checked()
    }

    func rpm(_ arguments: [String]) -> [String] {
        ["--root", root.path, "--dbpath", "/var/lib/rpm"] + arguments
    }

    /// The database as rpm before 4.16 kept it: a Berkeley DB hash `Packages` of the same
    /// headers, keyed by header number (native byte order), written by Berkeley DB's own
    /// `db_load` from what `sqlite3` reads of rpm's database.
    var berkeleyDB: Data {
        get throws {
            let rows = try runProcess(
                "sqlite3",
                [
                    root.appendingPathComponent("var/lib/rpm/rpmdb.sqlite").path,
                    "SELECT hnum, lower(hex(blob)) FROM Packages",
                ]
            ).checked().stdoutString
            var dump = "VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n"
            for row in rows.split(separator: "\n") {
                let fields = row.split(separator: "|")
                let number = withUnsafeBytes(of: UInt32(fields[0])!.littleEndian) {
                    $0.map { String(format: "%02x", $0) }.joined()
                }
                dump += " \(number)\n \(fields[1])\n"
            }
            dump += "DATA=END\n"
            let directory = root.deletingLastPathComponent().appendingPathComponent("bdb-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            _ = try runProcess(
                "db5.3_load", ["-f", "/dev/stdin", directory.appendingPathComponent("Packages").path],
                stdin: Data(dump.utf8)
            ).checked()
            return try Data(contentsOf: directory.appendingPathComponent("Packages"))
        }
    }

    /// What `rpm -qa` says is installed: `name [epoch:]version-release arch` per package.
    /// `berkeleyDB`: read the Berkeley DB `Packages` (rpm's read-only `bdb_ro` backend).
    static func query(root: URL, berkeleyDB: Bool = false) throws -> Set<String> {
        let backend = berkeleyDB ? ["--define", "_db_backend bdb_ro"] : []
        let listed = try runProcess(
            "rpm",
            backend + [
                "--root", root.path, "--dbpath", "/var/lib/rpm", "-qa",
                "--qf", "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{ARCH}\\n",
            ]
        ).checked()
        return Set(listed.stdoutString.split(separator: "\n").map(String.init))
    }

    var database: Data {
        get throws { try Data(contentsOf: root.appendingPathComponent("var/lib/rpm/rpmdb.sqlite")) }
    }
}

/// The SQLite reader and rpm's headers, judged by `sqlite3` and `rpm` themselves.
struct RPMDatabaseTests {
    @Test func readsWhatRpmListsFromADatabaseRpmWrote() throws {
        try withTemporaryDirectory { directory in
            let rpm = try RPMRoot(directory.url)
            try rpm.install(.init(name: "alpha", version: "1.0", release: "1", architecture: "noarch"))
            try rpm.install(.init(name: "beta", version: "2.3.4", release: "5.fc40", epoch: 3))
            // A header of about 30 KB.
            try rpm.install(.init(name: "gamma", version: "0.9~rc1", release: "1", descriptionLines: 400))
            let read = try RPMHeader.packages(sqlite: [UInt8](try rpm.database), wal: nil)
            #expect(
                Set(read.map { "\($0.name) \($0.fullVersion) \($0.architecture ?? "")" })
                    == (try RPMRoot.query(root: rpm.root)))
            #expect(read.count == 3)
            #expect(read.first { $0.name == "beta" }?.epoch == 3)
        }
    }

    @Test func readsWhatRpmListsFromABerkeleyDBPackages() throws {
        try withTemporaryDirectory { directory in
            let rpm = try RPMRoot(directory.url)
            try rpm.install(.init(name: "alpha", version: "1.0", release: "1", architecture: "noarch"))
            try rpm.install(.init(name: "beta", version: "2.3.4", release: "5.el8", epoch: 3))
            // Big enough to need overflow pages.
            try rpm.install(.init(name: "gamma", version: "0.9", release: "1", descriptionLines: 400))
            let packages = try rpm.berkeleyDB
            let judge = directory.appending("judge")
            try FileManager.default.createDirectory(
                at: judge.appendingPathComponent("var/lib/rpm"), withIntermediateDirectories: true)
            try packages.write(to: judge.appendingPathComponent("var/lib/rpm/Packages"))
            let listed = try RPMRoot.query(root: judge, berkeleyDB: true)
            #expect(listed.count == 3, "rpm itself reads the Berkeley DB: \(listed)")
            let read = try RPMHeader.packages(berkeleyDB: [UInt8](packages))
            #expect(Set(read.map { "\($0.name) \($0.fullVersion) \($0.architecture ?? "")" }) == listed)

            var looped = [UInt8](packages)  // gamma's overflow chain pointing back at its own first page
            let file = try BerkeleyDBHashFile(looped)
            for number in 1...file.lastPage where looped[number * file.pageSize + 25] == 7 {
                looped.replaceSubrange(
                    (number * file.pageSize + 16)..<(number * file.pageSize + 20),
                    with: withUnsafeBytes(of: UInt32(number).littleEndian, Array.init))
                looped[number * file.pageSize + 22] = 1  // one byte used: the chain never completes but for the loop
                looped[number * file.pageSize + 23] = 0
            }
            #expect { try RPMHeader.packages(berkeleyDB: looped) } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedBerkeleyDB
            }
            #expect { try BerkeleyDBHashFile(Array(packages.prefix(packages.count - 4096))) } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedBerkeleyDB
            }
        }
    }

    /// A table deep enough for interior pages, rows bigger than a page, and rows committed to
    /// the write-ahead log but not yet to the database file.
    @Test func sqliteTablesReadAsSqlite3ReadsThem() throws {
        try withTemporaryDirectory { directory in
            let database = directory.appending("t.db").path
            let script = """
                PRAGMA journal_mode=WAL;
                PRAGMA wal_autocheckpoint=0;
                CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, s TEXT, n INTEGER, r REAL);
                WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 600)
                  INSERT INTO t SELECT i, randomblob((i * 97) % 9000), 'row ' || i, i * -1000003, i / 4.0 FROM k;
                PRAGMA wal_checkpoint(TRUNCATE);
                WITH RECURSIVE k(i) AS (SELECT 601 UNION ALL SELECT i + 1 FROM k WHERE i < 700)
                  INSERT INTO t SELECT i, randomblob(5000), 'logged ' || i, i, NULL FROM k;
                UPDATE t SET s = 'changed in the log' WHERE id = 7;
                .shell cp \(database) \(database).copy && cp \(database)-wal \(database)-wal.copy
                """
            _ = try runProcess("sqlite3", [database], stdin: Data(script.utf8)).checked()
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: database + ".copy")))
            let log = [UInt8](try Data(contentsOf: URL(fileURLWithPath: database + "-wal.copy")))
            #expect(log.count > 100 * 4096, "the later rows are in the log only")

            // The database file alone: the 600 checkpointed rows, as they were.
            let checkpointed = try SQLiteFile(bytes).rows(ofTable: "t")
            #expect(checkpointed.count == 600)
            #expect(checkpointed[6].values[2] == .text("row 7"))

            let rows = try SQLiteFile(bytes, wal: log).rows(ofTable: "t")
            let expected = try runProcess(
                "sqlite3", [database, "SELECT id, length(b), hex(substr(b, -16)), s, n, quote(r) FROM t ORDER BY id"]
            )
            .checked().stdoutString.split(separator: "\n").map(String.init)
            let mine = rows.map { row -> String in
                guard case .blob(let blob) = row.values[1] else { return "not a blob" }
                let real: String
                switch row.values[4] {
                case .real(let value): real = value == value.rounded() ? String(format: "%.1f", value) : "\(value)"
                case .integer(let value): real = "\(value).0"  // SQLite stores a whole REAL as an integer
                case .null: real = "NULL"
                default: real = "?"
                }
                guard case .text(let text) = row.values[2], case .integer(let number) = row.values[3] else {
                    return "wrong types"
                }
                return
                    "\(row.rowid)|\(blob.count)|\(blob.suffix(16).map { String(format: "%02X", $0) }.joined())|\(text)|\(number)|\(real)"
            }
            #expect(rows.count == 700)
            let differences = zip(mine, expected).filter { $0 != $1 }
            #expect(mine.count == expected.count && differences.isEmpty, "\(differences.prefix(3))")
            #expect(rows.allSatisfy { $0.values[0] == .null }, "an INTEGER PRIMARY KEY is the rowid")
        }
    }

    /// Bytes from an image are hostile: a page that points back to itself, a chain cut short,
    /// or a truncated file end in an error, never a hang or a crash.
    @Test func aLoopOrATruncationIsAnErrorNotAHang() throws {
        try withTemporaryDirectory { directory in
            let database = directory.appending("t.db").path
            _ = try runProcess(
                "sqlite3",
                [
                    database,
                    """
                    CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);
                    WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 300)
                      INSERT INTO t SELECT i, randomblob(3000) FROM k;
                    """,
                ]
            ).checked()
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: database)))
            #expect(try SQLiteFile(bytes).rows(ofTable: "t").count == 300)
            let root = try #require(
                try SQLiteFile(bytes).rows(rootPage: 1).first { $0.values[1] == .text("t") }.flatMap {
                    if case .integer(let page) = $0.values[3] { Int(page) } else { nil }
                })
            let pageSize = Int(bytes[16]) << 8 | Int(bytes[17])
            let rootOffset = (root - 1) * pageSize
            #expect(bytes[rootOffset] == 0x05, "300 rows of 3 KB need an interior root")

            var looped = bytes
            let own = withUnsafeBytes(of: UInt32(root).bigEndian, Array.init)
            looped.replaceSubrange((rootOffset + 8)..<(rootOffset + 12), with: own)  // the right-most child: itself
            #expect { try SQLiteFile(looped).rows(ofTable: "t") } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedSQLite
            }

            let truncated = Array(bytes.prefix(bytes.count - pageSize * 3))
            #expect { try SQLiteFile(truncated).rows(ofTable: "t") } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedSQLite
            }
            #expect { try SQLiteFile(Array("SQLite format 3\u{0}".utf8)) } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedSQLite
            }
            #expect { try RPMHeader([0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]) } throws: {
                ($0 as? PackageDatabaseError)?.kind == .malformedRPMHeader
            }
        }
    }
}
