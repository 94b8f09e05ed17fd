"""engitor history NAME: every build of a name, newest first, with what changed."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from engitor import reflog
from engitor.catalog import history
from engitor.catalog.diff import human


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="every build of a name, newest first",
                       description="The images a name pointed at (its log, like git's reflog): "
                                   "~N, id, date, size, why it moved, what changed.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    steps = history.of(args.name)
    rows: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        older = steps[i + 1] if i + 1 < len(steps) else None
        rows.append({"n": step.n, "id": step.id, "time": step.time, "why": step.why,
                     "size": step.image.size() if step.image else None,
                     "changes": history.changes(step, older)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    log = reflog.read(args.name)
    if log and log[-1].new is None:  # the name itself was removed; its builds are listed still
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(log[-1].time))
        print(f"{args.name} points at no image since {when} ({log[-1].why})")
    print(f"{'':<4} {'ID':<12}  {'DATE':<19}  {'SIZE':>9}  {'WHY':<8}  CHANGES")
    for r in rows:
        size = human(r["size"]) if r["size"] is not None else "pruned"
        date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["time"]))
        print(f"~{r['n']:<3} {r['id'][:12]}  {date}  {size:>9}  {r['why']:<8}  {r['changes']}")
    return 0
