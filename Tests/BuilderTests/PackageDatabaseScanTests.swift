import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing

@testable import Builder

/// The package databases of an image, read from its layers as a container would see them:
/// whiteouts and opaque directories applied, distroless's `status.d`; an rpm database that
/// cannot be read is named in the SBOM, not skipped.
struct PackageDatabaseScanTests {
    func manifest(_ layout: OCILayout, _ layers: [[String: String]]) throws -> ImageManifest {
        let descriptors = try layers.map { try ImageFixture.layer($0, into: layout).0 }
        let config = try layout.writeBlob(Data("{}".utf8), mediaType: .ociConfig)
        return ImageManifest(config: config, layers: descriptors)
    }

    @Test func whiteoutsAndOpaqueDirectoriesHideLowerDatabases() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let image = try manifest(
                layout,
                [
                    [
                        "./var/lib/dpkg/status":
                            "Package: gone\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n",
                        "var/lib/dpkg/status.d/base": "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
                        "var/lib/dpkg/status.d/base.md5sums": "0123  etc/issue\n",
                        "var/lib/rpm/Packages.db": "\u{0}\u{6}\u{15}\u{61}",
                        "usr/lib/sysimage/rpm/rpmdb.sqlite": "SQLite format 3\u{0}",
                        "etc/os-release": "ID=debian\n",
                    ],
                    [
                        "var/lib/dpkg/.wh.status": "", "var/lib/dpkg/status.d/.wh..wh..opq": "",
                        "var/lib/dpkg/status.d/tzdata":
                            "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
                    ],
                    ["etc/motd": "an unrelated layer\n"],
                ])
            let scan = try PackageDatabaseScan.scan(image, in: layout)
            #expect(scan.packages.map(\.name) == ["tzdata"])
            #expect(scan.packages.first?.layerIndex == 1 && scan.packages.first?.layer == image.layers[1].digest)
            #expect(scan.packages.first?.database == "var/lib/dpkg/status.d/tzdata")
            #expect(
                scan.unreadDatabases.map(\.path) == ["usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/Packages.db"])
            #expect(scan.distribution == "debian")

            let document = SBOM.document(
                subject: StatementSubject(name: "app", digest: [:]), repository: nil, digest: image.config.digest,
                scans: [SBOM.PlatformScan(platform: nil, scan: scan)], bases: [], files: [], created: Date())
            let comment = try #require(document.comment)
            #expect(
                comment.contains(
                    "/var/lib/rpm/Packages.db is an rpm database in ndb format, which build-task does not read: its packages are not listed"
                ))
            #expect(
                comment.contains(
                    "/usr/lib/sysimage/rpm/rpmdb.sqlite is an rpm database that cannot be read (not an SQLite 3 database): its packages are not listed"
                ))
        }
    }

    @Test func anEntryKeepsTheLayerThatLastChangedIt() throws {
        try withTemporaryDirectory { directory in
            let layout = try OCILayout.create(at: directory.appending("layout"))
            let a1 = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
            let b1 = "Package: b\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
            let b2 = "Package: b\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n"
            let image = try manifest(
                layout,
                [
                    ["var/lib/dpkg/status": a1 + "\n" + b1],
                    ["var/lib/dpkg/status": a1 + "\n" + b2],
                    ["var/lib/dpkg/status": a1 + "\n" + b2 + "\n"],
                ])
            let layers = Dictionary(
                uniqueKeysWithValues: try PackageDatabaseScan.scan(image, in: layout).packages.map {
                    ("\($0.name) \($0.version)", $0.layerIndex)
                })
            #expect(layers == ["a 1": 0, "b 2": 1])
        }
    }
}
