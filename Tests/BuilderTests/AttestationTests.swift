import Archive
import Foundation
import ImageLayout
import OCI
import TestSupport
import Testing

/// build-task's `attestations/`: SLSA provenance and an SPDX SBOM as in-toto Statements,
/// read from the built binary's output.
///
/// The Debian-like base is crafted by hand (a dpkg status database written in two layers, an
/// apk database whited out by the second): the tests need no network and no cache, and
/// `dpkg-query --admindir` on the unpacked image is the judge. A debootstrapped Debian
/// (`ci/debian-base`'s cached layout) is checked the same way where one is cached.
@Suite struct AttestationTests {
    let builds = ImageBuildTests()

    static let statusLayer0 = """
        Package: base-files
        Status: install ok installed
        Priority: required
        Architecture: amd64
        Version: 12.4+deb12u5
        Description: Debian base system miscellaneous files
         This package contains the basic filesystem hierarchy.

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Multi-Arch: same
        Version: 2.36-9+deb12u4
        Description: GNU C Library: Shared libraries

        Package: oldtool
        Status: install ok installed
        Architecture: all
        Version: 1.0-1
        Description: removed in the second layer

        """

    static let statusLayer1 = """
        Package: base-files
        Status: install ok installed
        Priority: required
        Architecture: amd64
        Version: 12.4+deb12u5
        Description: Debian base system miscellaneous files
         This package contains the basic filesystem hierarchy.

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Multi-Arch: same
        Version: 2.36-9+deb12u4
        Description: GNU C Library: Shared libraries

        Package: oldtool
        Status: deinstall ok config-files
        Architecture: all
        Version: 1.0-1
        Description: removed, its configuration kept

        Package: purged
        Status: purge ok not-installed
        Architecture: amd64
        Description: removed and purged

        Package: libfoo
        Status: install ok installed
        Architecture: amd64
        Version: 1:2.0~rc1-3
        Description: a version with an epoch

        """

    static let apkInstalled = "P:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n\n"

    /// A layout (`latest`) of `layers` (path → content each), for the host's architecture.
    func base(_ directory: URL, layers: [[String: String]]) throws -> Digest {
        try base(directory, layers: layers.map { $0.mapValues { Data($0.utf8) } })
    }

    /// A layout (`latest`) of `layers` (path → bytes each), for the host's architecture.
    func base(_ directory: URL, layers: [[String: Data]]) throws -> Digest {
        let layout = try OCILayout.create(at: directory)
        var descriptors: [Descriptor] = []
        var diffIDs: [Digest] = []
        for files in layers {
            let (descriptor, diffID) = try ImageFixture.layer(files, into: layout)
            descriptors.append(descriptor)
            diffIDs.append(diffID)
        }
        let configuration = ImageConfiguration(
            created: "2024-01-01T00:00:00Z", author: nil, platform: .host,
            config: ImageConfiguration.Config(env: ["PATH=/usr/bin:/bin"]),
            rootfs: .init(type: "layers", diffIDs: diffIDs),
            // buildah refuses a base whose history does not account for its layers.
            history: layers.indices.map { .init(createdBy: "layer \($0)") })
        let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
        let manifest = try layout.writeBlob(
            try CanonicalJSON.encode(ImageManifest(config: config, layers: descriptors)), mediaType: .ociManifest)
        try layout.addToIndex(manifest, name: "latest")
        return manifest.digest
    }

    func debianLikeBase(_ directory: URL) throws -> Digest {
        try base(
            directory,
            layers: [
                [
                    "etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12\"\nID=debian\n",
                    "var/lib/dpkg/status": Self.statusLayer0,
                    "lib/apk/db/installed": Self.apkInstalled,
                ],
                ["var/lib/dpkg/status": Self.statusLayer1, "lib/apk/db/.wh.installed": ""],
            ])
    }

    func object(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// An app (`COPY app.txt`) on the base at `base`, assembled: its SBOM document and its output directory.
    func appSBOM(on base: URL, repository: TestGitRepository, directory: TemporaryDirectory) throws -> (
        document: [String: Any], output: URL
    ) {
        _ = try repository.commit(
            "app", files: ["Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY app.txt /app.txt\n", "app.txt": "app\n"])
        let output = directory.appending("image")
        let result = try builds.buildTask(
            directory.url,
            [
                "CONTEXT": repository.path.path, "BUILDER": "assemble", "IMAGE_ARG_BASE": base.path,
                "CACHE": directory.appending("cache").path, "OUTPUT": output.path,
            ])
        try #require(result.succeeded, "\(result.stderrString)")
        let document = try #require(
            try object(output.appendingPathComponent("attestations/sbom.intoto.json"))["predicate"] as? [String: Any])
        return (document, output)
    }

    /// The SBOM's packages whose purl starts with `prefix` (`pkg:rpm/`, `pkg:deb/debian/`).
    func packages(_ document: [String: Any], purl prefix: String) -> [[String: Any]] {
        (document["packages"] as? [[String: Any]] ?? []).filter {
            (($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"])?.hasPrefix(prefix) == true
        }
    }

    static let secretText = "s3cr3t-text-never-written"
    static let tokenValue = "tok-value-never-written"

    /// An app on the crafted base, committed in a checkout with an origin holding a password; built by `builder`.
    func build(_ builder: String, repository: TestGitRepository, directory: TemporaryDirectory) throws -> (
        output: URL, base: Digest, commit: String
    ) {
        let base = try debianLikeBase(directory.appending("base"))
        let commit = try repository.commit(
            "app",
            files: [
                "app/Dockerfile":
                    "ARG BASE\nFROM ${BASE}\nARG VERSION\nCOPY app.txt /app/app.txt\nCOPY conf/ /etc/app/\n",
                "app/.dockerignore": "conf/local.conf\n", "app/app.txt": "app\n", "app/conf/a.conf": "a=1\n",
                "app/conf/local.conf": "never copied\n", "app/notes.txt": "not copied\n",
            ])
        _ = try repository.git("remote", "add", "origin", "https://builder:hunter2@git.example.invalid/team/app.git")
        let output = directory.appending("image-\(builder)")
        let result = try builds.buildTask(
            directory.url,
            [
                "CONTEXT": repository.path.appendingPathComponent("app").path, "BUILDER": builder,
                "IMAGE_ARG_BASE": directory.appending("base").path, "BUILD_ARG_VERSION": "1.2",
                "BUILD_ARG_NPM_TOKEN": Self.tokenValue,
                "BUILDKIT_SECRETTEXT_npm": Self.secretText, "LABEL_team": "core",
                // Carelessly passed on: redacted because they hold the secret text, whatever their names.
                "BUILD_ARG_NOTE": "see \(Self.secretText)", "LABEL_note": Self.secretText,
                "CACHE": directory.appending("cache-\(builder)").path, "OUTPUT": output.path,
            ])
        try #require(result.succeeded, "\(result.stderrString)")
        return (output, base, commit)
    }

    @Test(arguments: ["assemble", "buildah"])
    func provenanceNamesCommitDockerfileArgsAndBasesButNoSecret(builder: String) async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let (output, base, commit) = try build(builder, repository: repository, directory: directory)
                let digest = try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)
                let file = output.appendingPathComponent("attestations/provenance.intoto.json")
                let statement = try object(file)
                #expect(statement["_type"] as? String == "https://in-toto.io/Statement/v1")
                #expect(statement["predicateType"] as? String == "https://slsa.dev/provenance/v1")
                let subject = try #require((statement["subject"] as? [[String: Any]])?.first)
                #expect((subject["digest"] as? [String: String])?["sha256"].map { "sha256:" + $0 } == digest)

                let predicate = try #require(statement["predicate"] as? [String: Any])
                let definition = try #require(predicate["buildDefinition"] as? [String: Any])
                #expect(definition["buildType"] as? String == "https://slipway.dev/build-task/v1")
                let external = try #require(definition["externalParameters"] as? [String: Any])
                #expect(external["dockerfile"] as? String == "Dockerfile")
                #expect(external["buildArgs"] as? [String: String] == ["VERSION": "1.2"])
                #expect(external["redactedBuildArgs"] as? [String] == ["NOTE", "NPM_TOKEN"])
                #expect(external["labels"] as? [String: String] == ["team": "core"])
                let internalParameters = try #require(definition["internalParameters"] as? [String: Any])
                let builderName = try #require(internalParameters["builder"] as? String)
                #expect(
                    builder == "assemble" ? builderName == "assembler" : builderName.hasPrefix("buildah 1."),
                    "\(builderName)")

                let dependencies = try #require(definition["resolvedDependencies"] as? [[String: Any]])
                let context = try #require(dependencies.first { $0["name"] as? String == "context" })
                #expect((context["digest"] as? [String: String])?["gitCommit"] == commit)
                #expect(context["uri"] as? String == "git+https://git.example.invalid/team/app.git@refs/heads/main")
                let baseDependency = try #require(dependencies.first { $0["name"] as? String == "image-arg:BASE" })
                #expect((baseDependency["digest"] as? [String: String])?["sha256"] == base.encoded)
                let inputs = try object(output.appendingPathComponent("build.json"))["inputs"] as? String
                #expect(
                    dependencies.contains {
                        ($0["digest"] as? [String: String])?["sha256"].map { "sha256:" + $0 } == inputs
                    })

                let run = try #require(predicate["runDetails"] as? [String: Any])
                #expect(((run["builder"] as? [String: Any])?["id"] as? String) == "https://slipway.dev/build-task")
                let metadata = try #require(run["metadata"] as? [String: String])
                let formatter = ISO8601DateFormatter()
                let started = try #require(metadata["startedOn"].flatMap(formatter.date(from:)))
                let finished = try #require(metadata["finishedOn"].flatMap(formatter.date(from:)))
                #expect(started <= finished)

                for name in ["provenance.intoto.json", "sbom.intoto.json"] {
                    let text = try String(
                        contentsOf: output.appendingPathComponent("attestations/\(name)"), encoding: .utf8)
                    #expect(
                        !text.contains(Self.secretText) && !text.contains(Self.tokenValue) && !text.contains("hunter2"),
                        "\(name)")
                }
            }
        }
    }

    @Test(arguments: ["assemble", "buildah"])
    func sbomListsWhatDpkgQueryListsInTheImage(builder: String) async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let (output, base, _) = try build(builder, repository: repository, directory: directory)
                let statement = try object(output.appendingPathComponent("attestations/sbom.intoto.json"))
                #expect(statement["predicateType"] as? String == "https://spdx.dev/Document")
                let document = try #require(statement["predicate"] as? [String: Any])
                #expect(document["spdxVersion"] as? String == "SPDX-2.3")
                #expect(document["dataLicense"] as? String == "CC0-1.0")
                #expect(document["SPDXID"] as? String == "SPDXRef-DOCUMENT")
                #expect((document["name"] as? String)?.isEmpty == false)
                #expect((document["documentNamespace"] as? String).flatMap(URL.init(string:))?.scheme == "https")
                let creation = try #require(document["creationInfo"] as? [String: Any])
                #expect((creation["created"] as? String).flatMap(ISO8601DateFormatter().date(from:)) != nil)
                #expect((creation["creators"] as? [String])?.first?.hasPrefix("Tool: ") == true)
                let packages = try #require(document["packages"] as? [[String: Any]])
                for package in packages {
                    #expect(
                        (package["SPDXID"] as? String)?.wholeMatch(of: /SPDXRef-[A-Za-z0-9.\-]+/) != nil, "\(package)")
                    #expect(package["name"] is String && package["downloadLocation"] is String, "\(package)")
                }

                // What dpkg itself says of the image's root filesystem.
                let root = try builds.unpacked(
                    output.appendingPathComponent("oci"), architecture: Platform.host.architecture,
                    into: directory.appending("unpacked"))
                let listed = try runProcess(
                    "dpkg-query", ["--admindir=\(root.path)/var/lib/dpkg", "-W", "-f=${Package} ${Version}\n"]
                ).checked()
                let expected = Set(listed.stdoutString.split(separator: "\n").map(String.init))
                #expect(expected.count == 4, "\(expected)")  // base-files, libc6, oldtool (config-files), libfoo
                let debs = packages.filter {
                    (($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"])?.hasPrefix("pkg:deb/")
                        == true
                }
                #expect(
                    Set(debs.map { "\($0["name"] as? String ?? "") \($0["versionInfo"] as? String ?? "")" }) == expected
                )
                let libfoo = try #require(debs.first { $0["name"] as? String == "libfoo" })
                #expect(
                    (libfoo["externalRefs"] as? [[String: String]])?.first?["referenceLocator"]
                        == "pkg:deb/debian/libfoo@1%3A2.0~rc1-3?arch=amd64")
                #expect((libfoo["sourceInfo"] as? String)?.contains("layer 1 ") == true, "\(libfoo)")
                let libc = try #require(debs.first { $0["name"] as? String == "libc6" })
                #expect((libc["sourceInfo"] as? String)?.contains("layer 0 ") == true, "\(libc)")
                // The second layer whited out the apk database.
                #expect(
                    !packages.contains {
                        (($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"])?.hasPrefix("pkg:apk/")
                            == true
                    })

                // The base by digest; the context files COPY named, after .dockerignore.
                #expect(
                    packages.contains {
                        ($0["checksums"] as? [[String: String]])?.first?["checksumValue"] == base.encoded
                    })
                let files = try #require(document["files"] as? [[String: Any]])
                #expect(Set(files.compactMap { $0["fileName"] as? String }) == ["./app.txt", "./conf/a.conf"])
                let app = try #require(files.first { $0["fileName"] as? String == "./app.txt" })
                let checksums = Dictionary(
                    ((app["checksums"] as? [[String: String]]) ?? []).map {
                        ($0["algorithm"] ?? "", $0["checksumValue"] ?? "")
                    }
                ) { $1 }
                let sha1 = try runProcess("sha1sum", [repository.path.appendingPathComponent("app/app.txt").path])
                    .checked().stdoutString.prefix(40)
                #expect(
                    checksums == ["SHA256": Digest.sha256(Data("app\n".utf8)).encoded, "SHA1": String(sha1)],
                    "SPDX 2.3 requires SHA1 of a file")
            }
        }
    }

    @Test func sbomListsAnApkDatabase() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                _ = try base(
                    directory.appending("base"),
                    layers: [["etc/os-release": "ID=alpine\n", "lib/apk/db/installed": Self.apkInstalled]])
                let (document, _) = try appSBOM(
                    on: directory.appending("base"), repository: repository, directory: directory)
                let locators = packages(document, purl: "pkg:apk/").compactMap {
                    ($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"]
                }
                #expect(
                    Set(locators) == [
                        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64", "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64",
                    ])
            }
        }
    }

    /// rpm's own database in the base, written by rpm in two layers (a package erased and one
    /// added by the second): the SBOM lists what `rpm -qa` lists in the built image. As
    /// `rpmdb.sqlite` (rpm 4.16 and later) and as a Berkeley DB `Packages` (older rpm).
    @Test(arguments: [false, true])
    func sbomListsWhatRpmListsInTheImage(berkeleyDB: Bool) async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let rpm = try RPMRoot(directory.appending("rpm"))
                try rpm.install(.init(name: "alpha", version: "1.0", release: "1", architecture: "noarch"))
                try rpm.install(.init(name: "beta", version: "2.3.4", release: "5.el9", epoch: 3))
                try rpm.install(.init(name: "gamma", version: "0.9", release: "1", descriptionLines: 400))
                let file = berkeleyDB ? "var/lib/rpm/Packages" : "var/lib/rpm/rpmdb.sqlite"
                let first = berkeleyDB ? try rpm.berkeleyDB : try rpm.database
                try rpm.erase("gamma")
                try rpm.install(.init(name: "delta", version: "4.0", release: "2.el9"))
                _ = try base(
                    directory.appending("base"),
                    layers: [
                        ["etc/os-release": Data("ID=\"rhel\"\n".utf8), file: first],
                        [file: berkeleyDB ? try rpm.berkeleyDB : try rpm.database],
                    ])
                let (document, output) = try appSBOM(
                    on: directory.appending("base"), repository: repository, directory: directory)
                let rpms = packages(document, purl: "pkg:rpm/")

                let root = try builds.unpacked(
                    output.appendingPathComponent("oci"), architecture: Platform.host.architecture,
                    into: directory.appending("unpacked"))
                let listed = try RPMRoot.query(root: root, berkeleyDB: berkeleyDB)
                #expect(listed.count == 3, "\(listed)")  // alpha, beta, delta: gamma was erased
                let purls = Dictionary(
                    rpms.map {
                        (
                            $0["name"] as? String ?? "",
                            (($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"]) ?? ""
                        )
                    }
                ) { $1 }
                #expect(
                    Set(
                        rpms.map { package in
                            let arch =
                                purls[package["name"] as? String ?? ""]?.firstMatch(of: /arch=([^&]+)/).map {
                                    String($0.1)
                                } ?? ""
                            return
                                "\(package["name"] as? String ?? "") \(package["versionInfo"] as? String ?? "") \(arch)"
                        }) == listed)
                #expect(purls["beta"] == "pkg:rpm/rhel/beta@2.3.4-5.el9?arch=x86_64&epoch=3")
                let layers = Dictionary(rpms.map { ($0["name"] as? String ?? "", $0["sourceInfo"] as? String ?? "") }) {
                    $1
                }
                #expect(
                    layers["alpha"]?.contains("listed in /\(file), entry last written by layer 0 ") == true, "\(layers)"
                )
                #expect(layers["delta"]?.contains("layer 1 ") == true, "\(layers)")
                #expect((document["comment"] as? String)?.contains("cannot be read") == false)
            }
        }
    }

    @Test func aReusedImageHasAttestationsToo() async throws {
        try await withTestRegistry(.open) { registry in
            try await withTestGitRepository { repository in
                try withTemporaryDirectory { directory in
                    _ = try debianLikeBase(directory.appending("base"))
                    _ = try repository.commit(
                        "app",
                        files: ["Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY app.txt /app.txt\n", "app.txt": "app\n"])
                    func build(_ name: String) throws -> (
                        provenance: [String: Any], sbom: [String: Any], digest: String
                    ) {
                        let output = directory.appending(name)
                        let result = try builds.buildTask(
                            directory.url,
                            [
                                "CONTEXT": repository.path.path, "BUILDER": "assemble",
                                "IMAGE_ARG_BASE": directory.appending("base").path,
                                "SKIP_IF_PUBLISHED": "\(registry.host)/team/app", "REGISTRY_INSECURE": "true",
                                "CACHE": directory.appending("cache").path, "OUTPUT": output.path,
                            ])
                        try #require(result.succeeded, "\(result.stderrString)")
                        return (
                            try object(output.appendingPathComponent("attestations/provenance.intoto.json")),
                            try object(output.appendingPathComponent("attestations/sbom.intoto.json")),
                            try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)
                        )
                    }
                    func parameters(_ statement: [String: Any]) -> [String: Any] {
                        ((statement["predicate"] as? [String: Any])?["buildDefinition"] as? [String: Any])?[
                            "internalParameters"] as? [String: Any] ?? [:]
                    }
                    func packages(_ statement: [String: Any]) -> Set<String> {
                        Set(
                            ((statement["predicate"] as? [String: Any])?["packages"] as? [[String: Any]] ?? [])
                                .compactMap {
                                    ($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"]
                                })
                    }
                    let built = try build("first")
                    let reused = try build("second")
                    #expect(parameters(built.provenance)["builder"] as? String == "assembler")
                    #expect(
                        parameters(reused.provenance)["builder"] as? String == "reused"
                            && parameters(reused.provenance)["reused"] as? Bool == true)
                    #expect(reused.digest == built.digest)
                    let subject =
                        ((reused.provenance["subject"] as? [[String: Any]])?.first?["digest"] as? [String: String])?[
                            "sha256"]
                    #expect(subject.map { "sha256:" + $0 } == reused.digest)
                    #expect(
                        packages(reused.sbom) == packages(built.sbom)
                            && packages(reused.sbom).contains { $0.hasPrefix("pkg:deb/debian/libc6@") })
                    // The image's purl names the repository it is published to.
                    #expect(
                        packages(reused.sbom).contains(
                            "pkg:docker/team/app@\(reused.digest.replacingOccurrences(of: ":", with: "%3A"))?repository_url=\(registry.host.replacingOccurrences(of: ":", with: "%3A"))"
                        ))
                }
            }
        }
    }

    /// The Debian layout `ci/debian-base` caches (debootstrap --variant=minbase), if this machine has made one.
    static var cachedDebianBase: URL? {
        let cache = URL(
            fileURLWithPath: ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? NSHomeDirectory() + "/.cache"
        )
        .appendingPathComponent("slipway/debian-base")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
        return names.sorted().first { $0.contains("-\(Platform.host.architecture)-") }
            .map { cache.appendingPathComponent($0) }
            .flatMap { FileManager.default.fileExists(atPath: $0.appendingPathComponent("index.json").path) ? $0 : nil }
    }

    /// A real debootstrapped Debian, when `ci/debian-base` has cached one here (a clean CI
    /// machine has not, and debootstrapping takes minutes: the crafted base above covers it there).
    @Test(.enabled(if: cachedDebianBase != nil, "no ci/debian-base layout cached on this machine"))
    func sbomOfADebootstrappedDebianIsWhatDpkgQueryLists() async throws {
        let debian = try #require(Self.cachedDebianBase)
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                let (document, output) = try appSBOM(on: debian, repository: repository, directory: directory)
                let debs = packages(document, purl: "pkg:deb/debian/")
                let root = try builds.unpacked(
                    output.appendingPathComponent("oci"), architecture: Platform.host.architecture,
                    into: directory.appending("unpacked"))
                let listed = try runProcess(
                    "dpkg-query", ["--admindir=\(root.path)/var/lib/dpkg", "-W", "-f=${Package} ${Version}\n"]
                ).checked()
                let expected = Set(listed.stdoutString.split(separator: "\n").map(String.init))
                #expect(expected.count > 50, "a minbase Debian has about a hundred packages: \(expected.count)")
                #expect(
                    Set(debs.map { "\($0["name"] as? String ?? "") \($0["versionInfo"] as? String ?? "")" }) == expected
                )
            }
        }
    }

    @Test func severalPlatformsHaveTheIndexAsSubjectAndEachPlatformsPackages() async throws {
        try await withTestGitRepository { repository in
            try withTemporaryDirectory { directory in
                // A base index: each platform's dpkg database names its own architecture.
                let layout = try OCILayout.create(at: directory.appending("base"))
                var platforms: [Descriptor] = []
                for architecture in ["amd64", "arm64"] {
                    let platform = Platform(os: "linux", architecture: architecture)
                    let status =
                        "Package: libc6\nStatus: install ok installed\nArchitecture: \(architecture)\nVersion: 2.36-9\n"
                    let (layer, diffID) = try ImageFixture.layer(["var/lib/dpkg/status": status], into: layout)
                    let configuration = ImageConfiguration(
                        platform: platform, rootfs: .init(diffIDs: [diffID]), history: [.init(createdBy: "status")])
                    let config = try layout.writeBlob(try CanonicalJSON.encode(configuration), mediaType: .ociConfig)
                    var manifest = try layout.writeBlob(
                        try CanonicalJSON.encode(ImageManifest(config: config, layers: [layer])),
                        mediaType: .ociManifest)
                    manifest.platform = platform
                    platforms.append(manifest)
                }
                let index = try layout.writeBlob(
                    try CanonicalJSON.encode(ImageIndex(manifests: platforms)), mediaType: .ociIndex)
                try layout.addToIndex(index, name: "latest")
                _ = try repository.commit(
                    "app", files: ["Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY app.txt /app.txt\n", "app.txt": "app\n"])
                let output = directory.appending("image")
                let result = try builds.buildTask(
                    directory.url,
                    [
                        "CONTEXT": repository.path.path, "BUILDER": "assemble",
                        "IMAGE_ARG_BASE": directory.appending("base").path, "IMAGE_PLATFORM": "linux/amd64,linux/arm64",
                        "CACHE": directory.appending("cache").path, "OUTPUT": output.path,
                    ])
                try #require(result.succeeded, "\(result.stderrString)")
                let digest = try String(contentsOf: output.appendingPathComponent("digest"), encoding: .utf8)
                guard
                    case .index = try OCILayout(opening: output.appendingPathComponent("oci")).image(named: "latest")
                        .manifest
                else {
                    Issue.record("two platforms make an index")
                    return
                }
                let statement = try object(output.appendingPathComponent("attestations/sbom.intoto.json"))
                let subject = ((statement["subject"] as? [[String: Any]])?.first?["digest"] as? [String: String])?[
                    "sha256"]
                #expect(subject.map { "sha256:" + $0 } == digest, "the subject is the index")
                let packages = ((statement["predicate"] as? [String: Any])?["packages"] as? [[String: Any]]) ?? []
                let locators = packages.compactMap {
                    ($0["externalRefs"] as? [[String: String]])?.first?["referenceLocator"]
                }.filter { $0.hasPrefix("pkg:deb/") }
                #expect(
                    Set(locators) == [
                        "pkg:deb/debian/libc6@2.36-9?arch=amd64", "pkg:deb/debian/libc6@2.36-9?arch=arm64",
                    ])
                let ids = packages.compactMap { $0["SPDXID"] as? String }
                #expect(Set(ids).count == ids.count, "SPDX identifiers are unique: \(ids)")
            }
        }
    }
}
