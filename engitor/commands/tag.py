"""engitor tag IMAGE NAME: give an image a (new) name."""

from __future__ import annotations

import argparse

from engitor import store
from engitor.errors import UserError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="name an image", description="Point NAME at IMAGE (a name, "
                       "id or id prefix); the move is kept in NAME's history.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=main)


def check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "~" in name or len(name) > 128:
        raise UserError(f"{name!r} is not a valid image name",
                        hint="letters, digits, '.', '-' and '_', not starting with '.'")
    return name


def main(args: argparse.Namespace) -> int:
    image = store.resolve(args.image)
    store.tag(check_name(args.name), image, why="tag")
    print(f"{args.name} -> {image.short}")
    return 0
