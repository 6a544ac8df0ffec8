import Errors
import Foundation

/// The operating system and CPU an image runs on, as found in an index entry or a config.
///
/// Architecture names use the OCI (Go) spelling: `amd64`, `arm64`, `arm`, `386`, `ppc64le`,
/// `s390x`, `riscv64`. Values are kept as written; ``matches(_:)`` folds the common aliases
/// (`x86_64`, `aarch64`) so that a platform from any tool selects the right manifest.
///
/// See the [image spec, Image Index](https://github.com/opencontainers/image-spec/blob/v1.1.0/image-index.md#image-index-property-descriptions).
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    /// Why a string is not a platform.
    public struct ValidationError: SlipwayError, Equatable {
        /// What kind of failure this is (one kind: the message says the rest).
        public typealias Kind = ErrorKind<Platform.ValidationError>
        public var kind: Kind { .invalidPlatform }

        /// The rejected text, exactly as given.
        public var value: String

        /// Creates an error for the rejected text.
        public init(value: String) {
            self.value = value
        }

        /// One line naming the value and the accepted form.
        public var message: String {
            "invalid platform \(quoted(value)): expected os/architecture[/variant], such as linux/amd64 or linux/arm64/v8"
        }
    }

    /// The CPU architecture, such as `amd64` or `arm64`.
    public var architecture: String
    /// The operating system, such as `linux`.
    public var os: String
    /// The CPU variant, such as `v7` for `arm` or `v8` for `arm64`.
    public var variant: String?
    /// The operating system version; used by Windows images (JSON `os.version`).
    public var osVersion: String?
    /// Required operating system features (JSON `os.features`).
    public var osFeatures: [String]?

    /// Creates a platform from its parts, as written.
    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/architecture` or `os/architecture/variant`, such as `linux/arm64/v8`.
    ///
    /// Input is lowercased, as Docker's `--platform` flag does, so `Linux/AMD64` is accepted.
    ///
    /// - Throws: ``Platform/ValidationError`` naming `string`.
    public init(_ string: String) throws(ValidationError) {
        let parts = string.lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), parts.allSatisfy(isPlatformComponent) else {
            throw ValidationError(value: string)
        }
        self.init(
            os: String(parts[0]), architecture: String(parts[1]), variant: parts.count == 3 ? String(parts[2]) : nil)
    }

    /// `os/architecture[/variant]`, the form ``init(_:)`` parses.
    public var description: String {
        [os, architecture, variant].compactMap { $0 }.joined(separator: "/")
    }

    /// This platform with aliases folded into the OCI spelling and default variants filled in:
    /// `aarch64` → `arm64/v8`, `x86_64` → `amd64`, `armhf` → `arm/v7`, `arm` → `arm/v7`,
    /// `i686` → `386`, `macos` → `darwin`.
    ///
    /// Follows the aliases containerd and Docker accept; see
    /// [containerd's platforms package](https://github.com/containerd/platforms/blob/main/database.go).
    public var normalized: Platform {
        var result = self
        result.os = os.lowercased() == "macos" ? "darwin" : os.lowercased()
        let variant = variant?.lowercased()
        switch architecture.lowercased() {
        case "x86_64", "x86-64", "amd64":
            result.architecture = "amd64"
            // v1 is the baseline every amd64 CPU meets, so it says nothing.
            result.variant = variant == "v1" ? nil : variant
        case "aarch64", "arm64":
            result.architecture = "arm64"
            switch variant {
            case nil, "8", "v8", "v8.0": result.variant = "v8"
            case let other?: result.variant = other.hasPrefix("v") ? other : "v" + other
            }
        case "armhf":
            result.architecture = "arm"
            result.variant = "v7"
        case "armel":
            result.architecture = "arm"
            result.variant = "v6"
        case "arm":
            result.architecture = "arm"
            switch variant {
            case nil: result.variant = "v7"
            case let other?: result.variant = other.hasPrefix("v") ? other : "v" + other
            }
        case "i386", "i486", "i586", "i686", "386":
            result.architecture = "386"
            result.variant = variant
        case let other:
            result.architecture = other
            result.variant = variant
        }
        return result
    }

    /// Whether an image built for this platform satisfies `wanted`.
    ///
    /// Both sides are ``normalized`` first. A `wanted` without a variant matches every variant
    /// of its architecture; with one, the variants must be equal (an `arm/v6` image is not
    /// picked for `arm/v7`: an index that offers both should yield the exact one). OS version
    /// and features are not compared.
    public func matches(_ wanted: Platform) -> Bool {
        let have = normalized
        let want = wanted.normalized
        guard have.os == want.os, have.architecture == want.architecture else { return false }
        return wanted.variant == nil || have.variant == want.variant
    }

    /// Linux on the CPU this program was compiled for, in OCI spelling.
    ///
    /// Always Linux: images are Linux images even when Slipway runs elsewhere during
    /// development. An architecture Swift does not name below gives `unknown`, which matches
    /// no image rather than a wrong one.
    public static var host: Platform {
        #if arch(x86_64)
            Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
            Platform(os: "linux", architecture: "arm64")
        #elseif arch(arm)
            Platform(os: "linux", architecture: "arm", variant: "v7")
        #elseif arch(i386)
            Platform(os: "linux", architecture: "386")
        #elseif arch(powerpc64le)
            Platform(os: "linux", architecture: "ppc64le")
        #elseif arch(s390x)
            Platform(os: "linux", architecture: "s390x")
        #elseif arch(riscv64)
            Platform(os: "linux", architecture: "riscv64")
        #else
            Platform(os: "linux", architecture: "unknown")
        #endif
    }

    private enum CodingKeys: String, CodingKey {
        case architecture
        case os
        case variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }
}

private func isPlatformComponent(_ component: Substring) -> Bool {
    !component.isEmpty
        && component.utf8.allSatisfy { byte in
            isLowerAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
}

extension ErrorKind where Owner == Platform.ValidationError {
    /// The text is not a platform.
    public static var invalidPlatform: Self { Self("invalid platform") }
}
