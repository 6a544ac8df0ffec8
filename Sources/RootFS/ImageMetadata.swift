import Foundation
import OCI

/// The `metadata.json` written beside `rootfs/`: what Concourse needs to run a task in the
/// image (it reads `env` and `user`), with the image's command for anyone else who looks.
///
/// The shape is registry-image-resource's, key for key, so a pipeline can switch resource
/// types without noticing: `cmd`, `entrypoint` and `env` are `null` when the image sets
/// none, and `user` is `""`.
///
/// See registry-image-resource's `ImageMetadata` (commands/in.go) and Concourse's
/// [image resource metadata](https://concourse-ci.org/tasks.html#schema.task-config.image_resource).
public struct ImageMetadata: Codable, Hashable, Sendable {
    /// Default arguments (`Cmd`).
    public var cmd: [String]?
    /// The executable and its leading arguments (`Entrypoint`).
    public var entrypoint: [String]?
    /// Environment entries, each `NAME=value` (`Env`).
    public var env: [String]?
    /// The user the process runs as, or `""` for the runtime's default (`User`).
    public var user: String

    /// Creates metadata from its parts.
    public init(cmd: [String]? = nil, entrypoint: [String]? = nil, env: [String]? = nil, user: String = "") {
        self.cmd = cmd
        self.entrypoint = entrypoint
        self.env = env
        self.user = user
    }

    /// The metadata of an image configuration.
    public init(config: ImageConfiguration) {
        self.init(
            cmd: config.config?.cmd,
            entrypoint: config.config?.entrypoint,
            env: config.config?.env,
            user: config.config?.user ?? ""
        )
    }

    private enum CodingKeys: String, CodingKey {
        case cmd, entrypoint, env, user
    }

    /// Decodes, accepting `null` or a missing key for every field.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cmd = try container.decodeIfPresent([String].self, forKey: .cmd)
        entrypoint = try container.decodeIfPresent([String].self, forKey: .entrypoint)
        env = try container.decodeIfPresent([String].self, forKey: .env)
        user = try container.decodeIfPresent(String.self, forKey: .user) ?? ""
    }

    /// Encodes every key, absent lists as `null`, as registry-image does.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cmd, forKey: .cmd)
        try container.encode(entrypoint, forKey: .entrypoint)
        try container.encode(env, forKey: .env)
        try container.encode(user, forKey: .user)
    }

    /// Writes `metadata.json` and `labels.json` (the config's labels, `{}` when it has none)
    /// into `directory`, each atomically (a temporary file renamed into place).
    ///
    /// - Throws: the file system's error, or an encoding error.
    public static func write(config: ImageConfiguration, to directory: URL) throws {
        let metadata = try CanonicalJSON.encode(ImageMetadata(config: config)) + Data("\n".utf8)
        let labels = try CanonicalJSON.encode(config.config?.labels ?? [:]) + Data("\n".utf8)
        try metadata.write(to: directory.appendingPathComponent("metadata.json"), options: .atomic)
        try labels.write(to: directory.appendingPathComponent("labels.json"), options: .atomic)
    }
}
