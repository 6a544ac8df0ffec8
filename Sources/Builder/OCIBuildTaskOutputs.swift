import Foundation
import ImageLayout
import OCI
import RootFS

/// What oci-build-task's outputs and BuildKit settings become in a `build-task` run:
/// `ADDITIONAL_TARGETS`, `OUTPUT_OCI`, `UNPACK_ROOTFS`, and buildah's `--secret`, `--ssh`
/// and `--add-host` for `BUILDKIT_SECRET*`, `BUILDKIT_SSH` and `BUILDKIT_ADD_HOSTS`.
extension ImageBuild {
    /// One `ADDITIONAL_TARGETS` stage, built as the image is (same builder choice, bases,
    /// labels), before it. As in oci-build-task its outputs go to `<stage>/` beside the
    /// image's output directory, and only when that directory exists (a task output);
    /// otherwise the stage is built for its own sake (a test stage) and its image dropped.
    func buildAdditionalTarget(_ stage: String) throws {
        let directory = configuration.output.deletingLastPathComponent().appendingPathComponent(stage)
        var isDirectory: ObjCBool = false
        let isOutput =
            FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) && isDirectory.boolValue
        var stageConfiguration = configuration
        stageConfiguration.target = stage
        stageConfiguration.additionalTargets = []
        stageConfiguration.push = false
        stageConfiguration.tag = nil
        stageConfiguration.credentialHostsOverride =
            RegistryAccess(configuration: configuration, environment: environment, log: log).credentialHosts
        let discarded = configuration.cache.appendingPathComponent("target-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: discarded) }
        stageConfiguration.output = isOutput ? directory : discarded
        log.info(
            "building target '\(stage)'"
                + (isOutput ? " into \(directory.path)" : " (no \(stage)/ output directory: its image is not kept)"))
        let result = try ImageBuild(
            stageConfiguration, log: log, environment: environment, runner: runner, progress: progress,
            binfmt: binfmt, namespaces: namespaces
        ).run()
        log.info("target '\(stage)': \(result.digest)")
    }

    /// `OUTPUT_OCI`: `image/` beside `oci/` (the same OCI layout, hard-linked: oci-build-task's
    /// name for it) and no `image.tar`. `UNPACK_ROOTFS`: `rootfs/` and `metadata.json`
    /// (`{"env":…,"user":…}`, oci-build-task's shape), for a later task's `image:`.
    func writeOCIBuildTaskOutputs(_ image: LayoutImage, output: URL) throws {
        if configuration.outputOCI {
            try? FileManager.default.removeItem(at: output.appendingPathComponent("image.tar"))
            try Self.linkTree(output.appendingPathComponent("oci"), to: output.appendingPathComponent("image"))
        }
        if configuration.unpackRootFS {
            let started = Date()
            let config = try Unpacker.unpack(image, into: output.appendingPathComponent("rootfs"), log: log)
            try Self.imageMetadata(config).write(to: output.appendingPathComponent("metadata.json"), options: .atomic)
            log.info("unpacked rootfs/ in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        }
    }

    /// oci-build-task's `metadata.json`: `{"env":[…],"user":"…"}` and a newline, `env` null
    /// when the image sets none (Go's encoding of its ImageMetadata).
    static func imageMetadata(_ config: ImageConfiguration) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let env = String(decoding: try encoder.encode(config.config?.env), as: UTF8.self)
        let user = String(decoding: try encoder.encode(config.config?.user ?? ""), as: UTF8.self)
        return Data("{\"env\":\(env),\"user\":\(user)}\n".utf8)
    }

    /// A copy of the directory tree `source` at `destination`, files hard-linked (copied where
    /// the file system cannot link).
    static func linkTree(_ source: URL, to destination: URL) throws {
        let manager = FileManager.default
        try manager.createDirectory(at: destination, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: source.path) {
            let from = source.appendingPathComponent(name)
            let to = destination.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            manager.fileExists(atPath: from.path, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try linkTree(from, to: to)
            } else if link(from.path, to.path) != 0 {
                try manager.copyItem(at: from, to: to)
            }
        }
    }

    /// buildah's `--ssh` and `--add-host` for `BUILDKIT_SSH` and `BUILDKIT_ADD_HOSTS`.
    var buildKitOptions: [String] {
        var options: [String] = []
        if let ssh = configuration.ssh { options += ["--ssh", ssh] }
        for entry in configuration.addHosts { options += ["--add-host", "\(entry.host):\(entry.address)"] }
        return options
    }

    /// Runs `body` with buildah's `--secret id=<id>,src=<file>` options. A
    /// `BUILDKIT_SECRETTEXT_<id>` is written to a file of its own (mode 0600) in `directory`,
    /// the run's ``PrivateRunDirectory`` (outside the context, the output and the cache),
    /// which goes when the run ends or the process gets SIGINT or SIGTERM.
    func withSecretFiles<R>(in directory: URL, _ body: ([String]) throws -> R) throws -> R {
        guard !configuration.secrets.isEmpty else { return try body([]) }
        // A directory of their own: an id never meets the auth file's name.
        let directory = directory.appendingPathComponent("secrets")
        guard mkdir(directory.path, 0o700) == 0 else {
            throw BuildError(.unwritableFile, "cannot create \(directory.path) for the build's secrets: errno \(errno)")
        }
        var options: [String] = []
        for secret in configuration.secrets {
            let file: URL
            switch secret.source {
            case .file(let source): file = source
            case .text(let text):
                file = directory.appendingPathComponent(secret.id)
                // Created 0600 by open(2) itself: never readable by others, not even for a moment.
                let descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
                guard descriptor >= 0 else {
                    throw BuildError(
                        .unwritableFile,
                        "BUILDKIT_SECRETTEXT_\(secret.id): cannot create a file for it in \(directory.path): errno \(errno)"
                    )
                }
                let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
                try handle.write(contentsOf: Data(text.value.utf8))
                try handle.close()
            }
            options += ["--secret", "id=\(secret.id),src=\(file.path)"]
        }
        return try body(options)
    }
}
