#!/usr/bin/env python3
"""Writes a PKCS#8 private key in cosign's encrypted key format, independently of Slipway.

usage: cosign_encrypt_key.py PKCS8_PEM PASSWORD OUT [--label LABEL] [--n N]

The format is sigstore's `encrypted` package (go-securesystemslib), as `cosign
generate-key-pair` writes it: a PEM block whose body is the JSON
{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
"nacl/secretbox", "nonce"}, "ciphertext"}, byte strings in standard base64; the secretbox key
is scrypt(password, salt, N, r, p, 32) and the plaintext is the key's PKCS#8 DER. scrypt is
Python's hashlib (OpenSSL), secretbox is PyNaCl (libsodium).
"""
import argparse
import base64
import hashlib
import json
import os

import nacl.secret


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pkcs8")
    parser.add_argument("password")
    parser.add_argument("out")
    parser.add_argument("--label", default="ENCRYPTED SIGSTORE PRIVATE KEY")
    parser.add_argument("--n", type=int, default=65536)  # cosign's standard parameters: N=2^16, r=8, p=1
    args = parser.parse_args()

    with open(args.pkcs8) as f:
        lines = [line.strip() for line in f if line.strip()]
    if lines[0] != "-----BEGIN PRIVATE KEY-----" or lines[-1] != "-----END PRIVATE KEY-----":
        raise SystemExit("expected a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)")
    der = base64.b64decode("".join(lines[1:-1]))

    n, r, p = args.n, 8, 1
    salt, nonce = os.urandom(32), os.urandom(24)
    key = hashlib.scrypt(args.password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 << 20, dklen=32)
    box = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext  # tag, then ciphertext
    body = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(box).decode(),
    }).encode()
    encoded = base64.b64encode(body).decode()
    with open(args.out, "w") as f:
        f.write(f"-----BEGIN {args.label}-----\n")
        for i in range(0, len(encoded), 64):
            f.write(encoded[i:i + 64] + "\n")
        f.write(f"-----END {args.label}-----\n")


if __name__ == "__main__":
    main()
