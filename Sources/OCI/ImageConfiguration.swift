/// An image configuration: what a runtime needs to run the image (platform, command,
/// environment) and the layer history.
///
/// Reads OCI configs and Docker configs; Docker's is a superset, and keys not modelled here
/// (`container_config`, `docker_version`, …) are dropped on decode. So never re-encode a
/// fetched config to find its digest: hash the bytes as received.
///
/// See the [image spec, Image Configuration](https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md).
public struct ImageConfiguration: Codable, Hashable, Sendable {
    /// When the image was created, as an RFC 3339 date-time string.
    ///
    /// Kept as a string so that a value read and written again is byte for byte the same,
    /// whatever its precision or zone.
    public var created: String?
    /// The person or entity that created the image.
    public var author: String?
    /// The CPU architecture, in OCI spelling (`amd64`, `arm64`, …).
    public var architecture: String
    /// The operating system, such as `linux`.
    public var os: String
    /// The CPU variant, such as `v8`.
    public var variant: String?
    /// The operating system version (JSON `os.version`).
    public var osVersion: String?
    /// Required operating system features (JSON `os.features`).
    public var osFeatures: [String]?
    /// The defaults for a container run from this image.
    public var config: Config?
    /// The uncompressed layer digests, base first.
    public var rootfs: RootFS
    /// One entry per build step, including steps that made no layer.
    public var history: [History]?

    /// Creates a configuration.
    public init(
        created: String? = nil,
        author: String? = nil,
        platform: Platform,
        config: Config? = nil,
        rootfs: RootFS,
        history: [History]? = nil
    ) {
        self.created = created
        self.author = author
        self.architecture = platform.architecture
        self.os = platform.os
        self.variant = platform.variant
        self.osVersion = platform.osVersion
        self.osFeatures = platform.osFeatures
        self.config = config
        self.rootfs = rootfs
        self.history = history
    }

    /// The platform this image was built for.
    public var platform: Platform {
        var platform = Platform(os: os, architecture: architecture, variant: variant)
        platform.osVersion = osVersion
        platform.osFeatures = osFeatures
        return platform
    }

    /// A placeholder for a JSON object whose keys are the data, such as
    /// `"ExposedPorts": {"80/tcp": {}}`.
    public typealias EmptyObject = OCI.EmptyObject

    /// Defaults for a container run from the image. JSON keys are capitalised, as Docker
    /// wrote them first.
    ///
    /// See the [image spec, config properties](https://github.com/opencontainers/image-spec/blob/v1.1.0/config.md#properties).
    public struct Config: Codable, Hashable, Sendable {
        /// The user (name or UID, optionally `:group`) the process runs as.
        public var user: String?
        /// Ports to expose, as `port/tcp`, `port/udp` or `port` (TCP).
        public var exposedPorts: [String: EmptyObject]?
        /// Environment entries, each `NAME=value`.
        public var env: [String]?
        /// The executable and its leading arguments.
        public var entrypoint: [String]?
        /// Default arguments, appended to the entrypoint or run on their own.
        public var cmd: [String]?
        /// Paths that hold data outside the container's layers.
        public var volumes: [String: EmptyObject]?
        /// The working directory of the process.
        public var workingDir: String?
        /// Arbitrary metadata, such as `org.opencontainers.image.source`.
        public var labels: [String: String]?
        /// The signal that stops the container, such as `SIGTERM`.
        public var stopSignal: String?

        /// Creates a container configuration; every field is optional.
        public init(
            user: String? = nil,
            exposedPorts: [String: EmptyObject]? = nil,
            env: [String]? = nil,
            entrypoint: [String]? = nil,
            cmd: [String]? = nil,
            volumes: [String: EmptyObject]? = nil,
            workingDir: String? = nil,
            labels: [String: String]? = nil,
            stopSignal: String? = nil
        ) {
            self.user = user
            self.exposedPorts = exposedPorts
            self.env = env
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.volumes = volumes
            self.workingDir = workingDir
            self.labels = labels
            self.stopSignal = stopSignal
        }

        private enum CodingKeys: String, CodingKey {
            case user = "User"
            case exposedPorts = "ExposedPorts"
            case env = "Env"
            case entrypoint = "Entrypoint"
            case cmd = "Cmd"
            case volumes = "Volumes"
            case workingDir = "WorkingDir"
            case labels = "Labels"
            case stopSignal = "StopSignal"
        }
    }

    /// The layer chain as the runtime sees it: digests of the uncompressed layer tars.
    public struct RootFS: Codable, Hashable, Sendable {
        /// Always `layers`.
        public var type: String
        /// The digest of each uncompressed layer, base first (JSON `diff_ids`).
        public var diffIDs: [Digest]

        /// Creates a layer chain; `type` is `layers`, the only value the spec allows.
        public init(type: String = "layers", diffIDs: [Digest]) {
            self.type = type
            self.diffIDs = diffIDs
        }

        private enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    /// One build step.
    public struct History: Codable, Hashable, Sendable {
        /// When the step ran, as an RFC 3339 date-time string.
        public var created: String?
        /// The command that ran (JSON `created_by`).
        public var createdBy: String?
        /// Who made the step.
        public var author: String?
        /// A free-form note.
        public var comment: String?
        /// Whether the step made no layer (JSON `empty_layer`); such steps have no `diff_ids` entry.
        public var emptyLayer: Bool?

        /// Creates a history entry; every field is optional.
        public init(
            created: String? = nil,
            createdBy: String? = nil,
            author: String? = nil,
            comment: String? = nil,
            emptyLayer: Bool? = nil
        ) {
            self.created = created
            self.createdBy = createdBy
            self.author = author
            self.comment = comment
            self.emptyLayer = emptyLayer
        }

        private enum CodingKeys: String, CodingKey {
            case created
            case createdBy = "created_by"
            case author
            case comment
            case emptyLayer = "empty_layer"
        }
    }

    private enum CodingKeys: String, CodingKey {
        case created, author, architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
        case config, rootfs, history
    }
}

/// A JSON object whose content does not matter, written as `{}`: the value type of maps
/// whose keys carry the information, such as exposed ports and volumes.
public struct EmptyObject: Codable, Hashable, Sendable {
    /// Creates the empty object.
    public init() {}

    /// Accepts any JSON object and ignores its members; older Docker versions were not
    /// consistent about writing them empty.
    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: AnyKey.self)
    }

    /// Writes `{}`.
    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: AnyKey.self)
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
