import Foundation

/// A repository URI split into what git may see in its arguments and what it may not.
///
/// `https://user:token@host/repo.git` becomes `https://host/repo.git` for git and for log
/// lines, while `user` and `token` travel to git through the credential helper (see
/// ``GitCredentials``). An ssh user (`ssh://git@host/…`, `git@host:repo`) is not a secret
/// and stays.
struct RemoteURL: Sendable, Equatable {
    /// What git is given: no password, and for http(s) no user either.
    let forGit: String
    /// What messages show: like ``forGit``.
    var display: String { forGit }
    /// The user from an http(s) URL, percent-decoded.
    let username: String?
    /// The password from an http(s) URL, percent-decoded.
    let password: String?

    init(_ uri: String) {
        let trimmed = uri.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = trimmed.range(of: "://") else {
            // scp-like (`git@host:path`) or a local path: nothing secret in either.
            forGit = trimmed
            username = nil
            password = nil
            return
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        let rest = trimmed[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@") else {
            forGit = trimmed
            username = nil
            password = nil
            return
        }
        let userinfo = authority[..<at]
        let host = authority[authority.index(after: at)...]
        let user: Substring
        let secret: Substring?
        if let colon = userinfo.firstIndex(of: ":") {
            user = userinfo[..<colon]
            secret = userinfo[userinfo.index(after: colon)...]
        } else {
            user = userinfo
            secret = nil
        }
        let decodedUser = String(user).removingPercentEncoding ?? String(user)
        let decodedSecret = secret.map { String($0).removingPercentEncoding ?? String($0) }
        if scheme == "http" || scheme == "https" {
            forGit = String(trimmed[..<schemeEnd.upperBound]) + host + rest[authorityEnd...]
            username = decodedUser.isEmpty ? nil : decodedUser
            password = decodedSecret
        } else {
            // Keep an ssh user; drop a password, which ssh would not use anyway.
            forGit = String(trimmed[..<schemeEnd.upperBound]) + user + "@" + host + rest[authorityEnd...]
            username = nil
            password = nil
        }
    }
}

/// The transports git may use for a source, and the time bounds on every git command.
///
/// Why a list: git reaches a `<transport>::<address>` URI (`fd::3`, `ext::<command>`) or an
/// unknown `scheme://` through a remote helper, and `ext::` runs any command. A source uses
/// https, http, ssh (`ssh://`, `user@host:path`), git or a local repository; nothing else is
/// accepted, and `GIT_ALLOW_PROTOCOL` keeps git itself to the same list wherever a URL
/// comes from (a submodule, an alternate, a redirect).
///
/// Why time bounds: a remote that accepts the connection and never answers otherwise
/// holds a check for ever. ssh and curl (https) have their own timeouts; `git://` has none,
/// so the runner ends any network command that makes no progress for ``stallTimeout``.
public enum GitTransport {
    /// `GIT_ALLOW_PROTOCOL`: the transports git may use.
    public static let allowedProtocols = "https:http:ssh:git:file"

    /// The schemes of `scheme://` URIs a source may use.
    static let allowedSchemes: Set<String> = ["https", "http", "ssh", "git+ssh", "ssh+git", "git", "file"]

    /// How long a git network command may make no progress: 120 s, or the whole seconds in
    /// `SLIPWAY_GIT_STALL_TIMEOUT` (for tests; Concourse sets no variables on a resource).
    public static var stallTimeout: Int {
        if let text = ProcessInfo.processInfo.environment["SLIPWAY_GIT_STALL_TIMEOUT"], let seconds = Int(text),
            seconds > 0
        {
            return seconds
        }
        return 120
    }

    /// ssh options: connecting and the server's first answer within 30 s (less when the
    /// stall bound is shorter); once connected, a keep-alive every quarter of the bound
    /// and four unanswered ones end the connection.
    static var sshOptions: [String] {
        let stall = stallTimeout
        return [
            "-o", "ConnectTimeout=\(min(30, stall))", "-o", "ServerAliveInterval=\(max(1, stall / 4))", "-o",
            "ServerAliveCountMax=4",
            "-o", "BatchMode=yes",
        ]
    }

    /// `-c` settings for https and http: a transfer slower than 1 byte/s for the whole
    /// bound is abandoned by curl.
    static var httpSettings: [String] {
        ["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=\(stallTimeout)"]
    }

    /// Why `uri` is refused, in one line, or nil when its transport is allowed.
    static func refusal(_ uri: String) -> String? {
        let trimmed = uri.trimmingCharacters(in: .whitespaces)
        let use = "use an https://, http://, ssh://, git:// or file:// URL, user@host:path, or a local path"
        // git's own rule (transport.c): a scheme-like name followed by `::` names a helper.
        var name = Substring(trimmed)
        if let first = name.first, first.isASCII, first.isLetter {
            let end =
                name.firstIndex { !($0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0))) } ?? name.endIndex
            if name[end...].hasPrefix("::") {
                name = name[..<end]
                return "git.uri uses git's remote-helper syntax (\(name)::…), which can run programs; \(use)"
            }
        }
        if let schemeEnd = trimmed.range(of: "://") {
            let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
            if !scheme.contains("/") && !allowedSchemes.contains(scheme) {
                return "git.uri scheme \(scheme):// is not a transport Slipway lets git use; \(use)"
            }
        }
        return nil
    }
}
