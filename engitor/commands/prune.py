"""engitor prune: remove unreferenced images, old caches and dead staging folders."""

from __future__ import annotations

import argparse
import re

from engitor import reflog
from engitor.catalog import prune
from engitor.catalog.diff import human
from engitor.commands.rmi import running_images
from engitor.errors import UserError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="free space: unused images, caches, staging folders",
                       description="Removes images no name points to (nor pointed to within "
                                   "--keep), kernels and package caches no kept image or "
                                   "runtime uses, downloaded .debs and dead staging folders. "
                                   "Never what a running VM uses. Refuses while a build runs.")
    p.add_argument("--all", action="store_true",
                   help="also named images and every cache (not what a running VM uses)")
    p.add_argument("--dry-run", "-n", action="store_true", help="say what would go, remove nothing")
    p.add_argument("--keep", default="14d", metavar="AGE",
                   help="keep builds a name pointed to this recently (rollback needs them): "
                        "e.g. 14d, 12h, 0 (default 14d)")
    p.set_defaults(func=main)


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        raise UserError(f"--keep {text}: not an age", hint="e.g. 14d, 12h, 30m, 0")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def main(args: argparse.Namespace) -> int:
    keep = seconds(args.keep)
    with reflog.exclusive("prune"):
        plan = prune.make_plan(running=running_images(), all_=args.all, keep=keep)
        verb = "would remove" if args.dry_run else "removed"
        for image in plan.images:
            print(f"{verb} image {image.short}")
        for what, path in plan.paths:
            print(f"{verb} {what} {path}")
        if not args.dry_run:
            prune.execute(plan)
    print(f"{'would free' if args.dry_run else 'freed'} {human(plan.bytes)} "
          f"({plan.bytes} bytes)")
    return 0
