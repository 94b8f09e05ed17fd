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
    """The Lua table lua/c.lua reads: the cdef chunks in order with what guards each, then the
    names by kind, then the API (the names the requested headers themselves declare)."""
    api: list[str] = []
    out = ["return {\nheaders = {", ", ".join(lua_string(h) for h in unit["headers"]), "},\n"]
    out += _chunks(unit["chunks"])
    out += _functions_and_variables(unit, api)
    out += _constants(unit, api)
    out += _types(unit, api)
    out.append("api = {" + ", ".join(lua_string(n) for n in sorted(set(api))) + "},\n")
    out.append("}\n")
    return "".join(out)


def _table(name: str, items: list[tuple[str, str]]) -> str:
    return f"{name} = {{\n" + "".join(f"{_key(k)} = {v},\n" for k, v in items) + "},\n"


def _strings(items: list[str]) -> str:
    return "{" + ", ".join(lua_string(t) for t in items) + "}"


def _chunks(chunks: list[dict]) -> list[str]:
    """cdef (the text of each chunk), where (its file:line), and by chunk index what it
    declares that a second include must not declare again (tags, constants, typedefs)."""
    out = ["cdef = {\n"]
    guard, gconst, gtypedef, pragma, where = [], [], [], [], []
    for i, ch in enumerate(chunks, 1):
        out.append(lua_string(ch["text"]) + ",\n")
        where.append(lua_string(f'{ch["file"]}:{ch["line"]}'))
        if ch.get("tags"):
            guard.append(f"[{i}] = {_strings(ch['tags'])}")
        if ch.get("consts"):
            gconst.append(f"[{i}] = {_strings(ch['consts'])}")
        if ch.get("pragma"):
            pragma.append(f"[{i}] = true")
        if ch.get("typedefs"):
            gtypedef.append(f"[{i}] = {_strings(ch['typedefs'])}")
    out.append("},\nwhere = {" + ", ".join(where) + "},\n")
    for name, items in (("guard", guard), ("gconst", gconst), ("gtypedef", gtypedef),
                        ("pragma", pragma)):
        out.append(f"{name} = {{" + ", ".join(items) + "},\n")
    return out


def _functions_and_variables(unit: dict, api: list[str]) -> list[str]:
    funcs, nocall, inline = [], [], []
    for name, f in unit["functions"].items():
        funcs.append((name, lua_string(f"{f['sig']}  -- {f['file']}:{f['line']}")))
        if f.get("nocall"):
            nocall.append((name, lua_string(f["nocall"])))
        if f.get("inline"):
            inline.append((name, "true"))
        if f["api"]:
            api.append(name)
    api += [n for n, v in unit["variables"].items() if v["api"]]
    variables = [(n, lua_string(v["type"])) for n, v in unit["variables"].items()]
    return [_table("func", funcs), _table("nocall", nocall), _table("inline", inline),
            _table("var", variables)]


def _constants(unit: dict, api: list[str]) -> list[str]:
    """Enum constants and macros, by what Lua can do with them: a value (const), a cast of a
    value, an alias of another name, a function-like macro or an expression (shown only)."""
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
        where = f"  -- {m['file']}:{m['line']}"
        if v is not None:
            consts.append((name, v))
        elif m["kind"] == "cast":
            casts.append((name, f"{{{lua_string(m['ctype'])}, {lua_int(m['value'])}}}"))
        elif m["kind"] == "alias":
            alias.append((name, lua_string(m["value"])))
        elif m["kind"] == "function":
            fmacro.append((name, lua_string(f"{name}({', '.join(m['params'])}) {m['body']}{where}")))
        else:
            expr.append((name, lua_string(f"{m['body']}{where}")))
        if m["api"]:
            api.append(name)
    return [_table("const", consts), _table("enumc", enumc), _table("cast", casts),
            _table("alias", alias), _table("fmacro", fmacro), _table("expr", expr)]


def _types(unit: dict, api: list[str]) -> list[str]:
    types = unit["types"]
    api += [n for n, t in types.items() if t["api"] and t["kind"] == "typedef"]
    typedefs = [(n, "true") for n, t in types.items() if t["kind"] == "typedef"]
    tags = [(n, "true") for n, t in types.items() if t["kind"] != "typedef" and t["api"]]
    return [_table("typedef", typedefs), _table("tags", tags)]
