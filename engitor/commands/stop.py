"""engitor stop NAME...: stop VMs (SIGTERM to the program through the ACPI power button, power
off after its stop_timeout) and remove them; a VM that already ended is just removed."""

from __future__ import annotations

import argparse

from engitor.vm import supervisor
from engitor.vm.instance import Instance


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stop", help="stop and remove VMs",
                       description="Stop VMs gracefully (the program gets SIGTERM, then the VM "
                                   "is powered off after its stop timeout) and remove them.")
    p.add_argument("names", nargs="+", metavar="NAME", help="VMs to stop (see 'engitor ps')")
    p.add_argument("-t", "--timeout", type=int, metavar="SECONDS",
                   help="seconds the program gets after SIGTERM (default: the image's "
                        "stop_timeout)")
    p.add_argument("-k", "--kill", action="store_true", help="end the VMs at once")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    instances = [Instance.load(name) for name in args.names]  # every name known, or none stops
    for inst in instances:
        supervisor.mark_stop(inst.dir)  # no restart for a VM stopped on purpose
        was_running = inst.alive()
        if was_running:
            if args.kill:
                inst.kill()
            else:
                inst.stop(args.timeout)
        inst.poll_console(final=True)
        code = inst.exit_code()
        how = f"exit code {code}" if code is not None else "no exit code"
        print(f"{inst.name}: {'stopped' if was_running else 'had ended'} ({how})")
        inst.remove()
    return 0
