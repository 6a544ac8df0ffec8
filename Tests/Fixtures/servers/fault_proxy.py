#!/usr/bin/env python3
"""An HTTP/1.1 reverse proxy that injects faults, for Slipway's tests.

Standard library only. It sits on a loopback port in front of a real registry and
streams bodies both ways in fixed-size chunks, so multi-gigabyte blobs never sit in
memory. Ordered rules decide, per request, whether to pass it through or to fail it.

Usage: fault_proxy.py CONFIG.json

CONFIG keys:
  readyFile   the chosen port is written here once the socket listens
  logFile     one JSON line per request, written before the answer is sent
  rulesFile   {"rules": [...]}, re-read whenever the file is replaced
  upstream    "http://127.0.0.1:PORT", or null to answer every request that no
              rule takes with 200 and `fixedBody` (a recorder for "the other host")
  fixedBody   body of the recorder's answers (default "ok")
  seed        seed of the random source used by rules with a `rate`

A rule:
  {"name": "...", "method": "GET" | null, "path": "<Python regex, re.search on the path>",
   "times": N | null, "rate": 0.0-1.0 | null, "action": {...}}
A rule matches when method and path match and it has not fired `times` times yet.
With `rate`, a matching request fires with that probability (capped by `times`).
The first rule that fires wins; the others are not consulted.

Actions:
  {"type": "status", "status": 429, "retryAfter": "1", "code": "TOOMANYREQUESTS",
   "message": "...", "headers": {...}}    answer with a registry-style error body
  {"type": "reset"}                       close the connection without an answer (RST)
  {"type": "truncate", "bytes": K}        pass through, but cut the body after K bytes
  {"type": "redirect", "baseURL": "http://localhost:PORT", "status": 307}
                                          redirect to the same path and query there
  {"type": "delay", "seconds": S}         wait, then pass through
  {"type": "throttle", "bytesPerSecond": N}
                                          pass through, moving the request body and the
                                          response body each at most N bytes a second (and
                                          with a small receive buffer, so a client sending
                                          an upload sees the pace, not the kernel's buffers)
  {"type": "dropHeaders", "names": [...]} pass through, removing these response headers
                                          (a registry that omits Docker-Content-Digest)
  {"type": "paginate", "pageSize": N}     answer GET .../tags/list from the upstream's full
                                          list, sorted, one page of `n` (or N) tags after
                                          `last`, with a Link rel="next" header as the spec
                                          describes. distribution 2.8.2 ignores `n` on tag
                                          lists, so this is the only way to test a client's
                                          pagination against its data.
"""

import http.client
import http.server
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from fixture_http import send_whole

CHUNK = 64 * 1024
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
}
DEFAULT_CODES = {
    401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED", 429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}


class Rules:
    """The rule list with per-rule fire counts; reloaded when the rules file changes."""

    def __init__(self, path, seed):
        self.path = path
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.stamp = None
        self.rules = []
        self.fired = []

    def _reload_if_changed(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self.stamp:
            return
        with open(self.path) as f:
            rules = json.load(f).get("rules", [])
        for rule in rules:
            rule["_regex"] = re.compile(rule.get("path") or "")
        self.stamp = stamp
        self.rules = rules
        self.fired = [0] * len(rules)

    def choose(self, method, path):
        """Return (index, rule) of the rule that fires for this request, or (None, None)."""
        with self.lock:
            self._reload_if_changed()
            for index, rule in enumerate(self.rules):
                if rule.get("method") and rule["method"].upper() != method:
                    continue
                if not rule["_regex"].search(path):
                    continue
                times = rule.get("times")
                if times is not None and self.fired[index] >= times:
                    continue
                rate = rule.get("rate")
                if rate is not None and self.random.random() >= rate:
                    continue
                self.fired[index] += 1
                return index, rule
            return None, None


class Pace:
    """Sleeps after each chunk so that bytes move at most `rate` a second (no limit when None)."""

    def __init__(self, rate):
        self.rate = rate
        self.start = time.monotonic()
        self.moved = 0

    def chunk_size(self):
        # About ten chunks a second keeps a throttled stream smooth.
        return CHUNK if not self.rate else max(1024, min(CHUNK, self.rate // 10))

    def after(self, count):
        if not self.rate:
            return
        self.moved += count
        wait = self.start + self.moved / self.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slipway-fault-proxy"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- request bodies -------------------------------------------------------

    def body_chunks(self, pace=None):
        """Yield the request body in chunks, whether it has a length or is chunked."""
        pace = pace or Pace(None)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(pace.chunk_size(), remaining))
                    if not data:
                        raise ConnectionError("client closed the request body early")
                    remaining -= len(data)
                    pace.after(len(data))
                    yield data
                self.rfile.readline(1024)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(pace.chunk_size(), remaining))
                if not data:
                    raise ConnectionError("client closed the request body early")
                remaining -= len(data)
                pace.after(len(data))
                yield data

    def has_body(self):
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower() or \
            int(self.headers.get("Content-Length") or 0) > 0

    def drain(self):
        for _ in self.body_chunks():
            pass

    # -- bookkeeping ----------------------------------------------------------

    def record(self, status, index, rule, action, **extra):
        split = urllib.parse.urlsplit(self.path)
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": split.path,
            "query": split.query,
            "host": self.headers.get("Host"),
            "authorization": self.headers.get("Authorization") is not None,
            "status": status,
            "rule": None if rule is None else (rule.get("name") or str(index)),
            "action": action,
        }
        entry.update(extra)
        line = json.dumps(entry, sort_keys=True)
        with self.server.log_lock:
            with open(self.server.config["logFile"], "a") as f:
                f.write(line + "\n")

    def send_small(self, status, headers, body):
        send_whole(self, status, body, headers)

    # -- the request ----------------------------------------------------------

    def serve(self):
        path = urllib.parse.urlsplit(self.path).path
        index, rule = self.server.rules.choose(self.command, path)
        action = (rule or {}).get("action") or {"type": "pass"}
        kind = action.get("type", "pass")

        if kind == "reset":
            self.record(None, index, rule, kind)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return

        if kind == "status":
            self.drain()
            status = int(action.get("status", 500))
            code = action.get("code") or DEFAULT_CODES.get(status, "UNKNOWN")
            message = action.get("message") or "injected by slipway fault proxy"
            body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
            headers = [("Content-Type", "application/json; charset=utf-8"),
                       ("Docker-Distribution-Api-Version", "registry/2.0")]
            if action.get("retryAfter") is not None:
                headers.append(("Retry-After", str(action["retryAfter"])))
            headers.extend((action.get("headers") or {}).items())
            self.record(status, index, rule, kind)
            self.send_small(status, headers, body)
            return

        if kind == "redirect":
            self.drain()
            status = int(action.get("status", 307))
            target = action["baseURL"].rstrip("/") + self.path
            self.record(status, index, rule, kind, location=target)
            self.send_small(status, [("Location", target)], b"")
            return

        if kind == "delay":
            time.sleep(float(action.get("seconds", 1)))

        self.rate = None
        if kind == "throttle":
            self.rate = max(1, int(action.get("bytesPerSecond", 1 << 20)))
            # A small receive buffer keeps the unread part of an upload in the client's
            # hands, where it can be counted as not sent yet.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

        if kind == "paginate" and self.server.config.get("upstream"):
            self.paginate(self.server.config["upstream"], index, rule, int(action.get("pageSize", 2)))
            return

        truncate_at = int(action["bytes"]) if kind == "truncate" else None
        self.dropped = {name.lower() for name in action.get("names", [])} if kind == "dropHeaders" else set()
        if kind not in ("truncate", "delay", "pass", "dropHeaders", "throttle"):
            kind = "pass"

        upstream = self.server.config.get("upstream")
        if not upstream:
            self.drain()
            self.record(200, index, rule, kind if rule else "record")
            self.send_small(200, [("Content-Type", "text/plain")],
                            self.server.config.get("fixedBody", "ok").encode())
            return
        self.forward(upstream, index, rule, kind, truncate_at)

    def forward(self, upstream, index, rule, kind, truncate_at):
        base = urllib.parse.urlsplit(upstream)
        conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=600)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", base.netloc)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "host":
                    conn.putheader(name, value)
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for data in self.body_chunks(Pace(self.rate)):
                if chunked:
                    conn.send(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    conn.send(data)
            if chunked:
                conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self.record(502, index, rule, kind, error=str(error))
            body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "upstream: %s" % error}]}).encode()
            self.close_connection = True
            self.send_small(502, [("Content-Type", "application/json")], body)
            conn.close()
            return

        try:
            self.relay(response, index, rule, kind, base, truncate_at)
        finally:
            conn.close()

    def relay(self, response, index, rule, kind, base, truncate_at):
        upstream_prefix = "%s://%s" % (base.scheme, base.netloc)
        own_prefix = "http://%s" % (self.headers.get("Host") or "%s:%d" % self.server.server_address)
        headers = []
        length = None
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in getattr(self, "dropped", set()):
                continue
            if lower == "content-length":
                length = value
            if lower == "location" and value.startswith(upstream_prefix):
                value = own_prefix + value[len(upstream_prefix):]
            headers.append((name, value))
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        use_chunks = length is None and not no_body

        self.record(response.status, index, rule, kind,
                    **({"truncatedAfter": truncate_at} if truncate_at is not None else {}))
        self.send_response(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        if use_chunks:
            self.send_header("Transfer-Encoding", "chunked")
        if truncate_at is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if no_body:
            return

        sent = 0
        pace = Pace(getattr(self, "rate", None))
        while True:
            data = response.read(pace.chunk_size())
            if not data:
                break
            if truncate_at is not None and sent + len(data) >= truncate_at:
                data = data[: truncate_at - sent]
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if use_chunks else data)
                self.wfile.flush()
                # Drop the connection mid-body: the client sees fewer bytes than announced.
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            sent += len(data)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if use_chunks else data)
            pace.after(len(data))
        if use_chunks:
            self.wfile.write(b"0\r\n\r\n")


    def paginate(self, upstream, index, rule, page_size):
        base = urllib.parse.urlsplit(upstream)
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=60)
        try:
            headers = {"Host": base.netloc}
            if self.headers.get("Authorization"):
                headers["Authorization"] = self.headers["Authorization"]
            conn.request("GET", split.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            status = response.status
        finally:
            conn.close()
        if status != 200:
            self.record(status, index, rule, "paginate")
            self.send_small(status, [("Content-Type", "application/json")], body)
            return
        listing = json.loads(body)
        tags = sorted(listing.get("tags") or [])
        size = int(query.get("n", [page_size])[0])
        last = query.get("last", [None])[0]
        remaining = [tag for tag in tags if last is None or tag > last]
        page = remaining[:size]
        answer = [("Content-Type", "application/json")]
        if len(remaining) > size:
            link = "%s?%s" % (split.path, urllib.parse.urlencode({"n": size, "last": page[-1]}))
            answer.append(("Link", '<%s>; rel="next"' % link))
        self.record(200, index, rule, "paginate")
        self.send_small(200, answer, json.dumps({"name": listing.get("name"), "tags": page}).encode())


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(config.get("port", 0))), Handler)
    server.daemon_threads = True
    server.config = config
    server.log_lock = threading.Lock()
    server.rules = Rules(config["rulesFile"], config.get("seed", 0))
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
