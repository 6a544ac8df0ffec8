#!/usr/bin/env python3
"""An independent verifier of cosign signatures and attestations, for Slipway's tests.

Reads the registry over plain HTTP (the registry's v2 API, no Slipway code) and checks:
  sig: `sha256-<hex>.sig` of the image the reference names holds a simple-signing layer
       whose payload follows containers/image's `sigstoreSigned` rules (critical has exactly
       type/image/identity, type "cosign container image signature", docker-manifest-digest
       equal to the image's digest, docker-reference equal to --identity) and whose
       `dev.cosignproject.cosign/signature` annotation is an ECDSA-SHA256 signature of the
       payload's exact bytes by the public key.
  att: `sha256-<hex>.att` holds DSSE envelopes (payloadType application/vnd.in-toto+json)
       whose signature over the DSSE pre-authentication encoding verifies with the key and
       whose in-toto statement's subject is the image; prints each predicateType.

Usage: cosign_verify.py sig|att BASE_URL REPOSITORY REFERENCE PUBLIC_KEY.pem --identity REGISTRY/REPOSITORY
Exit 0 and "verified ..." on success; exit 1 and one line saying why otherwise.
Uses python3-cryptography (Debian) only.
"""

import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def fail(reason):
    print("rejected: " + reason)
    sys.exit(1)


def get(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def pae(payload_type, body):
    """DSSE's pre-authentication encoding, written here from the DSSE spec (protocol.md)."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(body), body)


def verify_der(key, signature_b64, data):
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def attached(base, repository, digest, suffix):
    tag = "sha256-%s.%s" % (digest.split(":", 1)[1], suffix)
    body = get("%s/v2/%s/manifests/%s" % (base, repository, tag), MANIFEST_TYPES)
    if body is None:
        fail("%s has no %s (%s:%s)" % (digest, "signature" if suffix == "sig" else "attestation", repository, tag))
    manifest = json.loads(body)
    layers = []
    for layer in manifest.get("layers", []):
        blob = get("%s/v2/%s/blobs/%s" % (base, repository, layer["digest"]))
        if blob is None or "sha256:" + hashlib.sha256(blob).hexdigest() != layer["digest"] or len(blob) != layer["size"]:
            fail("layer %s does not match its descriptor" % layer["digest"])
        layers.append((layer, blob))
    return layers


def check_payload(payload, digest, identity):
    document = json.loads(payload)
    critical = document.get("critical")
    if not isinstance(critical, dict) or set(critical) != {"type", "image", "identity"}:
        return "critical must have exactly type, image and identity"
    if critical["type"] != "cosign container image signature":
        return "wrong critical.type %r" % critical["type"]
    if document.get("optional") is not None and not isinstance(document["optional"], dict):
        return "optional is neither null nor an object"
    if critical["image"].get("docker-manifest-digest") != digest:
        return "payload signs %s, not %s" % (critical["image"].get("docker-manifest-digest"), digest)
    if critical["identity"].get("docker-reference") != identity:
        return "payload names %s, not %s" % (critical["identity"].get("docker-reference"), identity)
    return None


def main():
    if len(sys.argv) != 8 or sys.argv[6] != "--identity":
        print(__doc__)
        sys.exit(2)
    mode, base, repository, reference, key_file, _, identity = sys.argv[1:]
    with open(key_file, "rb") as handle:
        key = serialization.load_pem_public_key(handle.read())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        fail("the public key is not ECDSA P-256")
    manifest = get("%s/v2/%s/manifests/%s" % (base, repository, reference), MANIFEST_TYPES)
    if manifest is None:
        fail("%s:%s does not exist" % (repository, reference))
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

    if mode == "sig":
        reasons = []
        for layer, blob in attached(base, repository, digest, "sig"):
            if layer["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json":
                reasons.append("layer type " + layer["mediaType"])
                continue
            signature = (layer.get("annotations") or {}).get("dev.cosignproject.cosign/signature", "")
            if not verify_der(key, signature, blob):
                reasons.append("signature does not verify with the key")
                continue
            reason = check_payload(blob, digest, identity)
            if reason:
                reasons.append(reason)
                continue
            print("verified signature of %s as %s" % (digest, identity))
            return
        fail("; ".join(reasons) or "no layers")
    elif mode == "att":
        types = []
        for layer, blob in attached(base, repository, digest, "att"):
            if layer["mediaType"] != "application/vnd.dsse.envelope.v1+json":
                fail("layer type " + layer["mediaType"])
            envelope = json.loads(blob)
            if envelope["payloadType"] != "application/vnd.in-toto+json":
                fail("payloadType " + envelope["payloadType"])
            body = base64.b64decode(envelope["payload"])
            signed = pae(envelope["payloadType"], body)
            if not any(verify_der(key, s["sig"], signed) for s in envelope["signatures"]):
                fail("no envelope signature verifies with the key")
            statement = json.loads(body)
            if not any(s.get("digest", {}).get("sha256") == digest.split(":", 1)[1] for s in statement["subject"]):
                fail("statement is not about " + digest)
            if statement["predicateType"] != layer["annotations"].get("predicateType"):
                fail("predicateType annotation differs from the statement's")
            types.append(statement["predicateType"])
        print("verified attestations of %s: %s" % (digest, " ".join(types)))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
