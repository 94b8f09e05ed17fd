"""engitor diff A B: files added, removed and changed, and package versions, A to B."""

from __future__ import annotations

import argparse
import json

from engitor import store
from engitor.catalog import diff, index


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="how two images differ",
                       description="Files added (A), removed (D) and changed (M) with their "
                                   "sizes, and Debian package versions, from A to B.")
    p.add_argument("a", metavar="A", help="image name, id or id prefix; NAME~N for a past build")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def resolve(ref: str) -> store.StoredImage:
    """A name, an id, or NAME~N (the name's Nth build back, as history numbers them)."""
    name, sep, n = ref.rpartition("~")
    if sep and name and n.isdigit():
        from engitor.catalog import history

        return history.pick(name, f"~{n}")
    return store.resolve(ref)


def main(args: argparse.Namespace) -> int:
    a, b = resolve(args.a), resolve(args.b)
    ma, mb = a.manifest, b.manifest
    changes = diff.files(index.files(a, ma), index.files(b, mb))
    pkgs = diff.packages(ma.get("packages"), mb.get("packages"))
    if args.json:
        print(json.dumps({"a": a.id, "b": b.id,
                          "files": [vars(c) for c in changes],
                          "packages": [vars(p) for p in pkgs]}, indent=2))
        return 0
    print("\n".join(diff.stat_lines(changes, pkgs)))
    return 0
