"""engitor sbom IMAGE: the image's SPDX 2.3 bill of materials, as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engitor import home, store
from engitor.catalog import sbom


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sbom", help="SPDX 2.3 JSON bill of materials of an image",
                       description="Debian packages (version, source, licence), the kernel "
                                   "package and the program's own files with checksums.")
    p.add_argument("image", metavar="IMAGE|NAME")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    text = sbom.render(store.resolve(args.image))
    if args.output:
        home.atomic_write(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0
