#!/usr/bin/env python3
"""A small fake of the AWS endpoints Slipway's ECR login talks to, for Slipway's tests.

Standard library only, on one loopback port: STS `AssumeRole` (Query protocol), ECR
`GetAuthorizationToken` (JSON 1.1) and the EC2 instance metadata service (IMDSv2).
It CHECKS what it receives: every STS and ECR request's Signature Version 4 is recomputed
here, independently of Slipway's signer, from the secret this server knows for the
access key, and a temporary key must come with its session token; the instance
metadata service answers credentials only with a session token from `PUT /latest/api/token`.

Usage: aws_fake.py CONFIG.json

CONFIG keys:
  readyFile      the chosen port is written here once the socket listens
  logFile        one JSON line per request, written before the answer is sent
  region         the only region requests may be signed for
  keys           {"AKID...": "secret"}: the long-term access keys
  roles          ["arn:aws:iam::123456789012:role/name", ...]: roles anyone may assume
  instanceRole   name of the instance's role (IMDS), or null for an instance without one
  ecrPassword    the password inside every ECR authorization token (user "AWS")
  proxyEndpoint  the proxyEndpoint ECR reports
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.parse

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"


class State:
    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.temporary = {}      # access key id -> (secret, session token, principal)
        self.imds_tokens = set()

    def issue(self, principal):
        key = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = "FQoG" + secrets.token_urlsafe(60)
        with self.lock:
            self.temporary[key] = (secret, token, principal)
        return key, secret, token

    def secret_for(self, key):
        if key in self.config["keys"]:
            return self.config["keys"][key], None, "user"
        with self.lock:
            return self.temporary.get(key, (None, None, None))


def uri_encode(text):
    return urllib.parse.quote(text, safe="-_.~")


def canonical_query(query):
    pairs = []
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(name)), uri_encode(urllib.parse.unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def verify_signature(handler, body, service, state):
    """(access key id, None) when the request's SigV4 signature is right, else (key, reason)."""
    authorization = handler.headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return None, "MissingAuthenticationToken"
    fields = {}
    for part in authorization[len("AWS4-HMAC-SHA256 "):].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        key, day, region, scope_service, terminator = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
    except (KeyError, ValueError):
        return None, "IncompleteSignature"
    amz_date = handler.headers.get("X-Amz-Date", "")
    if terminator != "aws4_request" or scope_service != service or region != state.config["region"] or day != amz_date[:8]:
        return key, "SignatureDoesNotMatch"
    try:
        stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return key, "IncompleteSignature"
    if abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) > 900:
        return key, "SignatureDoesNotMatch"
    if "host" not in signed or "x-amz-date" not in signed:
        return key, "SignatureDoesNotMatch"
    secret, token, _ = state.secret_for(key)
    if secret is None:
        return key, "UnrecognizedClient"
    if token is not None and (handler.headers.get("X-Amz-Security-Token") != token or "x-amz-security-token" not in signed):
        return key, "UnrecognizedClient"
    path, _, query = handler.path.partition("?")
    canonical_headers = ""
    for name in signed:
        values = handler.headers.get_all(name) or []
        canonical_headers += name + ":" + ",".join(" ".join(v.split()) for v in values) + "\n"
    canonical = "\n".join([handler.command, path or "/", canonical_query(query), canonical_headers, ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return key, "SignatureDoesNotMatch"
    return key, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def log(self, entry):
        with self.state.lock:
            with open(self.state.config["logFile"], "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # --- EC2 instance metadata service (IMDSv2) ---

    def do_PUT(self):
        self.read_body()
        if self.path != "/latest/api/token":
            return self.answer(404, "not found", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self.log({"kind": "imds-token", "status": 400})
            return self.answer(400, "missing or bad X-aws-ec2-metadata-token-ttl-seconds", "text/plain")
        token = "imds-" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.imds_tokens.add(token)
        self.log({"kind": "imds-token", "status": 200})
        self.answer(200, token, "text/plain")

    def do_GET(self):
        prefix = "/latest/meta-data/iam/security-credentials/"
        if not self.path.startswith(prefix):
            return self.answer(404, "not found", "text/plain")
        token = self.headers.get("X-aws-ec2-metadata-token")
        with self.state.lock:
            valid = token in self.state.imds_tokens
        role = self.state.config.get("instanceRole")
        name = self.path[len(prefix):]
        kind = "imds-list" if not name else "imds-credentials"
        if not valid:
            self.log({"kind": kind, "imdsToken": "missing" if token is None else "invalid", "status": 401})
            return self.answer(401, "", "text/plain")
        if role is None or (name and name != role):
            self.log({"kind": kind, "imdsToken": "valid", "status": 404})
            return self.answer(404, "not found", "text/plain")
        if not name:
            self.log({"kind": kind, "imdsToken": "valid", "status": 200})
            return self.answer(200, role, "text/plain")
        key, secret, session = self.state.issue("instance-role:" + role)
        self.log({"kind": kind, "imdsToken": "valid", "status": 200, "issued": key})
        expiration = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.answer(200, json.dumps({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key, "SecretAccessKey": secret,
                                     "Token": session, "Expiration": expiration}))

    # --- STS and ECR ---

    def do_POST(self):
        body = self.read_body()
        if self.headers.get("X-Amz-Target") == ECR_TARGET:
            return self.ecr(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") == ["AssumeRole"]:
            return self.sts(body, form)
        self.log({"kind": "unknown", "path": self.path, "status": 400})
        self.answer(400, json.dumps({"__type": "UnknownOperationException"}))

    def ecr(self, body):
        key, problem = verify_signature(self, body, "ecr", self.state)
        entry = {"kind": "ecr", "accessKeyId": key, "sessionToken": "X-Amz-Security-Token" in self.headers,
                 "contentType": self.headers.get("Content-Type")}
        if problem is not None:
            entry.update(signature=problem, status=400)
            self.log(entry)
            messages = {
                "SignatureDoesNotMatch": ("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."),
                "UnrecognizedClient": ("UnrecognizedClientException", "The security token included in the request is invalid."),
            }
            kind, message = messages.get(problem, ("IncompleteSignatureException", problem))
            return self.answer(400, json.dumps({"__type": kind, "message": message}), "application/x-amz-json-1.1")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict) or self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            entry.update(signature="valid", status=400)
            self.log(entry)
            return self.answer(400, json.dumps({"__type": "SerializationException"}), "application/x-amz-json-1.1")
        entry.update(signature="valid", status=200, registryIds=request.get("registryIds"))
        self.log(entry)
        token = base64.b64encode(("AWS:" + self.state.config["ecrPassword"]).encode()).decode()
        self.answer(200, json.dumps({"authorizationData": [{
            "authorizationToken": token, "expiresAt": time.time() + 43200, "proxyEndpoint": self.state.config["proxyEndpoint"]}]}),
            "application/x-amz-json-1.1")

    def sts(self, body, form):
        key, problem = verify_signature(self, body, "sts", self.state)
        role = (form.get("RoleArn") or [""])[0]
        entry = {"kind": "sts", "accessKeyId": key, "roleArn": role, "sessionToken": "X-Amz-Security-Token" in self.headers,
                 "sessionName": (form.get("RoleSessionName") or [""])[0], "version": (form.get("Version") or [""])[0]}
        if problem is None and role not in self.state.config["roles"]:
            problem = "AccessDenied"
        if problem is not None:
            entry.update(signature="valid" if problem == "AccessDenied" else problem, status=403)
            self.log(entry)
            code = {"UnrecognizedClient": "InvalidClientTokenId"}.get(problem, problem)
            message = {"AccessDenied": f"User is not authorized to perform: sts:AssumeRole on resource: {role}",
                       "InvalidClientTokenId": "The security token included in the request is invalid.",
                       "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided."}.get(code, code)
            return self.answer(403, f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>", "text/xml")
        new_key, secret, token = self.state.issue("role:" + role)
        entry.update(signature="valid", status=200, issued=new_key)
        self.log(entry)
        expiration = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.answer(200, f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>{role}/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{new_key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>""", "text/xml")


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    Handler.state = State(config)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(config["readyFile"] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(config["readyFile"] + ".tmp", config["readyFile"])
    server.serve_forever()


if __name__ == "__main__":
    main()
