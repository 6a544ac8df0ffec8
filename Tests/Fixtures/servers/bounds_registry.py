#!/usr/bin/env python3
"""A registry that never ends, or sends its token realm over plain HTTP, for Slipway's
tests of the registry client's bounds. Standard library only.

What no real registry does, each chosen by CONFIG:

  tags      "endless"  every tag page holds `pageSize` new tags and links to the next page
            "loop"     every tag page links back to the first page
            "elsewhere" the first page (`["1.0.0"]`) links to its next page on the realm's
                       listener (another origin), which answers `["2.0.0"]`
  referrers "endless"  every referrers page (an OCI index) holds `pageSize` new
                       descriptors and links to the next page
            "loop"     every referrers page links back to the first page
  trickle   "manifest" HEAD of a manifest answers 200 without a digest (so a client asks
                       with GET), and GET sends the manifest's bytes at `bytesPerSecond`
            "blob"     manifests are served whole; the config blob goes at `bytesPerSecond`
  realm     the registry (https with `certificateFile`/`keyFile`) challenges for a Bearer
            token at http://REALMHOST:PORT/token, a second, plain-HTTP listener on
            `realmHost`; its port goes to `realmPortFile`. It answers every request with a
            token and logs whether the request carried `Authorization`.

Manifests (any tag) are one OCI manifest whose config blob is `CONFIG` below; tags/list
is one page `["latest"]` unless `tags` says otherwise.

Usage: bounds_registry.py CONFIG.json
CONFIG keys: readyFile (the registry's port is written there), logFile (one JSON line per
request, written when the request arrives: listener, method, path, authorization), and
the keys above.

The server exits when its parent process dies, so a crashed test leaves nothing behind.
"""

import hashlib
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from fixture_http import send_whole

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": len(CONFIG)},
    "layers": [],
}, separators=(",", ":")).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
TOKEN = "bounds-registry-token"


class Registry(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slipway-bounds-registry"
    listener = "registry"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        entry = {"time": time.time(), "listener": self.listener, "method": self.command,
                 "path": self.path.split("?")[0], "authorization": self.headers.get("Authorization") is not None}
        with self.server.log_lock:
            with open(self.server.config["logFile"], "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def answer(self, status, body=b"", headers=()):
        send_whole(self, status, body, headers)

    def trickle(self, body, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        rate = max(1, int(self.server.config.get("bytesPerSecond", 2)))
        try:
            for start in range(0, len(body), rate):
                self.wfile.write(body[start:start + rate])
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    def do_GET(self):
        self.record()
        config = self.server.config
        if config.get("basicChallenge") and not self.headers.get("Authorization"):
            # Asks for Basic credentials: a client that has some for another host must not send them.
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", 'Basic realm="bounds-registry"')])
            return
        if config.get("realmPort") and self.headers.get("Authorization") != "Bearer " + TOKEN:
            realm = "http://%s:%d/token" % (config["realmHost"], config["realmPort"])
            challenge = 'Bearer realm="%s",service="bounds-registry"' % realm
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", challenge)])
            return
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path == "/v2/":
            self.answer(200, b"{}")
        elif "/referrers/" in path and config.get("referrers"):
            self.referrers(path, urllib.parse.parse_qs(url.query))
        elif path.endswith("/tags/list"):
            self.tags(path, urllib.parse.parse_qs(url.query))
        elif "/manifests/" in path:
            if config.get("trickle") == "manifest":
                if self.command == "HEAD":
                    self.answer(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
                else:
                    self.trickle(MANIFEST, "application/vnd.oci.image.manifest.v1+json")
            else:
                self.answer(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                                            ("Docker-Content-Digest", MANIFEST_DIGEST)])
        elif path.endswith("/blobs/" + CONFIG_DIGEST):
            if config.get("trickle") == "blob" and self.command == "GET":
                self.trickle(CONFIG, "application/octet-stream")
            else:
                self.answer(200, CONFIG, [("Docker-Content-Digest", CONFIG_DIGEST)])
        else:
            self.answer(404, b'{"errors":[{"code":"NOT_FOUND"}]}')

    do_HEAD = do_GET

    def referrers(self, path, query):
        mode = self.server.config["referrers"]
        size = int(self.server.config.get("pageSize", 100))
        page = int(query.get("page", ["0"])[0]) if mode == "endless" else 0
        manifests = [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100,
                      "digest": "sha256:" + hashlib.sha256(b"%d" % (page * size + i)).hexdigest(),
                      "artifactType": "application/vnd.slipway.test"} for i in range(size)]
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": manifests}).encode()
        nxt = "%s?page=%d" % (path, page + 1 if mode == "endless" else 0)
        self.answer(200, body, [("Content-Type", "application/vnd.oci.image.index.v1+json"), ("Link", '<%s>; rel="next"' % nxt)])

    def tags(self, path, query):
        config = self.server.config
        name = path[len("/v2/"):-len("/tags/list")]
        mode = config.get("tags")
        if mode == "elsewhere":
            nxt = "http://%s:%d/v2/%s/tags/list?last=1.0.0" % (config["realmHost"], config["realmPort"], name)
            self.answer(200, json.dumps({"name": name, "tags": ["1.0.0"]}).encode(),
                        [("Content-Type", "application/json"), ("Link", '<%s>; rel="next"' % nxt)])
            return
        if mode not in ("endless", "loop"):
            self.answer(200, json.dumps({"name": name, "tags": ["latest"]}).encode())
            return
        size = int(config.get("pageSize", 100))
        time.sleep(float(config.get("pageDelay", 0)))  # each page well within the request deadline
        page = int(query.get("last", ["t-0"])[0].split("-")[1]) // size if mode == "endless" else 0
        names = ["t-%d" % (page * size + i + 1) for i in range(size)]
        nxt = "/v2/%s/tags/list?n=%d&last=%s" % (name, size, names[-1] if mode == "endless" else "t-0")
        body = json.dumps({"name": name, "tags": names}).encode()
        self.answer(200, body, [("Content-Type", "application/json"), ("Link", '<%s>; rel="next"' % nxt)])


class Realm(Registry):
    listener = "realm"

    def do_GET(self):
        self.record()
        if self.path.split("?")[0].endswith("/tags/list"):
            self.answer(200, json.dumps({"tags": ["2.0.0"]}).encode(), [("Content-Type", "application/json")])
            return
        self.answer(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(), [("Content-Type", "application/json")])

    do_POST = do_HEAD = do_GET


def watch_parent(parent):
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


def serve(server, config):
    server.daemon_threads = True
    server.config = config
    server.log_lock = LOG_LOCK
    threading.Thread(target=server.serve_forever, daemon=True).start()


LOG_LOCK = threading.Lock()


def main():
    # A child of a test's worker thread inherits its blocked signals; take SIGTERM back.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    with open(sys.argv[1]) as f:
        config = json.load(f)
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    if config.get("realmHost"):
        realm = http.server.ThreadingHTTPServer((config["realmHost"], 0), Realm)
        config["realmPort"] = realm.server_address[1]
        serve(realm, config)
        with open(config["realmPortFile"], "w") as f:
            f.write(str(config["realmPort"]))
    registry = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    if config.get("certificateFile"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config["certificateFile"], config["keyFile"])
        registry.socket = context.wrap_socket(registry.socket, server_side=True)
    serve(registry, config)
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(registry.server_address[1]))
    os.replace(ready + ".tmp", ready)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
