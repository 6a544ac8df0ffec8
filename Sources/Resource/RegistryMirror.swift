import Console
import Foundation
import HTTP
import OCI
import Registry

/// `source.registry_mirror`: a registry that `check` and `get` read Docker Hub images from
/// first, as registry-image does (`Source.Mirror` in its `types.go`).
///
/// Only a repository on Docker Hub is mirrored (registry-image's rule, also the Docker
/// CLI's, so one mirror can be set for every resource); any other registry is read
/// directly. The mirror is asked for the same path (`library/busybox` for `busybox`) with
/// its own `username` and `password` (else anonymous, or a Docker config entry for the
/// mirror's host), never the origin's; `insecure` and `ca_certs` apply to both. When the
/// mirror fails, or `check` finds nothing there, the origin is read instead. `put` always
/// pushes to the origin.
public struct RegistryMirror: Sendable {
    public var host: RegistryHost
    public var credentials: Credentials?

    static let keys = ["host", "username", "password"]

    init(_ object: InputObject) throws(InputError) {
        let text = try object.requiredString("host")
        do { host = try RegistryHost(text) } catch { throw object.invalid("host", "\(error)") }
        let username = try object.string("username").flatMap { $0.isEmpty ? nil : $0 }
        let password = try object.string("password").flatMap { $0.isEmpty ? nil : $0 }
        switch (username, password) {
        case (let user?, let secret?): credentials = .basic(username: user, password: secret)
        case (nil, nil): credentials = nil
        case (_?, nil): throw InputError("\(object.path).username is set but \(object.path).password is not")
        case (nil, _?): throw InputError("\(object.path).password is set but \(object.path).username is not")
        }
    }
}

extension Source {
    /// A client for the mirror when one is set and the repository is on Docker Hub. A mirror
    /// set for another registry is said to be unused, not ignored silently.
    func mirrorClient(log: Log, retry: RetryPolicy) throws -> RegistryClient? {
        guard let mirror else { return nil }
        guard registry.isDockerHub else {
            log.info("registry_mirror \(mirror.host) mirrors Docker Hub only; reading \(registry) directly")
            return nil
        }
        return try RegistryClient(
            host: mirror.host, credentials: mirror.credentials, insecure: insecure,
            caCertificates: caCertificates, retry: retry, log: log)
    }

    /// Runs a read through the mirror, then through the origin when the mirror failed or
    /// its answer `isMissing` (registry-image: an empty check, a failed download).
    func readThroughMirror<T>(
        log: Log, retry: RetryPolicy, isMissing: (T) -> Bool = { _ in false },
        _ read: (RegistryClient) throws -> T
    ) throws -> T {
        if let mirrorClient = try mirrorClient(log: log, retry: retry) {
            do {
                let answer = try read(mirrorClient)
                if !isMissing(answer) { return answer }
                log.info("the mirror \(mirrorClient.host) does not have \(repository); reading \(registry) instead")
            } catch {
                let line = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "failed"
                log.info(
                    "reading \(repository) from the mirror \(mirrorClient.host) failed (\(line)); reading \(registry) instead"
                )
            }
        }
        return try read(client(log: log, retry: retry))
    }
}
