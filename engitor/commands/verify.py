"""engitor verify IMAGE [--pub P]: check an image against its signature."""

from __future__ import annotations

import argparse
from pathlib import Path

from engitor import store
from engitor.catalog import sign as signing
from engitor.errors import UserError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check an image's signature",
                       description="Exit 0 when the image is signed by the key and unchanged, "
                                   "2 otherwise.")
    p.add_argument("image", metavar="IMAGE|NAME")
    p.add_argument("--pub", metavar="P", type=Path,
                   help="public key (default: the home's keys/engitor.pub)")
    p.set_defaults(func=main)


def public_key(path: Path | None) -> signing.Key:
    path = path or signing.default_key().with_suffix(".pub")
    if not path.is_file():
        raise UserError(f"no public key at {path}", hint="give one with --pub")
    return signing.read_public(path)


def check(image: store.StoredImage, pub: Path | None) -> str:
    return signing.verify(image, public_key(pub))


def main(args: argparse.Namespace) -> int:
    image = store.resolve(args.image)
    trusted = check(image, args.pub)
    print(f"image {image.short}: good signature ({trusted})")
    return 0
