"""engitor load NAME -a SCRIPT: run a script under a runtime package (ops' `pkg load`).

The image is `{package = NAME, args = …}`: the package's program and default arguments, then
the ones given. Arguments naming files that exist (the script first) are copied into the image
at the same relative path, as ops does; folders named by relative paths come along too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engitor.commands import common, run
from engitor.packages import recipes
from engitor.recipe import targets
from engitor.recipe.model import Image
from engitor.recipe.names import default_name
from engitor.recipe.settings import make_image
from engitor.units import MiB


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="run a script under a runtime package (python3, node, …)",
                       description="Build an image from a runtime package and the files its "
                                   "arguments name, boot it and stream its console. Arguments "
                                   "go one by one with -a, or after --.",
                       usage="engitor load [options] NAME [-a ARG ...] [-- ARG ...]")
    p.add_argument("package", metavar="NAME",
                   help="a runtime package ('engitor pkg list' shows them)")
    common.add_image_flags(p)
    run.add_run_flags(p)
    p.set_defaults(func=main)


def image_for(args: argparse.Namespace) -> Image:
    """The image `engitor load` builds, flags applied; memory at least what the runtime needs
    unless -m says otherwise."""
    recipe = recipes.find(args.package, Path.cwd())
    name = args.name or script_name(recipe.suffixes, [*(args.args or []),
                                                      *(getattr(args, "program_args", None) or [])]) \
        or default_name(args.package)
    table: dict[str, object] = {"package": recipe.name}
    if recipe.memory:
        table["memory"] = f"{recipe.memory // MiB}M"
    image = make_image(name, table, where="command line", base_dir=Path.cwd())
    return targets.apply(image, common.overrides(args))


def script_name(suffixes: tuple[str, ...], argv: list[str]) -> str | None:
    """The image is named after the script it runs (app.py -> app-py), so two apps on one
    runtime do not take each other's name; None when no argument is a script."""
    script = next((a for a in argv if a.endswith(suffixes) and not a.startswith("-")), None) \
        if suffixes else None
    return default_name(Path(script).name.replace(".", "-")) if script else None


def main(args: argparse.Namespace) -> int:
    return run.boot(image_for(args), detach=args.detach, quiet=args.quiet,
                    wait=not args.no_wait, restart=args.restart)
