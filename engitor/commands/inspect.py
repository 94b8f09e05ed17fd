"""engitor inspect IMAGE|NAME: what an image holds, from its manifest."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from engitor import store
from engitor.catalog import index
from engitor.catalog.diff import human


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show what an image holds",
                       description="Files with sizes and modes, executables, kernel, cmdline, "
                                   "memory floor, Debian packages, users, ports, total size.")
    p.add_argument("image", metavar="IMAGE|NAME", help="a name, an image id or an id prefix")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--files", action="store_true", help="list every file (default: the largest)")
    p.set_defaults(func=main)


def _recorded(value: Any, show: Any) -> str:
    return "(not recorded by the engitor that built it)" if value is None else show(value)


def lines(d: dict[str, Any], all_files: bool) -> list[str]:
    k = d["kernel"]
    out = [f"image     {d['id']}",
           f"names     {', '.join(d['names']) or '<none>'}",
           f"created   {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(d['created'] or 0))}",
           f"program   {' '.join(d['argv']) or d['program']}",
           f"kernel    {k.get('package')} {k.get('version')} ({k.get('release')}, "
           f"{human(k.get('size', 0))})",
           f"cmdline   {d['cmdline']}",
           f"memory    floor {d['memory_floor'] // 2**20} MiB ({d['memory_floor_source']})"
           + (f", runs with {d['memory'] // 2**20} MiB" if d["memory"] else ""),
           f"size      {human(d['size'])} (initrd {human(d['initrd'].get('size', 0))}, "
           f"{human(d['initrd'].get('uncompressed', 0))} unpacked)",
           f"executables {len(d['executables'])}: {', '.join(d['executables'])}"
           f"; {len(d['scripts'])} #! scripts, {d['libraries']} shared libraries; "
           f"shell: {', '.join(d['shell']) or 'none'}",
           "users     " + _recorded(d["users"], lambda us: ", ".join(
               f"{u['name']}({u['uid']})" for u in us) or "none"),
           "ports     " + _recorded(d["ports"], lambda ps: ", ".join(ps) or "none"),
           "volumes   " + _recorded(d["volumes"], _volumes)
           if d["volumes"] is not None else "volumes   none"]
    pkgs = d["packages"]
    out.append(f"packages  {len(pkgs or [])} Debian package(s)" if pkgs is not None
               else "packages  " + _recorded(None, str))
    for p in pkgs or []:
        out.append(f"  {p['name']:<28} {p['version']:<24} {p.get('license') or ''}")
    files = d["files"]
    shown = files if all_files else sorted(files, key=lambda f: -f["size"])[:15]
    out.append(f"files     {len(files)}, {human(sum(f['size'] for f in files))}"
               + ("" if all_files else " (the largest; --files for all)"))
    for f in shown:
        what = f"-> {f['symlink']}" if "symlink" in f else f.get("exec", "")
        out.append(f"  {f['mode']:>5} {human(f['size']):>10}  {f['path']} {what}".rstrip())
    return out


def main(args: argparse.Namespace) -> int:
    d = index.describe(store.resolve(args.image))
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print("\n".join(lines(d, args.files)))
    return 0


def _volumes(recorded: dict[str, str] | list[str]) -> str:
    """guest path <- source; images built before sources were recorded list the paths only."""
    if isinstance(recorded, list):
        return ", ".join(recorded)
    return ", ".join(f"{guest} <- {source}" for guest, source in recorded.items())

