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

    /// True for transports that use an SSH private key.
    var usesSSH: Bool {
        let lowered = forGit.lowercased()
        if lowered.hasPrefix("ssh://") || lowered.hasPrefix("git+ssh://") || lowered.hasPrefix("ssh+git://") { return true }
        if lowered.contains("://") { return false }
        // scp-like syntax: `[user@]host:path` with no slash before the colon.
        guard let colon = forGit.firstIndex(of: ":") else { return false }
        return !forGit[..<colon].contains("/")
    }
}
