#!/usr/bin/env python3
"""Docker Hub, as far as a process behind an HTTPS proxy can tell.

An HTTP CONNECT proxy on loopback. A tunnel to registry-1.docker.io:443 is answered here:
TLS with a certificate for that name (signed by a test CA the client is told to trust),
then every request is forwarded to a real registry on loopback (plain HTTP). Tunnels to
any other host are refused with 403. It CHECKS what it receives by recording it:

  {"connect": "host:port"}                       each CONNECT
  {"method": ..., "path": ..., "user": ...}      each request inside the tunnel; user is the
                                                 basic-auth user name, "bearer", or null

Configuration (one JSON file, the only argument):
  readyFile  the chosen port is written here once the socket listens
  logFile    JSON lines as above
  cert, key  the server certificate and key for registry-1.docker.io
  upstream   plain-HTTP base URL of the registry to forward to
"""
import base64
import http.client
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import urllib.parse

HOST = "registry-1.docker.io:443"


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    upstream = urllib.parse.urlsplit(config["upstream"])
    log_lock = threading.Lock()

    def record(entry):
        with log_lock, open(config["logFile"], "a") as f:
            f.write(json.dumps(entry) + "\n")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config["cert"], config["key"])

    class Forwarder(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            authorization = self.headers.get("Authorization") or ""
            user = None
            if authorization.lower().startswith("basic "):
                try:
                    user = base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
                except Exception:
                    user = "unreadable"
            elif authorization.lower().startswith("bearer "):
                user = "bearer"
            record({"method": self.command, "path": self.path, "user": user})
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            # The registry builds upload Locations from these: they must lead back through the tunnel.
            headers["Host"] = "registry-1.docker.io"
            headers["X-Forwarded-Proto"] = "https"
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            connection.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    def tunnel(client):
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            target = line[1] if len(line) > 1 else ""
            record({"connect": target})
            if len(line) < 2 or line[0] != "CONNECT" or target != HOST:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            secured = context.wrap_socket(client, server_side=True)
            Forwarder(secured, ("127.0.0.1", 0), None)
        except Exception as error:  # a client that hangs up mid-handshake
            record({"error": str(error)})
        finally:
            try:
                client.close()
            except Exception:
                pass

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.replace(ready + ".tmp", ready)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=tunnel, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
