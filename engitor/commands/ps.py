"""engitor ps: the VMs that run (with -a, also those that ended and were kept).

Detached VMs (`engitor run -d`, or `{detach = true}` from the shell) and the VMs of a running
engitor process (a foreground `run`, a shell) are listed alike; a VM whose engitor process died
is cleaned up first (`reap`), so it is never listed as if it ran.
"""

from __future__ import annotations

import argparse
import json
import time

from engitor.vm.instance import listing


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ps", help="list running VMs",
                       description="List the VMs engitor runs: detached ones and those of "
                                   "running engitor processes (shells, foreground runs).")
    p.add_argument("-a", "--all", action="store_true",
                   help="also VMs that ended and were not removed (see 'engitor stop')")
    p.add_argument("-q", "--quiet", action="store_true", help="only names")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def uptime(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def main(args: argparse.Namespace) -> int:
    found = listing(show_all=args.all)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if args.quiet:
        for r in found:
            print(r["name"])
        return 0
    now = time.time()
    table = [("NAME", "IMAGE", "STATE", "PORTS", "ACCEL", "UP", "OWNER")]
    for r in found:
        state = r["state"] if r["code"] is None else f"exited ({r['code']})"
        if r["restarts"]:
            state += f", {r['restarts']} restart{'s' if r['restarts'] > 1 else ''}"
        owner = "detached" if r["owner"] is None else f"pid {r['owner']}"
        table.append((r["name"], r["image"], state, ",".join(r["ports"]) or "-", r["accel"],
                      uptime(now - r["started"]), owner))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return 0
