import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `git http-backend` (git's own smart-HTTP server, as a CGI program) behind a tiny Python
/// HTTP server that demands Basic authentication, on a free loopback port. Every
/// repository under `root` is served at `/<name>`. Used by the git engine's credential tests
/// and the build lock's (`LOCK=git:` with `LOCK_USERNAME`/`LOCK_PASSWORD`).
public struct AuthenticatedGitServer: Sendable {
    public let baseURL: String
    public let pid: pid_t
    public let authLog: URL

    /// The user names of requests that passed authentication.
    public func authenticatedUsers() throws -> Set<String> {
        let text = (try? String(contentsOf: authLog, encoding: .utf8)) ?? ""
        return Set(
            text.split(separator: "\n").compactMap { line in
                line.hasPrefix("ok ") ? String(line.dropFirst(3)) : nil
            })
    }

    static let script = #"""
        import base64, http.server, os, socketserver, subprocess, sys, threading, time
        root, user, password, portfile, authlog, parent = sys.argv[1:7]
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        def watch_parent():
            while True:
                time.sleep(0.5)
                try:
                    os.kill(int(parent), 0)
                except OSError:
                    os._exit(0)
        threading.Thread(target=watch_parent, daemon=True).start()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass
            def handle_any(self):
                auth = self.headers.get("Authorization")
                with open(authlog, "a") as log:
                    if auth != expected:
                        log.write("denied\n")
                    else:
                        log.write("ok " + user + "\n")
                if auth != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="slipway"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                env = dict(os.environ)
                env.update({
                    "GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                    "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)), "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                })
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = out.partition(b"\n\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            do_GET = handle_any
            do_POST = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        server = Server(("127.0.0.1", 0), Handler)
        with open(portfile + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(portfile + ".tmp", portfile)
        server.serve_forever()
        """#
}

/// Runs `body` with an authenticated git server over `root`, killed afterwards.
public func withAuthenticatedGitServer<R>(
    root: URL, username: String, password: String, _ body: (AuthenticatedGitServer) async throws -> R
) async throws -> R {
    let directory = root.appendingPathComponent("http-server")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let script = directory.appendingPathComponent("server.py")
    try Data(AuthenticatedGitServer.script.utf8).write(to: script)
    let portFile = directory.appendingPathComponent("port")
    let authLog = directory.appendingPathComponent("auth.log")
    let started = try runProcess(
        "/bin/sh",
        [
            "-c", #"python3 "$@" >"$0" 2>&1 & echo $!"#, directory.appendingPathComponent("server.log").path,
            script.path, root.path, username, password, portFile.path, authLog.path, String(getpid()),
        ]
    ).checked()
    let pid = pid_t(started.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    defer { if pid > 0 { kill(pid, SIGKILL) } }
    let deadline = Date().addingTimeInterval(20)
    var port: String?
    while port == nil {
        port = try? String(contentsOf: portFile, encoding: .utf8)
        if port == nil {
            guard Date() < deadline else {
                let log =
                    (try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
                throw TestSupportError("the git HTTP server did not start: \(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
    let server = AuthenticatedGitServer(baseURL: "http://127.0.0.1:\(port!)", pid: pid, authLog: authLog)
    return try await body(server)
}
