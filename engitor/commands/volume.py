"""engitor volume ls|create|rm|inspect: the named ext4 volumes that `-v NAME:/path` mounts."""

from __future__ import annotations

import argparse
import json

from engitor.errors import UserError
from engitor.recipe.settings import SettingTypeError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("volume", help="manage named volumes (persistent ext4 disks)",
                       description="Named volumes are sparse ext4 disk images in the engitor "
                                   "home. 'engitor run -v NAME:/path' makes one on first use, "
                                   "seeded from the image's files at that path.")
    verbs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = verbs.add_parser("ls", help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    create = verbs.add_parser("create", help="make an empty volume")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--size", default="1G", metavar="SIZE",
                        help="file system size (sparse: it costs what is written); default 1G")
    rm = verbs.add_parser("rm", help="delete volumes and their data")
    rm.add_argument("names", nargs="+", metavar="NAME")
    inspect = verbs.add_parser("inspect", help="details of a volume, as JSON")
    inspect.add_argument("name", metavar="NAME")
    p.set_defaults(func=main)


def _size(text: str) -> int:
    from engitor.vm import volumes

    try:
        return volumes.size_arg(text)
    except SettingTypeError as e:
        raise UserError(f"--size {text}: {e}", hint="e.g. --size 512M or --size 10G") from None


def _human(n: int) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def main(args: argparse.Namespace) -> int:
    from engitor.vm import volumes

    if args.action == "create":
        path = volumes.create(args.name, _size(args.size))
        print(f"{args.name}\t{path}")
    elif args.action == "rm":
        for name in args.names:  # all checked first: one unknown name removes nothing
            volumes.inspect(name)
        for name in args.names:
            volumes.remove(name)
            print(name)
    elif args.action == "inspect":
        print(json.dumps(volumes.inspect(args.name), indent=2))
    else:
        rows = volumes.ls_rows()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif args.quiet:
            print("\n".join(str(r["name"]) for r in rows))
        else:
            table = [("NAME", "SIZE", "USED ON DISK", "IN USE BY")]
            table += [(str(r["name"]), _human(int(r["size"])),  # type: ignore[call-overload]
                       _human(int(r["allocated"])), str(r["in_use_by"] or "-"))  # type: ignore[call-overload]
                      for r in rows]
            widths = [max(len(line[i]) for line in table) for i in range(4)]
            for line in table:
                print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0
