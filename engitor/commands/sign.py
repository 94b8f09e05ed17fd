"""engitor sign IMAGE [--key K]: sign an image (Ed25519, minisign's format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engitor import store
from engitor.catalog import index
from engitor.catalog import sign as signing
from engitor.commands.common import say


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sign", help="sign an image",
                       description="Signs the image's SHA256SUMS (kernel, initrd, cmdline, "
                                   "manifest) with an Ed25519 key; the signature is kept in the "
                                   "image's folder. Without --key the home's key is used, made "
                                   "on first use.")
    p.add_argument("image", metavar="IMAGE|NAME")
    p.add_argument("--key", metavar="K", type=Path, help="secret key (minisign format)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path = args.key or signing.default_key()
    if args.key is None and not path.exists():
        pub = signing.write_key(signing.generate(), path)
        say(f"made a signing key: {path} (public: {pub})")
    image = store.resolve(args.image)
    sig = signing.sign(image, signing.read_secret(path), index.names_of(image))
    print(sig)
    return 0
