"""engitor kernel fetch|list: manage the cached Debian kernel packages."""

from __future__ import annotations

import argparse
from pathlib import Path

from engitor.image import kernel


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kernel", help="fetch or list kernels")
    ks = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = ks.add_parser("fetch", help="download (or unpack a given .deb) into the cache")
    f.add_argument("package", nargs="?", default=kernel.DEFAULT_KERNEL,
                   help=f"package name (default {kernel.DEFAULT_KERNEL}) or a .deb path")
    f.set_defaults(func=fetch)
    ls = ks.add_parser("list", help="list cached kernels")
    ls.set_defaults(func=listing)


def fetch(args: argparse.Namespace) -> int:
    spec = args.package
    k = kernel.unpack(Path(spec)) if spec.endswith(".deb") else kernel.fetch(spec)
    print(f"{k.package} {k.version} ({k.release}) sha256 {k.sha256[:16]}")
    return 0


def listing(args: argparse.Namespace) -> int:
    for k in kernel.cached():
        print(f"{k.package:<40} {k.version:<14} {k.release:<24} {k.sha256[:16]}")
    return 0
