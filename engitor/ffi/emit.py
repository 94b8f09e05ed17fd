"""Stage 3 of the C bridge: the unit as a Lua chunk that lua/c.lua turns into a namespace.

The chunk is one table constructor (no globals, no calls), so the runtime compiles it without
giving it an environment, and a warm include is: read this text, compile it, hand the
declarations to `ffi.cdef`. The declarations are the preprocessor's own text (attributes and
all); function definitions are reduced to their prototypes.
"""

from __future__ import annotations

import math

from engitor.luasyntax import KEYWORDS

_SAFE = set(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def lua_string(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    out = ['"']
    for b in raw:
        if b in _SAFE:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b in (ord('"'), ord("\\")):
            out.append("\\" + chr(b))
        else:
            # a following digit would join a short decimal escape: always use three digits
            out.append(f"\\{b:03d}")
    out.append('"')
    return "".join(out)


def lua_int(v: int, bits: int = 32, unsigned: bool = False) -> str:
    """A Lua number when exact, else a 64-bit cdata literal (LuaJIT's LL/ULL syntax)."""
    if -(1 << 53) <= v <= (1 << 53):
        return str(v)
    if unsigned or v >= (1 << 63):
        return f"{v & ((1 << 64) - 1)}ULL"
    if v == -(1 << 63):
        return "(-9223372036854775807LL-1)"
    return f"{v}LL"


def lua_float(v: float | str) -> str:
    if isinstance(v, str):
        v = float(v)
    if math.isnan(v):
        return "(0/0)"
    if math.isinf(v):
        return "(1/0)" if v > 0 else "(-1/0)"
    return repr(v)


def macro_value(m: dict) -> str | None:
    kind = m.get("kind")
    if kind == "int":
        return lua_int(m["value"], m.get("bits", 32), m.get("unsigned", False))
    if kind == "float":
        return lua_float(m["value"])
    if kind == "string":
        return lua_string(m["value"].encode("latin-1"))
    if kind == "flag":
        return "true"
    return None


def _key(name: str) -> str:
    plain = name.isidentifier() and name.isascii() and name not in KEYWORDS
    return name if plain else f"[{lua_string(name)}]"


def lua_data(unit: dict) -> str:
    out = ["return {\nheaders = {", ", ".join(lua_string(h) for h in unit["headers"]), "},\n"]
    out.append("cdef = {\n")
    guard, gconst, gtypedef, pragma, where = [], [], [], [], []
    for i, ch in enumerate(unit["chunks"], 1):
        out.append(lua_string(ch["text"]) + ",\n")
        where.append(lua_string(f'{ch["file"]}:{ch["line"]}'))
        if ch.get("tags"):
            guard.append(f"[{i}] = {{{', '.join(lua_string(t) for t in ch['tags'])}}}")
        if ch.get("consts"):
            gconst.append(f"[{i}] = {{{', '.join(lua_string(t) for t in ch['consts'])}}}")
        if ch.get("pragma"):
            pragma.append(f"[{i}] = true")
        if ch.get("typedefs"):
            gtypedef.append(f"[{i}] = {{{', '.join(lua_string(t) for t in ch['typedefs'])}}}")
    out.append("},\nwhere = {" + ", ".join(where) + "},\n")
    out.append("guard = {" + ", ".join(guard) + "},\n")
    out.append("gconst = {" + ", ".join(gconst) + "},\n")
    out.append("gtypedef = {" + ", ".join(gtypedef) + "},\n")
    out.append("pragma = {" + ", ".join(pragma) + "},\n")

    api: list[str] = []

    def table(name: str, items: list[tuple[str, str]]) -> None:
        out.append(f"{name} = {{\n")
        out.extend(f"{_key(k)} = {v},\n" for k, v in items)
        out.append("},\n")

    funcs, nocall, inline = [], [], []
    for name, f in unit["functions"].items():
        funcs.append((name, lua_string(f"{f['sig']}  -- {f['file']}:{f['line']}")))
        if f.get("nocall"):
            nocall.append((name, lua_string(f["nocall"])))
        if f.get("inline"):
            inline.append((name, "true"))
        if f["api"]:
            api.append(name)
    table("func", funcs)
    table("nocall", nocall)
    table("inline", inline)
    table("var", [(n, lua_string(v["type"])) for n, v in unit["variables"].items()])
    api += [n for n, v in unit["variables"].items() if v["api"]]

    consts, enumc, casts, alias, fmacro, expr = [], [], [], [], [], []
    for name, e in unit["enums"].items():
        if "value" in e:
            consts.append((name, lua_int(e["value"])))
        else:
            enumc.append((name, "true"))
        if e["api"]:
            api.append(name)
    for name, m in unit["macros"].items():
        if name in unit["functions"] or name in unit["variables"]:
            continue   # `#define stdin stdin`: the declaration is the better answer
        v = macro_value(m)
        if v is not None:
            consts.append((name, v))
        elif m["kind"] == "cast":
            casts.append((name, f"{{{lua_string(m['ctype'])}, {lua_int(m['value'])}}}"))
        elif m["kind"] == "alias":
            alias.append((name, lua_string(m["value"])))
        elif m["kind"] == "function":
            fmacro.append((name, lua_string(f"{name}({', '.join(m['params'])}) {m['body']}"
                                            f"  -- {m['file']}:{m['line']}")))
        else:
            expr.append((name, lua_string(f"{m['body']}  -- {m['file']}:{m['line']}")))
        if m["api"]:
            api.append(name)
    table("const", consts)
    table("enumc", enumc)
    table("cast", casts)
    table("alias", alias)
    table("fmacro", fmacro)
    table("expr", expr)
    typedefs = [(n, "true") for n, t in unit["types"].items() if t["kind"] == "typedef"]
    table("typedef", typedefs)
    api += [n for n, t in unit["types"].items() if t["api"] and t["kind"] == "typedef"]
    tags = [(n, "true") for n, t in unit["types"].items() if t["kind"] != "typedef" and t["api"]]
    table("tags", tags)
    out.append("api = {" + ", ".join(lua_string(n) for n in sorted(set(api))) + "},\n")
    out.append("}\n")
    return "".join(out)
