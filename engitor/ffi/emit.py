"""Stage 3 of the C bridge: the unit as a Lua chunk that lua/c.lua turns into a namespace.

The chunk is one table constructor (no globals, no calls), so the runtime compiles it without
giving it an environment, and a warm include is: read this text, compile it, hand the
declarations to `ffi.cdef`. The declarations are the preprocessor's own text (attributes and
all); function definitions are reduced to their prototypes.
"""

from __future__ import annotations

import math

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


_LUA_KEYWORDS = set("""and break do else elseif end false for function goto if in local nil not
or repeat return then true until while""".split())


def _key(name: str) -> str:
    plain = name.isidentifier() and name.isascii() and name not in _LUA_KEYWORDS
    return name if plain else f"[{lua_string(name)}]"


Items = list[tuple[str, str]]


def _table(name: str, items: Items) -> str:
    return f"{name} = {{\n" + "".join(f"{_key(k)} = {v},\n" for k, v in items) + "},\n"


def _strings(values: list[str]) -> str:
    return ", ".join(lua_string(v) for v in values)


def _chunks(chunks: list[dict]) -> str:
    """The declarations in order, and per declaration (by index) what lua/c.lua's declare()
    needs to skip one already declared: tags, constants, typedef names, pragma or not."""
    where = [lua_string(f'{ch["file"]}:{ch["line"]}') for ch in chunks]
    marks: dict[str, list[str]] = {"guard": [], "gconst": [], "gtypedef": [], "pragma": []}
    for i, ch in enumerate(chunks, 1):
        for table, field in (("guard", "tags"), ("gconst", "consts"), ("gtypedef", "typedefs")):
            if ch.get(field):
                marks[table].append(f"[{i}] = {{{_strings(ch[field])}}}")
        if ch.get("pragma"):
            marks["pragma"].append(f"[{i}] = true")
    out = ["cdef = {\n", *(lua_string(ch["text"]) + ",\n" for ch in chunks), "},\n"]
    out.append("where = {" + ", ".join(where) + "},\n")
    out += [f"{name} = {{{', '.join(items)}}},\n" for name, items in marks.items()]
    return "".join(out)


def _functions(unit: dict) -> str:
    funcs, nocall, inline = [], [], []
    for name, f in unit["functions"].items():
        funcs.append((name, lua_string(f"{f['sig']}  -- {f['file']}:{f['line']}")))
        if f.get("nocall"):
            nocall.append((name, lua_string(f["nocall"])))
        if f.get("inline"):
            inline.append((name, "true"))
    variables = [(n, lua_string(v["type"])) for n, v in unit["variables"].items()]
    return (_table("func", funcs) + _table("nocall", nocall) + _table("inline", inline)
            + _table("var", variables))


def _macros(unit: dict) -> dict[str, Items]:
    """Macros by what the namespace does with them: a value, a cast, an alias, an error."""
    out: dict[str, Items] = {"const": [], "cast": [], "alias": [], "fmacro": [], "expr": []}
    for name, m in unit["macros"].items():
        if name in unit["functions"] or name in unit["variables"]:
            continue   # `#define stdin stdin`: the declaration is the better answer
        v = macro_value(m)
        if v is not None:
            out["const"].append((name, v))
        elif m["kind"] == "cast":
            out["cast"].append((name, f"{{{lua_string(m['ctype'])}, {lua_int(m['value'])}}}"))
        elif m["kind"] == "alias":
            out["alias"].append((name, lua_string(m["value"])))
        elif m["kind"] == "function":
            out["fmacro"].append((name, lua_string(f"{name}({', '.join(m['params'])}) "
                                                   f"{m['body']}  -- {m['file']}:{m['line']}")))
        else:
            out["expr"].append((name, lua_string(f"{m['body']}  -- {m['file']}:{m['line']}")))
    return out


def _constants(unit: dict) -> str:
    enums = unit["enums"].items()
    macros = _macros(unit)
    consts = [(n, lua_int(e["value"])) for n, e in enums if "value" in e] + macros["const"]
    enumc = [(n, "true") for n, e in enums if "value" not in e]
    return (_table("const", consts) + _table("enumc", enumc)
            + "".join(_table(k, macros[k]) for k in ("cast", "alias", "fmacro", "expr")))


def _types(unit: dict) -> str:
    types = unit["types"].items()
    return (_table("typedef", [(n, "true") for n, t in types if t["kind"] == "typedef"])
            + _table("tags", [(n, "true") for n, t in types
                              if t["kind"] != "typedef" and t["api"]]))


def _api(unit: dict) -> list[str]:
    """The requested headers' own names, sorted: what completion and c.info list."""
    names = [n for kind in ("functions", "variables", "enums") for n, e in unit[kind].items()
             if e["api"]]
    names += [n for n, m in unit["macros"].items() if m["api"]
              and n not in unit["functions"] and n not in unit["variables"]]
    names += [n for n, t in unit["types"].items() if t["api"] and t["kind"] == "typedef"]
    return sorted(set(names))


def lua_data(unit: dict) -> str:
    return "".join([
        "return {\nheaders = {", _strings(unit["headers"]), "},\n",
        _chunks(unit["chunks"]), _functions(unit), _constants(unit), _types(unit),
        "api = {" + _strings(_api(unit)) + "},\n", "}\n"])
