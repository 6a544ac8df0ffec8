import Archive
import Foundation
import ImageLayout
import OCI

/// A package a package manager's database in an image says is installed.
struct InstalledPackage: Sendable, Equatable {
    enum Manager: String, Sendable {
        case dpkg, apk, rpm
    }

    var manager: Manager
    var name: String
    var version: String
    var architecture: String?
    /// The database file it is recorded in (`var/lib/dpkg/status`, `lib/apk/db/installed`, …).
    var database: String
    /// The layer (0-based, and its digest) from which its entry is unchanged to the top of the image.
    var layerIndex: Int
    var layer: Digest
}

/// What the package databases of one image's root filesystem list, read by streaming its
/// layers in order and keeping only the database files (with whiteouts applied to them),
/// never unpacking the image.
///
/// dpkg: `var/lib/dpkg/status` and `var/lib/dpkg/status.d/*` (distroless); apk:
/// `lib/apk/db/installed`; rpm: `rpmdb.sqlite` (rpm 4.16 and later: Fedora 33+, RHEL and UBI 9,
/// Amazon Linux 2023) with its write-ahead log, and the Berkeley DB `Packages` of older rpm
/// (RHEL 8, CentOS 7, Amazon Linux 2), under `var/lib/rpm` or `usr/lib/sysimage/rpm`. SUSE's
/// ndb `Packages.db` is noticed, not read (``unreadDatabases``).
struct PackageDatabaseScan: Sendable, Equatable {
    var packages: [InstalledPackage] = []
    /// Package databases present in the image that could not be read, and why.
    var unreadDatabases: [UnreadDatabase] = []
    /// `ID` of `etc/os-release` (or `usr/lib/os-release`): the purl namespace.
    var distribution: String?

    static let dpkgStatus = "var/lib/dpkg/status"
    static let dpkgStatusDirectory = "var/lib/dpkg/status.d/"
    static let apkInstalled = "lib/apk/db/installed"
    static let rpmDirectories = ["var/lib/rpm/", "usr/lib/sysimage/rpm/"]
    /// rpm's database files, by name in its directory, and the format of each.
    static let rpmFiles: [String: String] = [
        "rpmdb.sqlite": "sqlite", "rpmdb.sqlite-wal": "sqlite's log",
        "Packages": "Berkeley DB", "Packages.db": "ndb",
    ]
    static let rpmPaths = Set(rpmDirectories.flatMap { directory in rpmFiles.keys.map { directory + $0 } })
    static let osRelease = ["etc/os-release", "usr/lib/os-release"]
    /// The most one database file may hold (a large Debian status file is a few MiB).
    static let fileLimit = 256 << 20

    static func isTracked(_ path: String) -> Bool {
        if path == dpkgStatus || path == apkInstalled || rpmPaths.contains(path) || osRelease.contains(path) {
            return true
        }
        if path.hasPrefix(dpkgStatusDirectory) {
            let name = path.dropFirst(dpkgStatusDirectory.count)
            return !name.isEmpty && !name.contains("/") && !name.hasSuffix(".md5sums")
        }
        return false
    }

    /// A tar entry's name as a root-relative path (`./a/b/` → `a/b`).
    static func normalized(_ name: String) -> String {
        var path = Substring(name)
        while path.hasPrefix("./") { path = path.dropFirst(2) }
        while path.hasPrefix("/") { path = path.dropFirst() }
        while path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }

    /// Scans `manifest`'s layers in `layout`.
    static func scan(_ manifest: ImageManifest, in layout: OCILayout) throws -> PackageDatabaseScan {
        var files: [String: Data] = [:]  // tracked path → content, as of the layers read so far
        var attribution: [String: (Int, Digest)] = [:]  // package key → the layer its entry is unchanged since
        for (index, layer) in manifest.layers.enumerated() {
            let (hidden, written, removedHere) = try readLayer(layer, in: layout)
            func isHidden(_ path: String) -> Bool {
                hidden.contains { $0.isEmpty || path == $0 || path.hasPrefix($0 + "/") }
            }
            let before = files.count
            files = files.filter { !isHidden($0.key) && !removedHere.contains($0.key) }
            files.merge(written) { $1 }
            // A layer that left every database alone changes no entry.
            if written.isEmpty && files.count == before { continue }

            // Which entries this layer changed: those not listed, identically, before it.
            var next: [String: (Int, Digest)] = [:]
            for package in read(files).packages {
                let key = Self.key(package)
                next[key] = attribution[key] ?? (index, layer.digest)
            }
            attribution = next
        }
        var scan = PackageDatabaseScan()
        let (packages, unread) = read(files)
        scan.unreadDatabases = unread
        scan.packages = packages.map { package in
            var package = package
            if let (index, digest) = attribution[key(package)] {
                package.layerIndex = index
                package.layer = digest
            }
            return package
        }
        let release = files["etc/os-release"] ?? files["usr/lib/os-release"]
        scan.distribution = release.flatMap { osReleaseID(String(decoding: $0, as: UTF8.self)) }
        return scan
    }

    /// One layer's say on the tracked files: the paths its whiteouts hide (with what is below
    /// them) in lower layers, the tracked files it writes, and those it replaces with
    /// something other than a file.
    static func readLayer(_ layer: Descriptor, in layout: OCILayout) throws -> (
        hidden: [String], written: [String: Data], removed: Set<String>
    ) {
        let (source, _) = try decompressing(try layout.openBlob(layer))
        let reader = TarReader(source)
        var hidden: [String] = []  // whiteouts: paths (and what is below them) of lower layers
        var written: [String: Data] = [:]
        var removedHere: Set<String> = []
        while let header = try reader.next() {
            let path = normalized(header.name)
            let slash = path.lastIndex(of: "/")
            let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
            let parent = slash.map { String(path[..<$0]) } ?? ""
            if base == ".wh..wh..opq" {
                hidden.append(parent)
            } else if base.hasPrefix(".wh.") {
                hidden.append(parent.isEmpty ? String(base.dropFirst(4)) : parent + "/" + base.dropFirst(4))
            } else if isTracked(path) {
                if header.kind == .regular {
                    let sink = DataSink(limit: fileLimit)
                    _ = try copy(from: reader.body, to: sink)
                    written[path] = sink.data
                    removedHere.remove(path)
                } else {
                    // A link or directory where the database was: not a database we read.
                    written[path] = nil
                    removedHere.insert(path)
                }
            }
        }
        return (hidden, written, removedHere)
    }

    static func key(_ package: InstalledPackage) -> String {
        [package.database, package.name, package.architecture ?? "", package.version].joined(separator: "\u{0}")
    }

    /// A database file in the image whose packages are not listed.
    struct UnreadDatabase: Sendable, Equatable {
        var path: String
        var reason: String
    }

    /// The packages the database files list (layer not yet known), and the databases that could not be read.
    static func read(_ files: [String: Data]) -> (packages: [InstalledPackage], unread: [UnreadDatabase]) {
        var result: [InstalledPackage] = []
        var unread: [UnreadDatabase] = []
        let unknown = Digest.sha256(Data())
        for path in files.keys.sorted() {
            guard let data = files[path] else { continue }
            let text = String(decoding: data, as: UTF8.self)
            if path == dpkgStatus || path.hasPrefix(dpkgStatusDirectory) {
                for stanza in dpkgStanzas(text) {
                    guard let name = stanza["Package"], let version = stanza["Version"] else { continue }
                    // dpkg-query -W leaves out what was removed and purged (status "… not-installed").
                    if let status = stanza["Status"], status.split(separator: " ").last == "not-installed" { continue }
                    result.append(
                        InstalledPackage(
                            manager: .dpkg, name: name, version: version, architecture: stanza["Architecture"],
                            database: path, layerIndex: 0, layer: unknown))
                }
            } else if path == apkInstalled {
                for stanza in apkStanzas(text) {
                    guard let name = stanza["P"], let version = stanza["V"] else { continue }
                    result.append(
                        InstalledPackage(
                            manager: .apk, name: name, version: version, architecture: stanza["A"],
                            database: path, layerIndex: 0, layer: unknown))
                }
            } else if path.hasSuffix("/rpmdb.sqlite") || path.hasSuffix("/Packages") {
                do {
                    let headers =
                        path.hasSuffix("/Packages")
                        ? try RPMHeader.packages(berkeleyDB: [UInt8](data))
                        : try RPMHeader.packages(sqlite: [UInt8](data), wal: files[path + "-wal"].map { [UInt8]($0) })
                    result += headers.map {
                        InstalledPackage(
                            manager: .rpm, name: $0.name, version: $0.fullVersion, architecture: $0.architecture,
                            database: path, layerIndex: 0, layer: unknown)
                    }
                } catch {
                    unread.append(
                        UnreadDatabase(path: path, reason: "is an rpm database that cannot be read (\(error))"))
                }
            } else if let format = rpmFiles[String(path.split(separator: "/").last ?? "")], rpmPaths.contains(path),
                !path.hasSuffix("-wal")
            {
                unread.append(
                    UnreadDatabase(
                        path: path, reason: "is an rpm database in \(format) format, which build-task does not read"))
            }
        }
        return (result, unread)
    }

    /// deb822 paragraphs: `Field: value` lines, continuation lines start with a space or tab.
    static func dpkgStanzas(_ text: String) -> [[String: String]] {
        var stanzas: [[String: String]] = []
        var current: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if !current.isEmpty { stanzas.append(current) }
                current = [:]
            } else if line.first == " " || line.first == "\t" {
                continue  // a continuation: none of the fields read here has one
            } else if let colon = line.firstIndex(of: ":") {
                let field = String(line[..<colon])
                current[field] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        if !current.isEmpty { stanzas.append(current) }
        return stanzas
    }

    /// apk's installed database: `X:value` lines, a blank line between packages.
    static func apkStanzas(_ text: String) -> [[String: String]] {
        var stanzas: [[String: String]] = []
        var current: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                if !current.isEmpty { stanzas.append(current) }
                current = [:]
            } else if line.count >= 2, line.dropFirst().first == ":" {
                let field = String(line.prefix(1))
                if current[field] == nil { current[field] = String(line.dropFirst(2)) }
            }
        }
        if !current.isEmpty { stanzas.append(current) }
        return stanzas
    }

    static func osReleaseID(_ text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("ID=") {
            let value = line.dropFirst(3).trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
            return value.isEmpty ? nil : value.lowercased()
        }
        return nil
    }
}
