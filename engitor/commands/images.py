"""engitor images: list the store; engitor images rm NAME removes one."""

from __future__ import annotations

import argparse
import json
import time

from engitor import store


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("images", help="list built images")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rm", metavar="NAME|ID", action="append", default=[],
                   help="remove an image (by name, id or id prefix)")
    p.set_defaults(func=main)


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def main(args: argparse.Namespace) -> int:
    for ref in args.rm:
        image = store.resolve(ref)
        store.remove(image)
        print(f"removed {image.short}")
    if args.rm:
        return 0
    rows = []
    now = time.time()
    for names, image in store.listing():
        m = image.manifest
        rows.append({"names": names, "id": image.id, "size": image.size(),
                     "created": m.get("created", 0), "program": m.get("program", "")})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<24} {'ID':<12}  {'SIZE':>9}  {'CREATED':<10}  PROGRAM")
    for r in rows:
        name = ",".join(r["names"]) or "<none>"
        print(f"{name:<24} {r['id'][:12]}  {r['size'] / 2**20:>7.1f}MB  "
              f"{age(now - r['created']):<10}  {r['program']}")
    return 0
