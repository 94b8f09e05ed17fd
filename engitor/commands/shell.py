"""engitor shell: an interactive Lua shell with the whole toolkit; scripts and pipes too.

    engitor shell                      the REPL (prompt_toolkit)
    engitor shell script.lua a b       a script: arg[0] = script.lua, arg[1] = "a", ... = "a", "b"
    echo 'print(1+1)' | engitor shell  Lua from a pipe: no prompt, no colour
    engitor shell -e 'CODE'            one chunk, run as if typed
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shell", help="interactive Lua shell with fs, sh, c, log and VMs",
                       description="A Lua (LuaJIT) shell over engitor's toolkit: recipes, C "
                                   "libraries, host programs and running VMs are Lua values. "
                                   "With a script, runs it; with Lua on a pipe, runs that.",
                       usage="engitor shell [-e CODE] [SCRIPT [ARG ...]]")
    p.add_argument("-e", dest="code", metavar="CODE", help="run CODE as if typed, then leave")
    p.add_argument("script", nargs="?", metavar="SCRIPT", help="a Lua script to run")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG", help="the script's arguments")
    p.set_defaults(func=main)


def _second_interrupt_ends(shell: Any) -> None:
    """Scripts run with the JIT on, where Ctrl-C may not reach a compiled loop: the first
    Ctrl-C interrupts as usual, a second one ends the process (its VMs go with it)."""
    pressed = {"n": 0}

    def handler(signum: int, frame: object) -> None:
        pressed["n"] += 1
        if pressed["n"] > 1:
            shell.close()
            os._exit(130)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


def main(args: argparse.Namespace) -> int:
    # Imported here: every engitor command builds its parser from this module.
    from engitor.shell.session import Session, ShellExit, wants_color

    script_args = [*(args.args or []), *(getattr(args, "program_args", None) or [])]
    interactive = args.code is None and args.script is None and sys.stdin.isatty()
    color = interactive and wants_color(sys.stdout)
    shell = Session(interactive=interactive, color=color)
    try:
        if args.code is not None:
            _second_interrupt_ends(shell)
            return 0 if shell.execute(args.code) else 1
        if args.script is not None:
            _second_interrupt_ends(shell)
            return shell.run_file(Path(args.script), script_args)
        if not interactive:
            _second_interrupt_ends(shell)
            return shell.run_stream(sys.stdin)
        from engitor.shell.repl import interact

        return interact(shell)
    except ShellExit as e:
        return e.code
    except KeyboardInterrupt:
        return 130
    finally:
        shell.close()
