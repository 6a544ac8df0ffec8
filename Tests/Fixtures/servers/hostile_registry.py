#!/usr/bin/env python3
"""A registry that lies, for Slipway's hostile-input tests.

Standard library only. It serves one OCI image layout read-only over the distribution
API (`/v2/`, manifests by tag or digest, tag lists, blobs) and can misbehave on chosen
blobs in ways a real registry never does, so a client's defences can be tested:

  endless      200 with no Content-Length (the body ends when the connection closes),
               then the blob's bytes followed by zeros, forever
  endless-big  the same, announcing `Content-Length: 2**40`

Usage: hostile_registry.py CONFIG.json

CONFIG keys:
  readyFile   the chosen port is written here once the socket listens
  logFile     one JSON line per request, written once the answer is over: method, path,
              status, and for blobs the body bytes sent before the client went away
  layout      an OCI image layout directory whose blobs are served
  tags        {"name": "sha256:<manifest digest>"}
  blobs       {"sha256:<digest>": "endless" | "endless-big"}

The server exits when its parent process dies, so a crashed test leaves nothing behind.
"""

import http.server
import json
import os
import re
import signal
import sys
import threading
import time
from fixture_http import send_whole

CHUNK = 64 * 1024
NAME = r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
MANIFEST = re.compile(r"^/v2/" + NAME + r"/manifests/(?P<reference>[^/]+)$")
BLOB = re.compile(r"^/v2/" + NAME + r"/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
TAGS = re.compile(r"^/v2/" + NAME + r"/tags/list$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slipway-hostile-registry"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.serve()

    do_HEAD = do_GET

    def do_POST(self):
        self.answer(405, b'{"errors":[{"code":"UNSUPPORTED","message":"read-only"}]}')

    do_PUT = do_PATCH = do_DELETE = do_POST

    def record(self, status, **extra):
        entry = {"time": time.time(), "method": self.command, "path": self.path.split("?")[0], "status": status}
        entry.update(extra)
        with self.server.log_lock:
            with open(self.server.config["logFile"], "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def answer(self, status, body, headers=()):
        self.record(status)
        send_whole(self, status, body, headers)

    def blob_file(self, digest):
        path = os.path.join(self.server.config["layout"], "blobs", "sha256", digest.split(":", 1)[1])
        return path if os.path.isfile(path) else None

    def serve(self):
        path = self.path.split("?")[0]
        config = self.server.config
        unknown = b'{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}'
        if path in ("/v2/", "/v2"):
            self.answer(200, b"{}", [("Content-Type", "application/json")])
            return
        match = TAGS.match(path)
        if match:
            body = json.dumps({"name": match["name"], "tags": sorted(config.get("tags", {}))}).encode()
            self.answer(200, body, [("Content-Type", "application/json")])
            return
        match = MANIFEST.match(path)
        if match:
            reference = match["reference"]
            digest = config.get("tags", {}).get(reference, reference)
            file = self.blob_file(digest) if digest.startswith("sha256:") else None
            if file is None:
                self.answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such manifest"}]}')
                return
            with open(file, "rb") as f:
                body = f.read()
            media_type = json.loads(body).get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
            self.answer(200, body, [("Content-Type", media_type), ("Docker-Content-Digest", digest)])
            return
        match = BLOB.match(path)
        if match:
            digest = match["digest"]
            file = self.blob_file(digest)
            if file is None:
                self.answer(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no such blob"}]}')
                return
            behaviour = config.get("blobs", {}).get(digest)
            if behaviour in ("endless", "endless-big"):
                self.endless(file, announce=(1 << 40) if behaviour == "endless-big" else None)
                return
            with open(file, "rb") as f:
                body = f.read()
            self.answer(200, body, [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest)])
            return
        self.answer(404, unknown)

    def endless(self, file, announce):
        """The blob's bytes, then zeros until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if announce is not None:
            self.send_header("Content-Length", str(announce))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            self.record(200)
            return
        sent = 0
        with open(file, "rb") as f:
            head = f.read()
        zeros = bytes(CHUNK)
        started = time.time()
        try:
            self.wfile.write(head)
            sent += len(head)
            # A bound so that a client that never stops reading cannot keep this server
            # busy forever: 60 s or 64 GiB, far beyond what any test waits for.
            while time.time() - started < 60 and sent < (64 << 30):
                self.wfile.write(zeros)
                sent += len(zeros)
            outcome = "server gave up"
        except (BrokenPipeError, ConnectionResetError, OSError):
            outcome = "client hung up"
        self.record(200, bytesSent=sent, outcome=outcome, seconds=round(time.time() - started, 3))


def watch_parent(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def main():
    # A child of a test's worker thread inherits its blocked signals; take SIGTERM back.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    with open(sys.argv[1]) as f:
        config = json.load(f)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.config = config
    server.log_lock = threading.Lock()
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
