"""The `engitor` command: verbs live in engitor/commands/, one module each.

Every verb module has `add(subparsers)` registering its parser with `func=handler`; a handler
returns the process exit code. A `UserError` anywhere becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from engitor import __version__, faults, proc
from engitor.errors import EXIT_USAGE, UserError

VERBS = (
    "run", "build", "images", "kernel", "doctor", "schema", "c", "compile", "shell", "ps", "logs",
    "stop", "load", "pkg", "volume", "export", "push", "deploy", "manifest",
    "inspect", "history", "diff", "rollback", "tag", "rmi", "prune", "sbom", "sign", "verify",
    "keygen",
)


# Verbs whose -a/--arg takes program arguments.
ARG_VERBS = ("run", "build", "load")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own usage errors: one line, exit 2
        raise UserError(message, hint=f"see '{self.prog} --help'")


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given argv naming a verb, only that verb's module is imported (start-up
    time is part of every `engitor run`), else all of them (for help and errors)."""
    p = _Parser(prog="engitor", description="Any Linux program as a single-application micro-VM.")
    p.add_argument("--version", action="version", version=f"engitor {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    first = next((a for a in argv or () if not a.startswith("-")), None)
    for verb in (first,) if first in VERBS else VERBS:
        importlib.import_module(f"engitor.commands.{verb}").add(sub)
    return p


def join_arg_values(argv: list[str]) -> list[str]:
    """`-a -port` means the argument "-port", as in ops (pflag takes the next word whatever it
    looks like); argparse would read it as a flag, so such pairs become `--arg=-port`."""
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb not in ARG_VERBS:
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("-a", "--arg") and i + 1 < len(argv):
            out.append(f"--arg={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    proc.set_echo(debug)
    # Everything after `--` belongs to the program (engitor run ./server -- -port 8080).
    rest: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, rest = argv[:at], argv[at + 1:]
    argv = join_arg_values(argv)
    try:
        args = parser(argv).parse_args(argv)
        args.program_args = rest
        if not getattr(args, "func", None):
            parser().print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except UserError as e:
        if debug:
            raise
        print(f"engitor: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        told = faults.explain(e)  # a full disk or a refused write: one line, not a traceback
        if told is None or debug:
            raise
        print(f"engitor: {told}", file=sys.stderr)
        return EXIT_USAGE
