import Console
import Foundation
import OCI

/// The caches a buildah build reuses beyond one worker's storage: buildah's layer cache in a
/// registry (`CACHE_REPOSITORY`, `--cache-from`/`--cache-to`, bounded by `CACHE_TTL`), and
/// the `RUN --mount=type=cache` directories, kept under `CACHE` with the layer storage.
///
/// See buildah-build(1): `--layers`, `--cache-from`, `--cache-to`, `--cache-ttl`, and
/// `--mount type=cache`, whose host directory is `$TMPDIR/buildah-cache` (`/var/tmp` by default).
enum SharedCache {
    /// Where the `RUN --mount=type=cache` directories live, under `CACHE`: one directory per
    /// mount `id` (else per target path), as buildah names them.
    static func mounts(_ cache: URL) -> URL { cache.appendingPathComponent("mounts") }

    /// The environment that makes buildah keep its cache mounts in ``mounts(_:)``: `TMPDIR` is
    /// a directory of this run (buildah's temporary files go away with it), holding links named
    /// as buildah names its cache mount parent (1.28: `buildah-cache`; later versions add
    /// `-<uid>`) to the directory under `CACHE`.
    static func environment(cache: URL, scratch: URL) throws -> [String: String?] {
        let persistent = mounts(cache)
        let temporary = scratch.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: persistent, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        for name in ["buildah-cache", "buildah-cache-\(getuid())"] {
            try FileManager.default.createSymbolicLink(
                at: temporary.appendingPathComponent(name), withDestinationURL: persistent)
        }
        return ["TMPDIR": temporary.path]
    }

    /// buildah's options for `CACHE_REPOSITORY` and `CACHE_TTL` (`--layers` is always given).
    static func options(_ configuration: BuildConfiguration) -> [String] {
        var options: [String] = []
        if let repository = configuration.cacheRepository {
            options += ["--cache-from", repository.name, "--cache-to", repository.name]
        }
        if let ttl = configuration.cacheTTL { options += ["--cache-ttl", "\(Int(ttl.components.seconds))s"] }
        return options
    }

    /// Why the layers this build caches will not be reused under `CACHE_TTL`, or nil: buildah
    /// compares `CACHE_TTL` with a cached layer's creation time, which is the commit time of the
    /// build that made it (`--timestamp`, so the same inputs give the same image), not when it
    /// was built. (Which cached layers this build reuses depends on the builds that made them.)
    static func staleCommit(_ configuration: BuildConfiguration, commitTime: Int?, now: Date = Date()) -> String? {
        guard let ttl = configuration.cacheTTL, let commitTime else { return nil }
        let age = Int(now.timeIntervalSince1970) - commitTime
        guard age > Int(ttl.components.seconds) else { return nil }
        return
            "CACHE_TTL=\(Int(ttl.components.seconds))s: the commit is \(age / 3600) h old, and the layers this build caches are dated with the commit time (the image's created time), so no later build reuses them"
    }
}

extension BuildConfiguration {
    /// `CACHE_REPOSITORY` and `CACHE_TTL`, refused in one line when they cannot mean anything.
    mutating func readCacheSettings(_ environment: [String: String]) throws(ValidationError) {
        func given(_ variable: String) -> String? { environment[variable].flatMap { $0.isEmpty ? nil : $0 } }
        if let text = given("CACHE_REPOSITORY") {
            let repository: ImageReference
            do { repository = try ImageReference(text) } catch {
                throw ValidationError("CACHE_REPOSITORY: \(error)")
            }
            guard repository.tag == nil, repository.digest == nil else {
                throw ValidationError(
                    "CACHE_REPOSITORY=\(text): a repository without a tag or digest (buildah tags each cached step by its cache key); write \(repository.name)"
                )
            }
            for (variable, used) in [("TAG", tag), ("SKIP_IF_PUBLISHED", skipIfPublished)]
            where used?.name == repository.name {
                throw ValidationError(
                    "CACHE_REPOSITORY=\(text) is the \(variable) repository: buildah would add a tag per cached step beside the image's; use a repository of its own, such as \(repository.name)-cache"
                )
            }
            if builder == .assemble {
                throw ValidationError(
                    "CACHE_REPOSITORY with BUILDER=assemble: the assembler runs no step, so there is no layer to cache; use BUILDER=auto or buildah, or unset CACHE_REPOSITORY"
                )
            }
            cacheRepository = repository
        }
        if let text = given("CACHE_TTL") {
            let ttl = try Self.duration(text, "CACHE_TTL")
            guard ttl >= .seconds(1) else {
                throw ValidationError(
                    "CACHE_TTL=\(text): buildah reuses no cached layer at all with a zero TTL; give a duration such as 168h, or unset CACHE_TTL for no limit"
                )
            }
            cacheTTL = ttl
        }
    }
}
