#!/usr/bin/env python3
"""A small fake of Azure managed identity and of an ACR's token exchange, for Slipway's tests.

Standard library only, on one loopback port:
  GET  /metadata/identity/oauth2/token   the instance metadata service's managed identity
                                         endpoint: needs `Metadata: true`, an api-version, the
                                         expected resource, and `client_id` when configured
  POST /oauth2/exchange                  ACR's exchange of an Entra ID access token for a
                                         refresh token: needs grant_type=access_token, the
                                         token IMDS issued, service = this host, the tenant
  anything else                          passed to `upstream`, a real registry (whose htpasswd
                                         user is the null GUID with the refresh token as password)

Every request is logged as one JSON line to `logFile` before the answer is sent.

Usage: azure_fake.py CONFIG.json
CONFIG keys: readyFile, logFile, upstream ("http://127.0.0.1:PORT"), accessToken,
refreshToken, resource, clientId (or null: any or none), tenant.
"""

import http.client
import http.server
import json
import os
import sys
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "content-length"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    config = None
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def log(self, entry):
        with self.lock:
            with open(self.config["logFile"], "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def route(self):
        body = self.read_body()
        path, _, query = self.path.partition("?")
        if path == "/metadata/identity/oauth2/token" and self.command == "GET":
            return self.identity(urllib.parse.parse_qs(query))
        if path == "/oauth2/exchange" and self.command == "POST":
            return self.exchange(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        self.proxy(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = route

    def identity(self, query):
        entry = {"kind": "imds", "metadataHeader": self.headers.get("Metadata"), "resource": (query.get("resource") or [None])[0],
                 "clientId": (query.get("client_id") or [None])[0], "apiVersion": (query.get("api-version") or [None])[0]}
        problem = None
        if self.headers.get("Metadata") != "true":
            problem = "Required metadata header not specified"
        elif not entry["apiVersion"]:
            problem = "Required query variable 'api-version' is missing"
        elif entry["resource"] != self.config["resource"]:
            problem = "resource is not the expected one"
        elif self.config.get("clientId") is not None and entry["clientId"] != self.config["clientId"]:
            problem = "Identity not found"
        entry["status"] = 400 if problem else 200
        self.log(entry)
        if problem:
            return self.answer(400, json.dumps({"error": "invalid_request", "error_description": problem}))
        self.answer(200, json.dumps({"access_token": self.config["accessToken"], "expires_in": "3599", "token_type": "Bearer",
                                     "resource": entry["resource"]}))

    def exchange(self, form):
        value = lambda name: (form.get(name) or [None])[0]
        entry = {"kind": "exchange", "grantType": value("grant_type"), "service": value("service"), "tenant": value("tenant"),
                 "accessTokenValid": value("access_token") == self.config["accessToken"], "host": self.headers.get("Host")}
        ok = (entry["grantType"] == "access_token" and entry["accessTokenValid"] and entry["service"] == self.headers.get("Host")
              and entry["tenant"] == self.config["tenant"])
        entry["status"] = 200 if ok else 401
        self.log(entry)
        if not ok:
            return self.answer(401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "exchange refused"}]}))
        self.answer(200, json.dumps({"refresh_token": self.config["refreshToken"]}))

    def proxy(self, body):
        upstream = urllib.parse.urlsplit(self.config["upstream"])
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.log({"kind": "proxy", "method": self.command, "path": self.path.split("?")[0], "status": response.status,
                  "authorization": (self.headers.get("Authorization") or "").split(" ")[0] or None})
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        connection.close()


def main():
    with open(sys.argv[1]) as f:
        Handler.config = json.load(f)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready = Handler.config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(ready + ".tmp", ready)
    server.serve_forever()


if __name__ == "__main__":
    main()
