"""The C bridge: a library's headers are its API.

header --(cparse: cc -E -dD, pycparser)--> unit --(model: index, macros)--> Lua data (emit)
--(lua/c.lua: ffi.cdef, ffi.load)--> namespace. Every stage's result for a request is cached
(cache.py) by the contents of every file the preprocessor read, the flags and the compiler.

Public entry points: `request()` to describe what to include, `unit()` for the model (the
index the shell and `engitor c inspect` use), `lua_data()` for the Lua side, `index()` for a
flat, sorted list of names with their signatures or values, `library_candidates()` for
finding a shared library the way the linker would.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from engitor.errors import UserError
from engitor.ffi import cache, cparse
from engitor.ffi.cparse import Request, Toolchain, is_path, toolchain

__all__ = [
    "Entry",
    "Request",
    "Toolchain",
    "ensure",
    "index",
    "library_candidates",
    "lua_data",
    "lua_data_for",
    "request",
    "toolchain",
    "unit",
]

# Entries checked by content in this process, with what stat said then: a later include of the
# same request re-hashes nothing unless a file's stat changed.
_checked: dict[tuple[str, str], tuple[list[str], tuple]] = {}


def request(headers: str | Iterable[str], *, include_dirs: Iterable[str] = (),
            defines: Iterable[str] = (), cflags: Iterable[str] = ()) -> Request:
    """Normalise what a user asked for: relative paths become absolute (they key the cache)."""
    hs = (headers,) if isinstance(headers, str) else tuple(headers)
    if not hs:
        raise UserError("no header given", hint='c.include("zlib.h") or c.include{"a.h", "b.h"}')
    out = []
    for h in hs:
        if not isinstance(h, str) or not h.strip():
            raise UserError(f"a header name must be a non-empty string, not {h!r}")
        if is_path(h):
            p = os.path.abspath(h)
            if not os.path.isfile(p):
                raise UserError(f"header file '{h}' not found", hint=f"looked at {p}")
            h = p
        out.append(h)
    for d in defines:
        name = d.split("=", 1)[0]
        if not name or not name.split("(")[0].isidentifier():
            raise UserError(f"bad define '{d}'", hint="write NAME, NAME=VALUE or NAME(args)=VALUE")
    return Request(headers=tuple(out), include_dirs=tuple(os.path.abspath(d) for d in include_dirs),
                   defines=tuple(defines), cflags=tuple(cflags))


def _key(req: Request, tc: Toolchain) -> str:
    return cache.key({"cc": tc.identity, "argv": req.argv(tc)[1:], "source": req.source()})


def _ensure(req: Request, tc: Toolchain | None = None) -> str:
    """Build the request's cache entry unless a valid one exists; return its key."""
    tc = tc or toolchain()
    k = _key(req, tc)
    where = (str(cache.root()), k)
    seen = _checked.get(where)
    if seen and cache.signature(seen[0]) == seen[1]:
        return k
    paths = cache.valid(k)
    if paths is not None:
        # the entry's own files too: an entry removed behind our back is rebuilt
        paths += [str(cache.root() / f"{k}.{kind}") for kind in ("deps", "lua", "json")]
        _checked[where] = (paths, cache.signature(paths))
        return k
    from engitor.ffi import emit, model  # the cold path alone needs pycparser

    pre = cparse.preprocess(req, tc)
    parsed = cparse.parse(pre, tc)
    unit = model.build(parsed, req, tc, pre.builtins)
    dirs = list(req.include_dirs) + list(tc.include_dirs)
    shadows: list[tuple[str, list[str]]] = []
    for h, found in zip(req.headers, pre.header_paths, strict=False):
        if is_path(h) or not found.endswith("/" + h):
            continue
        at = os.path.normpath(found[: -len(h) - 1])
        earlier = dirs[: dirs.index(at)] if at in dirs else []
        shadows.append((h, earlier))
    cache.store(k, pre.deps, shadows, {"json": json.dumps(unit, separators=(",", ":")),
                                       "lua": emit.lua_data(unit)})
    return k


def ensure(req: Request) -> str:
    """The cache key of a request's entry, building the entry first if needed."""
    return _ensure(req)


def lua_data_for(key: str) -> str:
    """The Lua chunk of an entry made by `ensure`."""
    return cache.read(key, "lua")


def unit(req: Request) -> dict:
    """The model of a request (see model.py for its shape)."""
    return json.loads(cache.read(_ensure(req), "json"))


def lua_data(req: Request) -> str:
    """The Lua chunk lua/c.lua turns into a namespace."""
    return cache.read(_ensure(req), "lua")


@dataclass(frozen=True)
class Entry:
    """One name a header set offers: what the shell completes and `c inspect` lists."""
    name: str
    kind: str        # function, variable, type, constant, macro
    detail: str      # signature, declaration, C type, value, or the macro's text
    where: str       # header:line
    api: bool        # part of the requested headers' own interface
    note: str = ""   # why it cannot be called, when it cannot


def index(req: Request, *, everything: bool = False) -> list[Entry]:
    """Names in a request's unit, sorted by kind then name; only the API unless `everything`."""
    u = unit(req)
    out: list[Entry] = []

    def add(name, kind, detail, e, note=""):
        if everything or e["api"]:
            out.append(Entry(name, kind, detail, f"{e['file']}:{e['line']}", e["api"], note))

    for n, f in u["functions"].items():
        note = f.get("nocall") or ("static inline: no library exports it" if f.get("inline")
                                   else "")
        add(n, "function", f["sig"], f, note)
    for n, v in u["variables"].items():
        add(n, "variable", v["type"], v)
    for n, t in u["types"].items():
        if t["kind"] == "typedef":
            detail = f"typedef {t['to']}"
        else:
            detail = n if t.get("complete", True) else f"{n} (incomplete)"
        add(n, "type", detail, t)
    for n, e in u["enums"].items():
        add(n, "constant", str(e.get("value", "?")) + (f"  ({e['enum']})" if e.get("enum") else ""), e)
    for n, m in u["macros"].items():
        if m["kind"] == "function":
            if n in u["functions"]:
                continue   # zlib's gzgetc: the name calls the exported function
            add(n, "macro", f"{n}({', '.join(m['params'])}) {m['body']}", m,
                "function-like macro: not callable")
        else:
            add(n, "constant", describe_macro(m), m)
    order = {"function": 0, "variable": 1, "type": 2, "constant": 3, "macro": 4}
    out.sort(key=lambda e: (order[e.kind], e.name))
    return out


def describe_macro(m: dict) -> str:
    kind = m["kind"]
    if kind == "int":
        return str(m["value"])
    if kind == "float":
        from engitor.ffi.emit import lua_float
        return lua_float(m["value"]).strip("()")
    if kind == "string":
        return json.dumps(m["value"].encode("latin-1").decode("utf-8", "replace"))
    if kind == "cast":
        return f"({m['ctype']}){m['value']}"
    if kind == "alias":
        return f"= {m['value']}"
    if kind == "flag":
        return "(defined, no value)"
    return f"{m['body']}  (not a constant)"


def library_candidates(name: str, lib_dirs: Iterable[str] = (),
                       tc: Toolchain | None = None) -> list[str]:
    """Shared objects that could be library `name` ("z", "libz", "libz.so.1" or a path), in
    the order a user would expect: given dirs first, then the compiler's, unversioned first."""
    if "/" in name:
        return [name] if os.path.exists(name) else []
    tc = tc or toolchain()
    base = name if name.startswith("lib") else f"lib{name}"
    patterns = [name] if ".so" in name else [f"{base}.so", f"{base}.so.*", f"{base}-*.so*"]
    out: list[str] = []
    for d in list(lib_dirs) + list(tc.lib_dirs):
        for pat in patterns:
            for p in sorted(glob.glob(os.path.join(glob.escape(d), pat)), key=len):
                if p not in out and os.path.isfile(p):
                    out.append(p)
    return out
