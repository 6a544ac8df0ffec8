import Console
import Foundation
import Spawn

/// Where one run keeps what must never reach an image or outlive the run: buildah's auth
/// file, its certificate directory, `registries.conf` and the `BUILDKIT_SECRETTEXT_*`
/// files. A 0700 directory in the temporary directory, never inside the context (a
/// `COPY .` would put it in a layer), removed when the run ends and on SIGINT or SIGTERM.
///
/// A run killed harder (SIGKILL, a lost container) leaves its directory behind; the next
/// run sweeps those whose process is gone (``PrivateDirectory``).
struct PrivateRunDirectory {
    static let prefix = "slipway-run."

    /// Runs `body` with a new private directory, outside `context`, removed afterwards.
    static func with<R>(outside context: URL, log: Log, environment: [String: String], _ body: (URL) throws -> R) throws
        -> R
    {
        let parent = try temporaryParent(outside: context, environment: environment)
        for left in PrivateDirectory.sweep(parent, prefix: prefix) {
            log.info("removed \(left.path), left by an earlier run that was killed")
        }
        do {
            return try PrivateDirectory.with(in: parent, prefix: prefix, body)
        } catch let error as SpawnError {
            throw BuildError(.privateDirectory, "the run's private directory: \(error)")
        }
    }

    /// `TMPDIR` (else `/tmp`), or `/tmp` when `TMPDIR` lies inside the context.
    static func temporaryParent(outside context: URL, environment: [String: String]) throws -> URL {
        var candidates: [URL] = []
        if let given = environment["TMPDIR"], !given.isEmpty { candidates.append(URL(fileURLWithPath: given)) }
        candidates.append(URL(fileURLWithPath: "/tmp"))
        for candidate in candidates where BuildConfiguration.path(candidate, within: context) == nil {
            return candidate
        }
        throw BuildError(
            .privateDirectory,
            "CONTEXT=\(context.path) holds the temporary directory (\(candidates.map(\.path).joined(separator: ", "))), where the run keeps its credentials out of the build: use a narrower CONTEXT or set TMPDIR outside it"
        )
    }

    /// Removes the auth files that runs before this directory existed left in `CACHE/run-*/`
    /// when they were killed: inside the default context, a `COPY .` would take them along.
    static func sweepLegacy(cache: URL, log: Log) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: cache.path) else { return }
        for name in names where name.hasPrefix("run-") {
            let file = cache.appendingPathComponent(name).appendingPathComponent("auth.json")
            if (try? FileManager.default.removeItem(at: file)) != nil {
                log.info("removed \(file.path), left by an earlier run that was killed")
            }
        }
    }
}
