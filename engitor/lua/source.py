"""Where each key of an `image` table is written, for errors that point at the right line.

Lua's table constructors keep no line numbers, so this reads the source: a small Lua lexer
(strings, long brackets, comments) finds the table constructor of the `image` call at a given
line and the line of every `key =` / `["key"] =` directly inside it.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<nl>\n)
  | (?P<comment>--(?:\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|[^\n]*))
  | (?P<long>\[(?P<leq>=*)\[.*?\](?P=leq)\])
  | (?P<str>"(?:\\.|\\\n|[^"\\\n])*"|'(?:\\.|\\\n|[^'\\\n])*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>0[xX][0-9a-fA-F.]+(?:[pP][+-]?\d+)?(?:[uU]?[lL]{2}|[iI])?|\d*\.?\d+(?:[eE][+-]?\d+)?(?:[uU]?[lL]{2}|[iI])?)
  | (?P<op>==|~=|<=|>=|\.\.\.|\.\.|::|.)
""", re.VERBOSE | re.DOTALL)

# LuaJIT gives a call the line where its arguments start, so the table is the first `{` from
# that line on that can begin an argument: image "x" {, image("x", {, image {, f(x) {.
_BEFORE_TABLE = {"(", ",", ")"}
_REACH = 2  # lines: image("web",\n  {


@lru_cache(maxsize=32)
def tokens(source: str) -> tuple[tuple[str, str, int], ...]:
    """(kind, text, line) of every token but whitespace and comments."""
    out: list[tuple[str, str, int]] = []
    line = 1
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "nl":
            line += 1
            continue
        if kind in ("ceq", "leq"):
            kind = "comment" if text.startswith("--") else "long"
        if kind not in ("ws", "comment"):
            out.append((kind, text, line))
        line += text.count("\n")
    return tuple(out)


def _key_of(kind: str, text: str) -> str | None:
    if kind == "name":
        return text
    if kind == "str":
        try:
            return text[1:-1].encode().decode("unicode_escape")
        except UnicodeDecodeError:
            return text[1:-1]
    return None


@lru_cache(maxsize=256)
def table_keys(source: str, line: int) -> dict[str, int]:
    """Keys of the table constructor that an `image` call at `line` is given, with their lines;
    {} when the call is given a table built elsewhere."""
    toks = tokens(source)
    i = next((n for n, t in enumerate(toks) if t[2] >= line), len(toks))
    while i < len(toks) and toks[i][2] <= line + _REACH:
        if toks[i][1] == "{" and i > 0 and (toks[i - 1][0] in ("name", "str", "long")
                                            or toks[i - 1][1] in _BEFORE_TABLE):
            break
        if toks[i][1] == ")" and (i + 1 == len(toks) or toks[i + 1][1] != "{"):
            return {}  # the call ended without a table of its own: image("b", base)
        i += 1
    else:
        return {}
    keys: dict[str, int] = {}
    depth = 0
    for n in range(i, len(toks)):
        kind, text, tline = toks[n]
        if text in ("{", "(", "["):
            # ["key"] = at depth 1 is a key: look ahead for the pattern [ str ] =
            if text == "[" and depth == 1 and n + 3 < len(toks) and toks[n + 2][1] == "]" \
                    and toks[n + 3][1] == "=":
                key = _key_of(*toks[n + 1][:2])
                if key is not None:
                    keys.setdefault(key, toks[n + 1][2])
            depth += 1
        elif text in ("}", ")", "]"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and kind == "name" and n + 1 < len(toks) and toks[n + 1][1] == "=" \
                and toks[n - 1][1] in ("{", ",", ";"):
            keys.setdefault(text, tline)
    return keys


def key_assignments(source: str, key: str) -> list[int]:
    """Lines where `key = …` is written in a table anywhere in `source`."""
    toks = tokens(source)
    return [t[2] for n, t in enumerate(toks[1:-1], 1)
            if t[0] == "name" and t[1] == key and toks[n + 1][1] == "="
            and toks[n - 1][1] in ("{", ",", ";")]
