"""engitor rollback NAME [ID|~N]: point a name back at an earlier build."""

from __future__ import annotations

import argparse

from engitor import store
from engitor.catalog import history


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="point a name back at an earlier build",
                       description="~1 (the default) is the build before the current one, ~2 the "
                                   "one before that (see 'engitor history NAME'); an id works "
                                   "too. 'engitor run NAME' then boots it without a rebuild.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("to", metavar="ID|~N", nargs="?", help="where to go (default ~1)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    image = history.pick(args.name, args.to)
    store.tag(args.name, image, why="rollback")
    print(f"{args.name} -> {image.short}")
    return 0
