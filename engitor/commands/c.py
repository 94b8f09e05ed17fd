"""`engitor c inspect HEADER...`: what a C header set offers a script, from the same index the
shell completes from: functions with signatures, types with sizes (as LuaJIT lays them out),
constants with values, and the function-like macros that cannot be called."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from engitor.errors import UserError


def add(subparsers) -> None:
    p = subparsers.add_parser("c", help="the C bridge: inspect what headers offer Lua",
                              description=__doc__)
    sub = p.add_subparsers(dest="c_command", metavar="COMMAND")
    i = sub.add_parser("inspect", help="list a header's functions, types, constants and macros")
    i.add_argument("headers", nargs="+", metavar="HEADER",
                   help="a header as in #include <...> (zlib.h, sys/stat.h) or a path (./x.h)")
    i.add_argument("--lib", action="append", default=[], metavar="L",
                   help="a library to check the functions against (z, sqlite3, a path); repeatable")
    i.add_argument("-I", dest="incdir", action="append", default=[], metavar="DIR",
                   help="add an include directory")
    i.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                   help="define a macro before the headers")
    i.add_argument("--libdir", action="append", default=[], metavar="DIR",
                   help="also look for libraries here")
    i.add_argument("--all", action="store_true",
                   help="also list what the headers' includes declare, and reserved names")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=inspect)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _probe(args, entries) -> tuple[dict[str, int | None], set[str], list[str]]:
    """Sizes from LuaJIT, with --lib which functions no given library exports, and the
    declarations LuaJIT could not take."""
    from lupa import luajit21

    from engitor.lua.api import c as c_api

    lua = luajit21.LuaRuntime(register_eval=False, register_builtins=False,
                              unpack_returned_tuples=True)
    env = lua.table()
    c_api.install(lua, env)
    probe = lua.eval("""function(c, headers, opts, types, funcs)
        local ffi = require "ffi"
        local ns = c.include(headers, opts)
        local sizes, missing = {}, {}
        for _, t in ipairs(types) do
          local ok, s = pcall(ffi.sizeof, t)
          sizes[t] = ok and s or false
        end
        if opts.lib then
          for _, f in ipairs(funcs) do
            if not pcall(function() return ns[f] end) then missing[#missing + 1] = f end
          end
        end
        return sizes, missing, c.info(ns).unavailable
    end""")
    opts = {"incdir": lua.table_from(args.incdir), "define": lua.table_from(args.define),
            "libdir": lua.table_from(args.libdir)}
    if args.lib:
        opts["lib"] = lua.table_from(args.lib)
    types = [e.name for e in entries if e.kind == "type"]
    funcs = [e.name for e in entries if e.kind == "function" and not e.note]
    try:
        sizes, missing, refused = probe(env["c"], lua.table_from(args.headers),
                                        lua.table_from(opts), lua.table_from(types),
                                        lua.table_from(funcs))
    except Exception as e:   # a Lua error from the bridge is the user's: show its message
        # The location is this probe's own chunk, not anything the user wrote: drop it.
        message = str(e).split("\nstack traceback:")[0]
        raise UserError(re.sub(r'^\[string "[^"]*"\]:\d+: ', "", message)) from None
    return ({k: (v if v is not False else None) for k, v in sizes.items()},
            set(missing.values()), list(refused.values()))


def inspect(args: argparse.Namespace) -> int:
    from engitor.ffi import index, request

    req = request(args.headers, include_dirs=args.incdir, defines=args.define)
    entries = index(req, everything=args.all)
    sizes, missing, refused = _probe(args, entries)
    rows: list[dict[str, Any]] = []
    for e in entries:
        row = {"name": e.name, "kind": e.kind, "detail": e.detail, "where": e.where,
               "api": e.api}
        if e.kind == "type":
            row["size"] = sizes.get(e.name)
        note = e.note or ("not exported by " + ", ".join(args.lib) if e.name in missing else "")
        if note:
            row["note"] = note
        rows.append(row)
    if args.json:
        json.dump({"names": rows, "unavailable": refused}, sys.stdout, indent=1)
        print()
        return 0
    out = sys.stdout
    titles = {"function": "functions", "variable": "variables", "type": "types",
              "constant": "constants", "macro": "function-like macros (not callable)"}
    for kind, title in titles.items():
        group = [r for r in rows if r["kind"] == kind]
        if not group:
            continue
        print(f"{title} ({len(group)})", file=out)
        width = min(max(len(r["name"]) for r in group), 32)
        for r in group:
            if kind in ("function", "variable", "macro"):
                text = r["detail"]
            elif kind == "type":
                size = r["size"]
                size_text = "incomplete" if size is None else f"{size} bytes"
                text = f"{r['name']:<{width}}  {size_text:>12}  {r['detail']}"
            else:
                text = f"{r['name']:<{width}}  {r['detail']}"
            if r.get("note"):
                text += f"   [{r['note']}]"
            print(f"  {text}   ({r['where']})", file=out)
        print(file=out)
    if refused:
        print(f"declarations LuaJIT cannot take ({len(refused)})", file=out)
        for line in refused:
            print(f"  {line}", file=out)
    return 0
