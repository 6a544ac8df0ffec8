// swift-tools-version:6.0
import PackageDescription

// Dependency direction (one way, top to bottom; docs/architecture.md has each module):
//   SlipwayCommand → Resource, Builder
//     → Transfer, Signing, CloudAuth, GitSource, BuildLock, BuildContext, RootFS, TagPolicy
//     → Registry, ImageLayout, Archive → HTTP → CCurl, CZlib, CZstd
//     → OCI (value types, no I/O), Console
//     → Errors (the one error shape every module's error conforms to)
let package = Package(
    name: "Slipway",
    platforms: [.macOS(.v14)],
    products: [
        // One executable, four names: check, in, out and build-task are links to it.
        .executable(name: "slipway", targets: ["SlipwayCommand"]),
        .library(name: "OCI", targets: ["OCI"]),
        .library(name: "Registry", targets: ["Registry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // System libraries. libcurl rather than FoundationNetworking: on Linux,
        // URLSession cannot trust a per-registry CA (no server-trust challenge) and
        // gives no back-pressure on streamed bodies. See docs/architecture.md, "Dependencies".
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // zstd-compressed layers (BuildKit and newer builders write them).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // The one error shape: a kind to branch on and a one-line message (SlipwayError).
        .target(name: "Errors"),

        // OCI image and distribution value types: digests, media types, descriptors,
        // manifests, indexes, configs, platforms, references. Pure, no I/O.
        .target(name: "OCI", dependencies: ["Errors", .product(name: "Crypto", package: "swift-crypto")]),
        // A small HTTP/1.1 transport over libcurl: streamed bodies, per-request TLS trust.
        .target(name: "HTTP", dependencies: ["Errors", "CCurl"]),
        // Where log lines go (stderr; captured in tests).
        .target(name: "Console"),
        // Running programs (git, ssh, buildah, credential helpers): posix_spawn, every stream
        // drained at once, an idle bound, and children ended with us on SIGTERM and SIGINT.
        .target(name: "Spawn", dependencies: ["Errors"]),
        // The OCI distribution client: auth, manifests, blobs, tags, retries.
        .target(
            name: "Registry",
            dependencies: [
                "Errors", "OCI", "HTTP", "Console", "Spawn", .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Cloud registry logins without cloud SDKs: AWS Signature Version 4, AWS credentials
        // (source, environment, EC2 instance metadata), STS role chains and ECR tokens; Azure
        // managed identity and the ACR refresh-token exchange.
        .target(
            name: "CloudAuth",
            dependencies: ["Errors", "OCI", "HTTP", .product(name: "Crypto", package: "swift-crypto")]),

        // Byte streams, gzip/zstd and tar, all streaming with bounded memory.
        .target(name: "Archive", dependencies: ["Errors", "CZlib", "CZstd", "OCI"]),
        // OCI image layouts (read, write), OCI archives (read) and docker-archives (read, write).
        .target(name: "ImageLayout", dependencies: ["Errors", "OCI", "Archive"]),
        // Layers applied into a root filesystem, safely: the security boundary of `in`.
        .target(name: "RootFS", dependencies: ["Errors", "OCI", "Archive", "Console", "ImageLayout"]),
        // Path-filtered git change detection, tag files and release tags: the engine of `check`.
        .target(
            name: "GitSource",
            dependencies: ["Errors", "OCI", "Console", "Spawn", .product(name: "Yams", package: "Yams")]),

        // Images moved between layouts and registries: push, pull, copy (promote).
        .target(name: "Transfer", dependencies: ["OCI", "Registry", "ImageLayout", "Console"]),
        // Build serialisation: locks on a directory (flock) or a git repository (atomic ref create).
        .target(name: "BuildLock", dependencies: ["Errors", "Console", "GitSource", "Spawn"]),
        // What a build reads: the context (honouring .dockerignore), the Dockerfile's stages, the inputs digest.
        .target(name: "BuildContext", dependencies: ["Errors", "OCI"]),
        // build-task: its configuration (environment and flags), the buildah driver.
        .target(
            name: "Builder",
            dependencies: [
                "Errors", "OCI", "Console", "BuildContext", "BuildLock", "GitSource", "Spawn", "ImageLayout",
                "Transfer", "HTTP", "Registry", "RootFS",
                // SHA-1 of the files an SPDX SBOM lists (SPDX 2.3 requires it beside SHA-256).
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Signed images in cosign's layout: simple-signing signatures (`.sig`), DSSE
        // attestations (`.att`), ECDSA P-256 keys (cosign's encrypted form too), verification.
        .target(
            name: "Signing",
            dependencies: [
                "Errors", "OCI", "Registry", .product(name: "Crypto", package: "swift-crypto"),
                // scrypt, which opens cosign's encrypted private keys.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        // Tag rules, pure: semantic versions, constraints, registry-image's semver selection.
        .target(name: "TagPolicy", dependencies: ["Errors", "OCI"]),
        // The Concourse resource commands: strict input, `check`, `in`, `out`.
        .target(
            name: "Resource",
            dependencies: [
                "Errors", "OCI", "HTTP", "Registry", "Console", "TagPolicy", "ImageLayout", "Transfer", "GitSource",
                "Spawn", "RootFS", "BuildContext", "CloudAuth", "Signing",
            ]),

        // Executables are wiring only. `slipway` is check, in, out and build-task, chosen by
        // the name it is called by (argv[0]) or its first argument: one copy of the Swift
        // runtime and Foundation in the resource image instead of four.
        .executableTarget(name: "SlipwayCommand", dependencies: ["Resource", "Builder", "Console", "CArguments"]),
        // argc and argv as glibc passes them to initialisers: the name slipway is called by
        // must not depend on /proc, which CommandLine.arguments reads on Linux.
        .target(name: "CArguments"),

        // Benchmarks (Benchmarks/*): built in release by their scripts, never by the tests.
        .executableTarget(name: "BlobRoundTrip", dependencies: ["Registry", "OCI"], path: "Benchmarks/BlobRoundTrip"),
        .executableTarget(name: "ArchiveStream", dependencies: ["Archive"], path: "Benchmarks/ArchiveStream"),
        .executableTarget(
            name: "GitCheck", dependencies: ["GitSource", "Console", "Spawn"], path: "Benchmarks/GitCheck"),
        .executableTarget(
            name: "RootFSUnpack", dependencies: ["RootFS", "Archive", "OCI", "Console"], path: "Benchmarks/RootFSUnpack"
        ),

        // Test support: a real docker-registry on a free loopback port, temporary git
        // repositories, process helpers. Used only by tests and benchmarks.
        .target(
            name: "TestSupport", dependencies: ["OCI", "HTTP", "Spawn", "Registry", "Archive", "ImageLayout"],
            path: "Tests/TestSupport"),
        .testTarget(name: "OCITests", dependencies: ["OCI"], resources: [.copy("Golden")]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "OCI", "HTTP", "TestSupport"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "OCI", "TestSupport"]),
        .testTarget(name: "ImageLayoutTests", dependencies: ["ImageLayout", "Archive", "OCI", "TestSupport"]),
        .testTarget(name: "RootFSTests", dependencies: ["RootFS", "Archive", "OCI", "Console", "TestSupport"]),
        .testTarget(
            name: "TransferTests",
            dependencies: ["Transfer", "ImageLayout", "Registry", "OCI", "Archive", "Console", "TestSupport"]),
        .testTarget(name: "BuildLockTests", dependencies: ["BuildLock", "Console", "Spawn", "TestSupport"]),
        .testTarget(name: "BuildContextTests", dependencies: ["BuildContext", "OCI", "TestSupport"]),
        .testTarget(
            name: "BuilderTests",
            dependencies: [
                "Builder", "BuildContext", "BuildLock", "Spawn", "ImageLayout", "Archive", "OCI", "Registry",
                "TestSupport",
            ]),
        .testTarget(name: "CloudAuthTests", dependencies: ["CloudAuth", "HTTP"]),
        .testTarget(name: "TagPolicyTests", dependencies: ["TagPolicy", "OCI"]),
        .testTarget(
            name: "ResourceTests",
            dependencies: [
                "Resource", "HTTP", "Registry", "OCI", "ImageLayout", "Transfer", "Archive", "GitSource", "Spawn",
                "TagPolicy", "TestSupport", "CloudAuth", "Signing",
            ]),
        // The ciphers that open cosign's encrypted keys, against their published vectors.
        .testTarget(name: "SigningTests", dependencies: ["Signing"]),
        .testTarget(name: "GitSourceTests", dependencies: ["GitSource", "OCI", "Console", "Spawn", "TestSupport"]),
        // Every module's error in the one shape: a kind and a one-line message.
        .testTarget(
            name: "ErrorsTests",
            dependencies: [
                "Errors", "OCI", "HTTP", "Spawn", "Registry", "CloudAuth", "Archive", "ImageLayout", "RootFS",
                "GitSource",
                "BuildLock", "BuildContext", "TagPolicy", "Signing", "Resource", "Builder",
            ]),
        // ci/: the pipelines, set-pipeline, the resource image and the seed workflows end to end.
        .testTarget(
            name: "CITests",
            dependencies: [
                "OCI", "Registry", "ImageLayout", "Resource", "Builder", "Spawn", "TestSupport",
                .product(name: "Yams", package: "Yams"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
