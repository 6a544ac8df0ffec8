import BuildContext
import Foundation
import ImageLayout
import OCI

/// The SPDX SBOM `build-task` writes beside each image (`attestations/sbom.intoto.json`):
/// the image, its bases by digest, the packages its package databases list (per platform),
/// and the context files its `COPY`/`ADD` instructions name.
enum SBOM {
    struct ContextFile: Sendable, Equatable {
        var path: String
        var digest: Digest
        /// Hex SHA-1, which SPDX 2.3 requires of every file (nil until ``withSHA1(in:)``).
        var sha1: String? = nil

        /// The file with its SHA-1, read in 1 MiB chunks from `context`.
        func withSHA1(in context: URL) throws -> ContextFile {
            guard let sha1 = try sha1Hex(of: context.appendingPathComponent(path)) else {
                throw BuildError(.unreadableFile, "cannot read \(path) in the context for the SBOM")
            }
            var file = self
            file.sha1 = sha1
            return file
        }
    }

    /// A [purl](https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst#docker) of
    /// `name` (a repository reference) at `digest`; nil when `name` is not a reference.
    static func dockerPURL(_ name: String, digest: Digest) -> String? {
        guard let reference = try? ImageReference(name) else { return nil }
        var purl =
            "pkg:docker/"
            + reference.repository.rawValue.split(separator: "/").map { purlEncoded(String($0)) }.joined(separator: "/")
            + "@" + purlEncoded(digest.rawValue)
        var qualifiers: [String] = []
        if reference.registry != .dockerHub {
            qualifiers.append("repository_url=" + purlEncoded(reference.registry.rawValue))
        }
        if let tag = reference.tag { qualifiers.append("tag=" + purlEncoded(tag.rawValue)) }
        if !qualifiers.isEmpty { purl += "?" + qualifiers.joined(separator: "&") }
        return purl
    }

    /// The [purl](https://github.com/package-url/purl-spec/blob/master/PURL-TYPES.rst#rpm) of an
    /// rpm package: `pkg:rpm/<distribution>/<name>@<version>-<release>?arch=…&epoch=…` (the
    /// package's version is `[epoch:]version-release`; purl keeps the epoch as a qualifier, and
    /// qualifiers in name order); no namespace when the image has no os-release.
    static func rpmPURL(_ package: InstalledPackage, distribution: String?) -> String {
        var version = Substring(package.version)
        var epoch: Substring?
        if let colon = version.firstIndex(of: ":") {
            epoch = version[..<colon]
            version = version[version.index(after: colon)...]
        }
        let namespace = distribution.map { purlEncoded($0) + "/" } ?? ""
        let qualifiers = [
            package.architecture.map { "arch=" + purlEncoded($0) }, epoch.map { "epoch=" + purlEncoded(String($0)) },
        ].compactMap { $0 }
        return "pkg:rpm/\(namespace)\(purlEncoded(package.name))@\(purlEncoded(String(version)))"
            + (qualifiers.isEmpty ? "" : "?" + qualifiers.joined(separator: "&"))
    }

    /// One platform's scan (platform nil: a single-manifest image).
    struct PlatformScan: Sendable {
        var platform: Platform?
        var scan: PackageDatabaseScan
    }

    /// The packages of every platform image of `image`, each scanned from its layers.
    static func scan(_ image: LayoutImage) throws -> [PlatformScan] {
        switch image.manifest {
        case .image(let manifest):
            return [PlatformScan(platform: nil, scan: try PackageDatabaseScan.scan(manifest, in: image.layout))]
        case .index(let index):
            return try index.manifests.compactMap { descriptor -> PlatformScan? in
                // Attestation manifests (platform unknown/unknown) hold no root filesystem.
                guard descriptor.mediaType.isImageManifest, let platform = descriptor.platform,
                    platform.os != "unknown",
                    case .image(let manifest) = try Manifest.decode(
                        image.layout.blob(descriptor), mediaType: descriptor.mediaType)
                else { return nil }
                return PlatformScan(platform: platform, scan: try PackageDatabaseScan.scan(manifest, in: image.layout))
            }
        }
    }

    /// The context files (after `.dockerignore`) a `COPY`/`ADD` without `--from` names: by
    /// path, directory or glob. nil `stages` (the Dockerfile could not be parsed): every file.
    static func contextFiles(_ inputs: BuildInputs, stages: DockerfileStages?, values: [String: String]) throws
        -> [ContextFile]
    {
        var files: [ContextFile] = []
        for line in try inputs.manifest().split(separator: "\n") where line.hasPrefix("file ") {
            // file <JSON string> <mode> <digest>
            let words = line.split(separator: " ")
            guard words.count >= 4, let digest = try? Digest(String(words[words.count - 1])) else { continue }
            let literal = words[1..<(words.count - 2)].joined(separator: " ")
            guard
                let path = (try? JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed))
                    as? String
            else { continue }
            files.append(ContextFile(path: path, digest: digest))
        }
        guard let stages else { return try files.map { try $0.withSHA1(in: inputs.contextDirectory) } }
        var patterns: [String] = []
        for stage in stages.stages {
            for instruction in stage.instructions where instruction.keyword == "COPY" || instruction.keyword == "ADD" {
                let (flags, rest) = instruction.flagsAndRest
                if flags.contains(where: { $0.name == "from" }) || instruction.hasHeredoc { continue }
                let words = DockerfileStages.Instruction.execForm(rest) ?? DockerfileStages.words(rest, values: values)
                for source in words.dropLast() where !source.contains("://") && !source.hasPrefix("git@") {
                    patterns.append(PackageDatabaseScan.normalized(source))
                }
            }
        }
        return try files.filter { file in patterns.contains { matches($0, file.path) } }.map {
            try $0.withSHA1(in: inputs.contextDirectory)
        }
    }

    /// Whether a COPY source names `path`: itself, a directory above it, or a glob matching either.
    static func matches(_ pattern: String, _ path: String) -> Bool {
        if pattern.isEmpty || pattern == "." { return true }
        var candidate = ""
        for component in path.split(separator: "/") {
            candidate = candidate.isEmpty ? String(component) : candidate + "/" + component
            if candidate == pattern || fnmatch(pattern, candidate, FNM_PATHNAME) == 0 { return true }
        }
        return false
    }

    /// - Parameter repository: the repository the image is for, if any (for its purl).
    static func document(
        subject: StatementSubject, repository: String?, digest: Digest, scans: [PlatformScan],
        bases: [BaseImage], files: [ContextFile], created: Date
    ) -> SPDXDocument {
        let date = ISO8601DateFormatter().string(from: created)
        let image = SPDXDocument.identifier("Image")
        var packages = [containerPackage(image, name: subject.name, digest: digest, repository: repository)]
        var relationships = [
            SPDXDocument.Relationship(
                spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: image)
        ]
        for (index, base) in bases.enumerated() {
            let id = SPDXDocument.identifier("Base-\(index)")
            packages.append(
                containerPackage(
                    id, name: base.name ?? base.reference, digest: base.digest, repository: base.name,
                    comment: "a base image (FROM \(base.reference))"))
            relationships.append(.init(spdxElementId: image, relationshipType: "DESCENDANT_OF", relatedSpdxElement: id))
        }
        var notes: [String] = []
        for platformScan in scans {
            let platformName = platformScan.platform?.description
            for (index, package) in platformScan.scan.packages.enumerated() {
                let id = SPDXDocument.identifier(
                    "Package-" + (platformName.map { $0 + "-" } ?? "")
                        + "\(package.manager.rawValue)-\(index)-\(package.name)")
                let purl = packagePURL(package, distribution: platformScan.scan.distribution)
                let written =
                    "listed in /\(package.database), entry last written by layer \(package.layerIndex) (\(package.layer))"
                packages.append(
                    .init(
                        SPDXID: id, name: package.name, versionInfo: package.version,
                        sourceInfo: written + (platformName.map { " of the \($0) image" } ?? ""),
                        externalRefs: [
                            .init(referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl)
                        ]))
                relationships.append(.init(spdxElementId: image, relationshipType: "CONTAINS", relatedSpdxElement: id))
            }
            for database in platformScan.scan.unreadDatabases {
                notes.append(
                    "/\(database.path)\(platformName.map { " (\($0))" } ?? "") \(database.reason): its packages are not listed"
                )
            }
        }
        var spdxFiles: [SPDXDocument.File] = []
        for (index, file) in files.enumerated() {
            let id = SPDXDocument.identifier("File-\(index)")
            spdxFiles.append(
                .init(
                    SPDXID: id, fileName: "./" + file.path,
                    checksums: (file.sha1.map { [SPDXDocument.Checksum(algorithm: "SHA1", checksumValue: $0)] } ?? [])
                        + [.init(algorithm: file.digest.algorithm.uppercased(), checksumValue: file.digest.encoded)],
                    comment: "a build context file that COPY or ADD names (its path in the context)"))
            relationships.append(
                .init(spdxElementId: image, relationshipType: "GENERATED_FROM", relatedSpdxElement: id))
        }
        notes.append(
            "packages are those the image's dpkg, apk and rpm databases list; files installed without a package manager are not listed unless copied from the build context"
        )
        return SPDXDocument(
            name: "\(subject.name)@\(digest)",
            documentNamespace:
                "https://slipway.dev/spdx/\(purlEncoded(subject.name))/\(digest.encoded)/\(UUID().uuidString.lowercased())",
            creationInfo: .init(created: date, creators: ["Tool: slipway-build-task-\(Provenance.slipwayVersion)"]),
            comment: notes.joined(separator: "; "), packages: packages, files: spdxFiles, relationships: relationships)
    }

    /// An image's package: the image itself or a base, with a docker purl when it has a repository.
    static func containerPackage(
        _ id: String, name: String, digest: Digest, repository: String?, comment: String? = nil
    ) -> SPDXDocument.Package {
        SPDXDocument.Package(
            SPDXID: id, name: name, versionInfo: digest.rawValue, primaryPackagePurpose: "CONTAINER",
            checksums: [.init(algorithm: digest.algorithm.uppercased(), checksumValue: digest.encoded)],
            externalRefs: repository.flatMap { dockerPURL($0, digest: digest) }.map {
                [.init(referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: $0)]
            },
            comment: comment)
    }

    /// An installed package's purl: deb and apk under the image's distribution (with its
    /// architecture), rpm as ``rpmPURL(_:distribution:)`` writes it.
    static func packagePURL(_ package: InstalledPackage, distribution: String?) -> String {
        var purl: String
        switch package.manager {
        case .dpkg:
            purl =
                "pkg:deb/\(purlEncoded(distribution ?? "debian"))/\(purlEncoded(package.name))@\(purlEncoded(package.version))"
        case .apk:
            purl =
                "pkg:apk/\(purlEncoded(distribution ?? "alpine"))/\(purlEncoded(package.name))@\(purlEncoded(package.version))"
        case .rpm: purl = rpmPURL(package, distribution: distribution)
        }
        if package.manager != .rpm, let architecture = package.architecture {
            purl += "?arch=\(purlEncoded(architecture))"
        }
        return purl
    }
}
