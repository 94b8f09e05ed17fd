"""engitor keygen [--key K]: make an Ed25519 signing key (minisign's format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engitor.catalog import sign


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="make a key to sign images with",
                       description="An Ed25519 key pair in minisign's format: KEY (secret, "
                                   "0600) and KEY with .pub (default: the home's keys/engitor.key).")
    p.add_argument("--key", metavar="K", type=Path, help="where to write the secret key")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path = args.key or sign.default_key()
    pub = sign.write_key(sign.generate(), path)
    print(f"secret key {path}\npublic key {pub}")
    return 0
