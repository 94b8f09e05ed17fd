"""engitor logs NAME [-f]: what a VM's program printed on its console.

The console file is written by QEMU itself, so it is there for detached VMs and after the VM
ended (until `engitor stop` removes the instance). The guest init's status lines and the
kernel's usual noise are left out unless --raw.
"""

from __future__ import annotations

import argparse
import sys
import time

from engitor.vm.instance import Instance
from engitor.vm.runner import _Display


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="show a VM's console output",
                       description="Print what a VM's program wrote to its console.")
    p.add_argument("name", metavar="NAME", help="the VM (see 'engitor ps')")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output until the VM ends (Ctrl-C stops following)")
    p.add_argument("--raw", action="store_true",
                   help="the whole console, with the kernel's and engitor's own lines")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    inst = Instance.load(args.name)
    show = _Display(sys.stdout)

    def emit(lines: list[tuple[str, bool]], final: bool = False) -> None:
        if args.raw:
            for line, _ in lines:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            show(lines, final=final)

    emit(inst.poll_console())
    if not args.follow:
        emit(inst.poll_console(final=True), final=True)
        return 0
    try:
        while inst.alive():
            emit(inst.poll_console())
            time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    emit(inst.poll_console(final=True), final=True)
    return 0
