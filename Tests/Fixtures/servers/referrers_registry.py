#!/usr/bin/env python3
"""A loopback front that gives a real registry the OCI 1.1 referrers API, for Slipway's tests.

Standard library only. distribution 2.8 (Debian's docker-registry) has no referrers API and
no referrers-capable registry runs here, so this front adds one: everything is passed to the
real registry underneath (bodies streamed in chunks), except

  PUT  /v2/<name>/manifests/<ref> with a `subject`: checked, passed on, recorded, and answered
       with `OCI-Subject: <subject digest>` (distribution spec v1.1, "Pushing Manifests with
       Subject"). Refused with 400 MANIFEST_INVALID unless: it is pushed by its own digest; it
       is an OCI image manifest (Content-Type and `mediaType`); it has an `artifactType`; its
       config is the empty descriptor; the subject exists in the registry with that size
       and media type.
  GET  /v2/<name>/referrers/<digest>[?artifactType=]: an OCI image index of the recorded
       referrers of <digest> (filtered, with `OCI-Filters-Applied: artifactType`), 200 even
       when there are none, 400 for a malformed digest ("Listing Referrers").
  DELETE /v2/<name>/manifests/<digest>: passed on; a deleted referrer is no longer listed.

Usage: referrers_registry.py CONFIG.json

CONFIG keys:
  readyFile     the chosen port is written here once the socket listens
  upstream      "http://127.0.0.1:PORT" of the real registry
  recordFile    JSON {"referrers": [...], "refused": [...]}, rewritten after each change:
                each referrer {"repository", "digest", "subject", "artifactType", "size",
                "mediaType"}, each refusal {"repository", "reason"}
"""

import hashlib
import http.client
import http.server
import json
import os
import re
import sys
import threading
import urllib.parse
from fixture_http import send_whole

CHUNK = 64 * 1024
MANIFEST_LIMIT = 4 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json",
         "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
MANIFEST_PATH = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
REFERRERS_PATH = re.compile(r"^/v2/(.+)/referrers/([^/]+)$")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slipway-referrers-front"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        split = urllib.parse.urlsplit(self.path)
        manifest = MANIFEST_PATH.match(split.path)
        referrers = REFERRERS_PATH.match(split.path)
        if self.command == "GET" and referrers:
            self.list_referrers(referrers.group(1), referrers.group(2), urllib.parse.parse_qs(split.query))
        elif self.command == "PUT" and manifest:
            self.put_manifest(manifest.group(1), manifest.group(2))
        elif self.command == "DELETE" and manifest:
            status = self.forward(body=None)
            if status in (200, 202):
                self.server.forget(manifest.group(1), manifest.group(2))
        else:
            self.forward(body=None)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- the referrers API ----------------------------------------------------

    def list_referrers(self, repository, digest, query):
        if not DIGEST.match(digest):
            self.error(400, "DIGEST_INVALID", "%s is not a sha256 digest" % digest)
            return
        wanted = query.get("artifactType", [None])[0]
        entries = []
        for record in self.server.snapshot()["referrers"]:
            if record["repository"] != repository or record["subject"] != digest:
                continue
            if wanted and record["artifactType"] != wanted:
                continue
            entries.append({"mediaType": record["mediaType"], "digest": record["digest"],
                            "size": record["size"], "artifactType": record["artifactType"]})
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        headers = [("Content-Type", OCI_INDEX)]
        if wanted:
            headers.append(("OCI-Filters-Applied", "artifactType"))
        self.answer(200, headers, body)

    def put_manifest(self, repository, reference):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MANIFEST_LIMIT or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.forward(body=None)
            return
        body = self.rfile.read(length)
        try:
            manifest = json.loads(body)
        except ValueError:
            manifest = None
        subject = manifest.get("subject") if isinstance(manifest, dict) else None
        if subject is None:
            self.forward(body=body)
            return
        reason = self.check(repository, reference, body, manifest, subject)
        if reason:
            self.server.refuse(repository, reason)
            self.error(400, "MANIFEST_INVALID", reason)
            return
        status = self.forward(body=body, extra=[("OCI-Subject", subject["digest"])])
        if status == 201:
            self.server.record({"repository": repository, "digest": reference, "subject": subject["digest"],
                                "artifactType": manifest["artifactType"], "size": len(body),
                                "mediaType": OCI_MANIFEST})

    def check(self, repository, reference, body, manifest, subject):
        """Why this manifest with a subject is refused, or None."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference != digest:
            return "a referrer must be pushed by its digest %s, not %s" % (digest, reference)
        if (self.headers.get("Content-Type") or "") != OCI_MANIFEST or manifest.get("mediaType") != OCI_MANIFEST:
            return "a referrer must be an OCI image manifest (Content-Type and mediaType %s)" % OCI_MANIFEST
        if not manifest.get("artifactType"):
            return "a referrer with the empty config must name its artifactType"
        config = manifest.get("config") or {}
        if any(config.get(key) != value for key, value in EMPTY.items()):
            return "the config is %r, not the empty descriptor" % config
        if not isinstance(subject, dict) or not DIGEST.match(str(subject.get("digest"))):
            return "the subject %r is not a descriptor with a sha256 digest" % subject
        status, headers = self.upstream_head(repository, subject["digest"])
        if status != 200:
            return "the subject %s is not in %s (HEAD answered %s)" % (subject["digest"], repository, status)
        if str(subject.get("size")) != headers.get("content-length") or subject.get("mediaType") != headers.get("content-type"):
            return "the subject descriptor (%s, %s bytes) is not the manifest's (%s, %s bytes)" % (
                subject.get("mediaType"), subject.get("size"), headers.get("content-type"), headers.get("content-length"))
        for layer in manifest.get("layers") or []:
            status, _ = self.upstream_head(repository, layer.get("digest"), kind="blobs")
            if status != 200:
                return "the layer %s is not in %s" % (layer.get("digest"), repository)
        return None

    def upstream_head(self, repository, digest, kind="manifests"):
        base = urllib.parse.urlsplit(self.server.config["upstream"])
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
        try:
            headers = {"Host": base.netloc, "Accept": ", ".join([
                OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.list.v2+json"])}
            if self.headers.get("Authorization"):
                headers["Authorization"] = self.headers["Authorization"]
            conn.request("HEAD", "/v2/%s/%s/%s" % (repository, kind, digest), headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, {name.lower(): value for name, value in response.getheaders()}
        finally:
            conn.close()

    # -- passing through ------------------------------------------------------

    def forward(self, body, extra=()):
        """Passes the request to the upstream (`body` when already read, else streamed);
        relays the answer with `extra` headers on success. Returns the upstream's status."""
        base = urllib.parse.urlsplit(self.server.config["upstream"])
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=600)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", base.netloc)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "content-length"):
                    conn.putheader(name, value)
            chunked = body is None and "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            elif chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif self.headers.get("Content-Length"):
                conn.putheader("Content-Length", self.headers["Content-Length"])
            conn.endheaders()
            if body is not None:
                conn.send(body)
            else:
                for data in self.body_chunks():
                    conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                if chunked:
                    conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            self.relay(response, base, extra if response.status in (200, 201) else ())
            return response.status
        finally:
            conn.close()

    def body_chunks(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        raise ConnectionError("client closed the request body early")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(1024)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise ConnectionError("client closed the request body early")
                remaining -= len(data)
                yield data

    def relay(self, response, base, extra):
        upstream_prefix = "%s://%s" % (base.scheme, base.netloc)
        own_prefix = "http://%s" % (self.headers.get("Host") or "%s:%d" % self.server.server_address)
        no_body = self.command == "HEAD" or response.status in (204, 304)
        self.send_response(response.status, response.reason)
        length = None
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in HOP_BY_HOP:
                continue
            if lower == "content-length":
                length = value
            if lower == "location" and value.startswith(upstream_prefix):
                value = own_prefix + value[len(upstream_prefix):]
            self.send_header(name, value)
        for name, value in extra:
            self.send_header(name, value)
        use_chunks = length is None and not no_body
        if use_chunks:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while True:
            data = response.read(CHUNK)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if use_chunks else data)
        if use_chunks:
            self.wfile.write(b"0\r\n\r\n")

    def error(self, status, code, message):
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self.answer(status, [("Content-Type", "application/json")], body)

    def answer(self, status, headers, body):
        send_whole(self, status, body, headers)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def setup_state(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.state = {"referrers": [], "refused": []}
        self.save()

    def save(self):
        path = self.config["recordFile"]
        with open(path + ".tmp", "w") as f:
            json.dump(self.state, f, sort_keys=True)
        os.replace(path + ".tmp", path)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.state))

    def record(self, entry):
        with self.lock:
            if entry not in self.state["referrers"]:
                self.state["referrers"].append(entry)
            self.save()

    def refuse(self, repository, reason):
        with self.lock:
            self.state["refused"].append({"repository": repository, "reason": reason})
            self.save()

    def forget(self, repository, digest):
        with self.lock:
            self.state["referrers"] = [r for r in self.state["referrers"]
                                       if not (r["repository"] == repository and r["digest"] == digest)]
            self.save()


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    server = Server(("127.0.0.1", int(config.get("port", 0))), Handler)
    server.setup_state(config)
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
