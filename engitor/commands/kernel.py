"""engitor kernel fetch|build|list: Debian kernel packages, and kernels built from a recipe."""

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
    b = ks.add_parser("build", help="build a kernel from a recipe (recipes/kernels/NAME.lua)",
                      description="Build a kernel from Debian's linux-source package as a "
                                  "recipe says, into the kernel cache; --kernel NAME selects it.")
    b.add_argument("recipe", nargs="?", default="minimal",
                   help="a kernel recipe name (default minimal) or a recipe file")
    b.add_argument("--config", metavar="FRAGMENT", type=Path,
                   help="a config fragment instead of the recipe's own")
    b.add_argument("--name", help="the name to select it by (default: the recipe's)")
    b.add_argument("-j", "--jobs", type=int, help="parallel make jobs (default: every CPU)")
    b.add_argument("--force", action="store_true",
                   help="build again even if it is cached, and say whether the bytes are the same")
    b.set_defaults(func=build)
    ls = ks.add_parser("list", help="list cached kernels")
    ls.set_defaults(func=listing)


def fetch(args: argparse.Namespace) -> int:
    spec = args.package
    k = kernel.unpack(Path(spec)) if spec.endswith(".deb") else kernel.fetch(spec)
    print(f"{k.package} {k.version} ({k.release}) sha256 {k.sha256[:16]}")
    return 0


def build(args: argparse.Namespace) -> int:
    from engitor.commands import common
    from engitor.image import kbuild

    fragment = args.config.resolve() if args.config else None
    if fragment is not None and not fragment.is_file():
        from engitor.errors import UserError
        raise UserError(f"config fragment {args.config}: no such file", hint="check the path")
    k = kbuild.build(args.recipe, fragment=fragment, name=args.name, jobs=args.jobs,
                     force=args.force, log=lambda line: common.say(f"kernel: {line}"))
    print(f"{k.package} {k.version} ({k.release}) sha256 {k.sha256[:16]}")
    return 0


def listing(args: argparse.Namespace) -> int:
    cached = kernel.cached()
    pins: dict[str, list[str]] = {}
    for name, entry in kernel.pinned_names().items():
        pins.setdefault(entry, []).append(name)
    for k in cached:
        # A built kernel is known by the names that select it (--kernel NAME).
        names = ", ".join(pins.get(k.root.name, [])) if k.built else k.package
        print(f"{names or k.package:<40} {k.version:<14} {k.release:<24} {k.sha256[:16]}")
    built = {n for k in cached if k.built for n in pins.get(k.root.name, [])}
    for name in sorted(kernel.buildable() - built):
        print(f"{name:<40} {'-':<14} {'(not built)':<24} engitor kernel build {name}")
    return 0
