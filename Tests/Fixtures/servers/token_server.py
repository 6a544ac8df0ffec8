#!/usr/bin/env python3
"""A small bearer-token server for the distribution registry's `auth.token` mode.

Test fixture for Slipway, standard library only. Tokens are JWS (RS256) signed
with the `openssl` command line tool; the signing certificate travels in the
JOSE header's `x5c` so the registry can check it against its `rootcertbundle`.

Protocol: https://distribution.github.io/distribution/spec/auth/token/ (GET) and
https://distribution.github.io/distribution/spec/auth/oauth/ (POST, password grant).

Usage: token_server.py CONFIG.json   (the keys are read in `main` below)

Every request is logged as one JSON line to `logFile` before the answer is sent,
so a client that has its answer can already read the line.
"""

import base64
import datetime
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pem_to_der(pem_text):
    body = [line for line in pem_text.strip().splitlines() if not line.startswith("-----")]
    return base64.b64decode("".join(body))


def parse_scope(scope):
    """`repository:some/name:pull,push` -> (type, name, [actions]).

    The name may itself hold a colon (a registry host with a port), so the type is
    cut at the first colon and the actions at the last one.
    """
    head, sep, actions = scope.rpartition(":")
    if not sep:
        return None
    rtype, sep, name = head.partition(":")
    if not sep or not rtype or not name:
        return None
    return rtype, name, [a for a in actions.split(",") if a]


class TokenState:
    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.issued = 0
        with open(config["certificateFile"]) as f:
            self.x5c = [base64.b64encode(pem_to_der(f.read())).decode("ascii")]

    def next_token_is_bad(self):
        with self.lock:
            self.issued += 1
            return self.issued <= int(self.config.get("rejectFirst", 0))

    def log(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            with open(self.config["logFile"], "a") as f:
                f.write(line + "\n")
                f.flush()

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.config["keyFile"]],
            input=signing_input.encode("ascii"), stdout=subprocess.PIPE, check=True,
        ).stdout
        return signing_input + "." + b64url(signature)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slipway-token-server"

    def log_message(self, fmt, *args):  # keep stderr quiet; the JSON log is the record
        pass

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        self.handle_token(query, self.basic_credentials())

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
        grant = (form.get("grant_type") or [""])[0]
        if grant == "password":
            creds = ((form.get("username") or [""])[0], (form.get("password") or [""])[0])
        elif grant == "refresh_token":
            token = (form.get("refresh_token") or [""])[0]
            creds = None
            if token.startswith("refresh:"):
                creds = (token[len("refresh:"):], self.server.state.config["password"])
            elif token:
                creds = ("", "")  # an unknown refresh token: invalid
        else:
            creds = self.basic_credentials()
        self.handle_token(form, creds, post_grant=grant or None)

    def basic_credentials(self):
        header = self.headers.get("Authorization") or ""
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except Exception:
            return ("", "")
        return (user, password)

    def handle_token(self, query, creds, post_grant=None):
        state = self.server.state
        config = state.config
        service = (query.get("service") or [None])[0]
        scopes = []
        for value in query.get("scope", []):
            scopes.extend(s for s in value.split(" ") if s)

        if creds is None:
            credentials = "none"
        elif creds == (config["username"], config["password"]):
            credentials = "valid"
        else:
            credentials = "invalid"

        entry = {
            "time": time.time(),
            "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "service": service,
            "scopes": scopes,
            "credentials": credentials,
            "username": creds[0] if creds else None,
            "grantType": post_grant,
        }

        if credentials == "invalid":
            entry.update(status=401, granted=[], expired=False)
            state.log(entry)
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("WWW-Authenticate", 'Basic realm="slipway-token-server"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return

        allowed = config.get("grantedActions") if credentials == "valid" else config.get("anonymousActions", [])
        access = []
        granted = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            rtype, name, actions = parsed
            actions = [a for a in actions if allowed is None or a in allowed]
            access.append({"type": rtype, "name": name, "actions": actions})
            granted.append("%s:%s:%s" % (rtype, name, ",".join(actions)))

        now = int(time.time())
        expires_in = int(config.get("expiresIn", 300))
        bad = state.next_token_is_bad()
        if bad:
            # Far enough in the past to be beyond the registry's clock leeway (60 s in 2.8).
            exp, nbf = now - 3600, now - 7200
        else:
            exp, nbf = now + expires_in, now - 10
        claims = {
            "iss": config["issuer"],
            "sub": creds[0] if credentials == "valid" else "",
            "aud": service if service is not None else config["service"],
            "exp": exp,
            "nbf": nbf,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = state.sign(claims)
        answer = {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        offline = (query.get("offline_token") or [""])[0] == "true"
        if credentials == "valid" and (offline or post_grant == "password"):
            answer["refresh_token"] = "refresh:" + creds[0]

        entry.update(status=200, granted=granted, expired=bad)
        state.log(entry)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(config.get("port", 0))), Handler)
    server.daemon_threads = True
    server.state = TokenState(config)
    if config.get("tlsCertificateFile"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config["tlsCertificateFile"], config["tlsKeyFile"])
        # The handshake happens on the first read, in the request's own thread, so one
        # stalled client cannot block accept() for everyone.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    port = server.server_address[1]
    ready = config["readyFile"]
    with open(ready + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(ready + ".tmp", ready)  # atomic: the reader never sees a half-written port
    server.serve_forever()


if __name__ == "__main__":
    main()
