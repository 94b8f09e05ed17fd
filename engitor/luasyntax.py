"""Lua's lexical facts, for every stage that writes or reads Lua text: the C bridge emits data
tables, the YAML front end emits recipes, the shell lexes what is typed (lua/shell.lua, the
Lua side, keeps its own copy: it cannot import Python; tests/test_shell_complete.py compares)."""

from __future__ import annotations

import re

# Lua's reserved words. goto is reserved from Lua 5.2 on (LuaJIT 2.1 still takes it as a
# name): treating it as reserved keeps what engitor writes valid in every Lua.
KEYWORDS = frozenset(
    "and break do else elseif end false for function goto if in local nil not or repeat "
    "return then true until while".split())
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_name(text: object) -> bool:
    """A Lua identifier that is not a keyword (usable as `name = …` and `local name`)."""
    return isinstance(text, str) and NAME.fullmatch(text) is not None and text not in KEYWORDS
