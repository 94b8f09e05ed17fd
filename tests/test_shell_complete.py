"""Tab completion (engitor/shell/complete.py) and the little Lua lexer behind it
(engitor/shell/lexer.py), over a real shell session."""

from __future__ import annotations

import io

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from engitor.shell import lexer
from engitor.shell.complete import LuaCompleter
from engitor.shell.session import Session


@pytest.fixture(scope="module")
def shell(tmp_path_factory) -> Session:
    root = tmp_path_factory.mktemp("cwd")
    (root / "recipes").mkdir()
    (root / "recipes/web.lua").write_text("")
    (root / "recipes/worker.lua").write_text("")
    (root / "readme.txt").write_text("")
    s = Session(out=io.StringIO(), err=io.StringIO(), cwd=root)
    s.execute("z = c.include('zlib.h', {lib = 'z'})")
    s.execute("calls = 0")
    s.execute("obj = setmetatable({name = 'o', count = 1}, {__index = {start = function() end, "
              "stop = function() end, limit = 10}})")
    s.execute("lazy = setmetatable({}, {__index = function(t, k) calls = calls + 1 end})")
    return s


def complete(shell: Session, text: str) -> list[tuple[str, str, int]]:
    event = CompleteEvent(completion_requested=True)
    return [(c.text, c.display_meta_text, c.start_position)
            for c in LuaCompleter(shell).get_completions(Document(text), event)]


def names(shell: Session, text: str) -> list[str]:
    return [n for n, _, _ in complete(shell, text)]


def test_globals_and_keywords(shell):
    assert names(shell, "pr") == ["print"]
    assert names(shell, "x = fu") == ["function"]
    assert set(names(shell, "")) >= {"fs", "sh", "c", "log", "engitor", "help", "exit", "z",
                                     "while", "print"}
    assert complete(shell, "(1 + pri") == [("print", "function", -3)]


def test_fields_of_modules_and_tables(shell):
    assert names(shell, "fs.re") == ["read", "remove"]
    assert names(shell, "engitor.r") == ["recipe", "run"]
    assert names(shell, "string.fo") == ["format"]
    assert names(shell, "a = 1 .. fs.is") == ["isdir", "isfile"]
    # engitor's own functions show their signatures
    assert complete(shell, "fs.rea") == [("read", "fs.read(path) -> string", -3)]
    assert complete(shell, "engitor.ru") == [("run", "engitor.run(target [, opts]) -> vm", -2)]


def test_methods_through_index_tables_and_only_functions_after_a_colon(shell):
    assert names(shell, "obj.") == ["count", "limit", "name", "start", "stop"]
    assert names(shell, "obj:") == ["start", "stop"]
    assert names(shell, "obj:st") == ["start", "stop"]


def test_completing_never_runs_the_users_code(shell):
    assert names(shell, "lazy.") == []
    assert names(shell, "lazy.a.b") == []
    shell.out.seek(0)
    shell.out.truncate()
    shell.execute("calls")
    assert shell.out.getvalue() == "0\n"


def test_c_namespace_members_with_signatures(shell):
    found = complete(shell, "z.crc3")
    assert [n for n, _, _ in found] == ["crc32", "crc32_combine", "crc32_combine_gen",
                                        "crc32_combine_op", "crc32_z"]
    assert found[0][1].startswith("uLong crc32(uLong crc, const Bytef *buf, uInt len)  -- zlib.h:")
    assert found[0][2] == -4
    assert ("Z_OK", "C constant", -3) in complete(shell, "z.Z_O")


def test_paths_inside_strings(shell):
    assert names(shell, 'engitor.run("rec') == ["ipes"]  # the rest of the name is inserted
    assert sorted(names(shell, 'engitor.run("recipes/w')) == ["eb.lua", "orker.lua"]
    assert names(shell, "fs.read('read") == ["me.txt"]
    assert names(shell, 'x = [[recipes/web') == [".lua"]


def test_programs_after_sh(shell):
    found = names(shell, "sh.ech")
    assert "echo" in found
    assert names(shell, "sh.pi")[:1] == ["pipe"]


def test_no_completion_inside_comments_or_after_numbers(shell):
    assert complete(shell, "-- fs.re") == []
    assert complete(shell, "x = 1.5") == []
    assert complete(shell, "f().x") == []


def test_two_thousand_names(shell):
    shell.execute("for i = 1, 2000 do _G['many' .. i] = i end")
    found = names(shell, "many")
    assert len(found) == 2000 and found[:3] == ["many1", "many10", "many100"]
    assert len(names(shell, "many19")) == 111


# -- the lexer ------------------------------------------------------------------------------------


def test_chain_at_end():
    assert lexer.chain_at_end("x = fs.re") == (["fs"], ".", "re")
    assert lexer.chain_at_end("vm:wa") == (["vm"], ":", "wa")
    assert lexer.chain_at_end("a . b . c") == (["a", "b"], ".", "c")
    assert lexer.chain_at_end("print(") == ([], "", "")
    assert lexer.chain_at_end("'a'..b") == ([], "", "b")
    for text in ("1.5", "a:b.c", "f().x", 'x = "fs.', "-- fs."):
        assert lexer.chain_at_end(text) is None, text


def test_open_string():
    assert lexer.open_string('x = "abc/d') == (5, "abc/d")
    assert lexer.open_string("x = [==[abc") == (8, "abc")
    assert lexer.open_string('x = "done"') is None
    assert lexer.open_string('x = "a\\"b') == (5, 'a\\"b')
    assert lexer.open_string('-- "not a string') is None


@pytest.mark.parametrize("code, kept", [
    ("local x = 1", "x = 1"),
    ("local x", "x = nil"),
    ("local a, b", "a, b = nil"),
    ("local a, b = 1, 2", "a, b = 1, 2"),
    ("local function f() local y = 2 end", "function f() local y = 2 end"),
    ("for i = 1, 2 do local z = i end local w = 3", "for i = 1, 2 do local z = i end w = 3"),
    ("while true do local q = 1 break end", "while true do local q = 1 break end"),
    ("repeat local r = 1 until r", "repeat local r = 1 until r"),
    ("if x then local q end local p = 'local s'", "if x then local q end p = 'local s'"),
    ("f = function() local v = 1 end", "f = function() local v = 1 end"),
])
def test_persist_locals(code, kept):
    assert lexer.persist_locals(code) == kept
