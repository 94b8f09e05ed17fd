"""Lua's keywords are said once in Python (engitor/luasyntax.py) and once in Lua (the shell's
completion, lua/shell.lua, which cannot import Python): the two agree with LuaJIT itself."""

from __future__ import annotations

import re

from lupa import luajit21

from engitor import LUA_DIR
from engitor.luasyntax import KEYWORDS, is_name


def test_the_lua_side_lists_the_same_keywords():
    text = (LUA_DIR / "shell.lua").read_text()
    m = re.search(r'for w in \(("[^)]*)\):gmatch', text, re.S)
    assert m, "lua/shell.lua's keyword list moved"
    words = "".join(re.findall(r'"([^"]*)"', m.group(1))).split()
    assert frozenset(words) == KEYWORDS


def test_keywords_are_what_luajit_refuses_as_names():
    lua = luajit21.LuaRuntime()
    for word in sorted(KEYWORDS - {"goto"}):
        compiled = lua.execute(f"return (load('local {word} = 1')) ~= nil")
        assert compiled is False, word
        assert not is_name(word)
    # LuaJIT 2.1 takes goto as a name too, but Lua 5.2 on reserves it: engitor never writes it
    # as one, so its text stays valid Lua everywhere.
    assert "goto" in KEYWORDS and not is_name("goto")
    assert lua.execute("return (load('local gotox = 1')) ~= nil") is True
    assert is_name("gotox") and not is_name("1x") and not is_name("a-b")
