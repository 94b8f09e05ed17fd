"""engitor compile CONFIG: the Lua recipe a YAML config (or an ops config.json) means.

The output is what `engitor run CONFIG` evaluates: stamped as generated, in a stable order, with
the config's comments. It is checked by evaluating it (unless --no-check), so errors name the
config's line and column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engitor import home
from engitor.errors import UserError
from engitor.recipe import frontends, yaml_front


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="print the Lua recipe a YAML config or ops config means",
                       description="Compile a YAML config (or an ops config.json) to the Lua "
                                   "recipe it means, the one 'engitor run CONFIG' evaluates.",
                       usage="engitor compile [options] CONFIG | -c CONFIG PROGRAM")
    p.add_argument("target", metavar="CONFIG",
                   help="config.yaml, config.yml or config.json (with -c: the PROGRAM)")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="an ops config.json (or a YAML of one image) for PROGRAM, as in "
                        "'engitor run -c FILE PROGRAM'")
    p.add_argument("-n", "--name", metavar="NAME", help="image name (with -c)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the recipe here, not to stdout")
    p.add_argument("--no-check", action="store_true",
                   help="do not evaluate the result (e.g. when !env variables are unset here)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.config:
        compiled = yaml_front.compile_config(Path(args.config), program=args.target,
                                             name=args.name)
    else:
        if frontends.kind_of(args.target) != "config":
            raise UserError(f"{args.target}: not a config file",
                            hint="compile takes .yaml, .yml or .json (a Lua recipe is already "
                                 "Lua); for a program with an ops config: -c config.json PROGRAM")
        path = Path(args.target)
        if not path.is_file():
            raise UserError(f"{args.target}: no such file", hint="check the path")
        compiled = yaml_front.compile_config(path)
    for message in compiled.warnings:
        yaml_front.warn_stderr(message)
    if not args.no_check:
        yaml_front.evaluate(compiled)
    if args.output:
        home.atomic_write(Path(args.output), compiled.lua)
    else:
        sys.stdout.write(compiled.lua)
    return 0
