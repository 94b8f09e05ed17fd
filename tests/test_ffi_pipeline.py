"""The C bridge's stages: preprocessing and splitting, the index, errors, the cache, and
`engitor c inspect`. Real compiler, real headers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import engitor.ffi as F
from engitor.cli import main
from engitor.errors import UserError
from engitor.ffi import cparse


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))


def test_split_cuts_top_level_declarations_and_keeps_their_place():
    text = '\n'.join([
        '# 1 "<stdin>"',
        '# 1 "/x/a.h" 1',
        'struct s { int a; int (*f)(int, char); } __attribute__((packed));',
        'int g(int x) { if (x) { return 1; } return 0; } int h(void);',
        '#define ANSWER 42',
        'typedef struct { char c; }',
        '  t;',
        '# 2 "<stdin>" 2',
    ])
    pre = cparse.split(text)
    assert [c.text for c in pre.chunks] == [
        "struct s { int a; int (*f)(int, char); } __attribute__((packed));",
        "int g(int x) { if (x) { return 1; } return 0; }",
        "int h(void);",
        "typedef struct { char c; }\n  t;",
    ]
    assert [c.is_funcdef for c in pre.chunks] == [False, True, False, False]
    assert [(c.file, c.line) for c in pre.chunks] == [("/x/a.h", 1), ("/x/a.h", 2),
                                                     ("/x/a.h", 2), ("/x/a.h", 4)]
    assert all(c.own for c in pre.chunks)
    assert pre.macros["ANSWER"].body == "42" and pre.macros["ANSWER"].line == 3


def test_strip_for_parser_removes_gnu_syntax_and_keeps_lines():
    text = 'int f(void) __attribute__((nonnull (1),\n "x;")) __asm__ ("" "g");\nchar *__restrict p;'
    out = cparse.strip_for_parser(text)
    assert "__attribute__" not in out and "__asm__" not in out and "__restrict" not in out
    assert out.count("\n") == text.count("\n")


def test_index_separates_the_api_from_what_includes_bring():
    req = F.request("zlib.h")
    api = {e.name: e for e in F.index(req)}
    everything = {e.name: e for e in F.index(req, everything=True)}
    assert api["crc32"].detail == "uLong crc32(uLong crc, const Bytef *buf, uInt len)"
    assert api["crc32"].where.startswith("zlib.h:")
    assert api["Z_OK"].detail == "0" and api["ZLIB_VERSION"].kind == "constant"
    assert api["z_stream"].kind == "type" and api["uLong"].where.startswith("zconf.h:")
    assert api["deflateInit"].kind == "macro" and "not callable" in api["deflateInit"].note
    # unistd.h comes with zconf.h: reachable, not listed as zlib's
    assert "getpid" not in api and not everything["getpid"].api


def test_private_parts_and_include_next_count_as_the_header():
    api = {e.name for e in F.index(F.request("stdint.h"))}   # gcc's wrapper #include_next's glibc's
    assert {"INT64_MAX", "UINT8_MAX", "uint32_t"} <= api
    consts = {e.name: e.detail for e in F.index(F.request("stdint.h"))}
    assert consts["INT64_MAX"] == str(2**63 - 1) and consts["UINT64_MAX"] == str(2**64 - 1)
    math = {e.name: e for e in F.index(F.request("math.h"))}   # functions live in bits/mathcalls.h
    assert "sin" in math and math["sin"].where.startswith("bits/mathcalls.h:")
    assert "long double" in math["sinl"].note


def test_header_not_found_lists_the_directories_searched(tmp_path):
    with pytest.raises(UserError) as e:
        F.unit(F.request("no/such.h", include_dirs=[str(tmp_path)]))
    assert "header 'no/such.h' not found" in str(e.value)
    assert str(tmp_path) in e.value.hint and "/usr/include" in e.value.hint


def test_parse_failure_names_the_header_line_and_the_define(tmp_path):
    h = tmp_path / "money.h"
    h.write_text("#include <stddef.h>\n\ntypedef struct {\n  _Decimal64 cents;\n} money;\n")
    with pytest.raises(UserError) as e:
        F.unit(F.request(str(h)))
    assert e.value.where == f"{h}:4"
    assert "near '_Decimal64'" in e.value.message
    assert 'define={"_Decimal64=double"}' in e.value.hint
    ok = F.unit(F.request(str(h), defines=["_Decimal64=double"]))
    assert ok["types"]["money"]["fields"][0][:2] == ["cents", "double cents"]


def test_preprocessor_errors_are_located(tmp_path):
    h = tmp_path / "e.h"
    h.write_text("int ok;\n#error this header needs FOO\n")
    with pytest.raises(UserError, match="this header needs FOO") as e:
        F.unit(F.request(str(h)))
    assert e.value.where == f"{h}:2"


def test_warm_include_is_a_cache_read(monkeypatch):
    req = F.request(["zlib.h", "stdio.h"])
    cold = F.lua_data(req)

    def refuse(*a, **k):
        raise AssertionError("the warm path ran a program")
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(cparse, "parse", refuse)
    assert F.lua_data(req) == cold


def test_cache_follows_every_included_file(tmp_path):
    inner = tmp_path / "inner.h"
    inner.write_text("int first(void);\n")
    outer = tmp_path / "outer.h"
    outer.write_text('#include "inner.h"\n#define OUTER 1\n')
    req = F.request(str(outer))
    assert set(F.unit(req)["functions"]) == {"first"}
    inner.write_text("int first(void);\nint second(int);\n")
    assert set(F.unit(req)["functions"]) == {"first", "second"}


def test_cache_notices_a_header_that_now_shadows_the_found_one(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "lib.h").write_text("int from_b(void);\n")
    req = F.request("lib.h", include_dirs=[str(a), str(b)])
    assert set(F.unit(req)["functions"]) == {"from_b"}
    (a / "lib.h").write_text("int from_a(void);\n")
    assert set(F.unit(req)["functions"]) == {"from_a"}


def test_flags_are_part_of_the_key(tmp_path):
    h = tmp_path / "f.h"
    h.write_text("#ifdef WIDE\ntypedef long num;\n#else\ntypedef int num;\n#endif\n")
    plain = F.unit(F.request(str(h)))["types"]["num"]["to"]
    wide = F.unit(F.request(str(h), defines=["WIDE"]))["types"]["num"]["to"]
    assert (plain, wide) == ("int num", "long num")


def test_library_candidates_find_versioned_objects():
    found = F.library_candidates("z")
    assert any(p.endswith("/libz.so") for p in found)
    assert any(".so.1" in p for p in found)
    assert F.library_candidates("no-such-library-anywhere") == []


def test_inspect_lists_functions_types_with_sizes_and_constants(capsys):
    assert main(["c", "inspect", "zlib.h", "--lib", "z"]) == 0
    out = capsys.readouterr().out
    assert "uLong crc32(uLong crc, const Bytef *buf, uInt len)" in out
    assert "z_stream" in out and "112 bytes" in out
    assert "Z_BEST_COMPRESSION     9" in out
    assert "deflateInit(strm, level)" in out


def test_inspect_json_and_checking_a_library(capsys):
    assert main(["c", "inspect", "sqlite3.h", "--lib", "sqlite3", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["unavailable"] == []
    rows = {r["name"]: r for r in listing["names"]}
    assert rows["sqlite3_open"]["kind"] == "function" and "note" not in rows["sqlite3_open"]
    assert rows["SQLITE_OK"]["detail"] == "0"
    assert rows["sqlite3_destructor_type"]["size"] == 8


def test_inspect_errors_are_one_line_exit_2(capsys):
    assert main(["c", "inspect", "nope.h"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("engitor: header 'nope.h' not found") and err.count("\n") == 1
    assert main(["c", "inspect", "zlib.h", "--lib", "nosuchlib"]) == 2
    assert "library 'nosuchlib' not found" in capsys.readouterr().err


def test_files_whose_stat_is_unchanged_are_not_hashed_again(tmp_path, monkeypatch):
    from engitor.ffi import cache
    h = tmp_path / "old.h"
    h.write_text("int f(void);\n")
    os.utime(h, (1_000_000_000, 1_000_000_000))
    req = F.request(str(h))
    F.unit(req)
    F._checked.clear()   # as in a new process

    def refuse(path):
        raise AssertionError(f"hashed {path}")
    with monkeypatch.context() as m:
        m.setattr(cache, "digest", refuse)
        assert set(F.unit(req)["functions"]) == {"f"}
    # a file changed since (new mtime) is hashed, and the change seen
    h.write_text("int g(void);\n")
    F._checked.clear()
    assert set(F.unit(req)["functions"]) == {"g"}


def test_inspect_lists_what_luajit_cannot_take(tmp_path, capsys):
    h = tmp_path / "atomic.h"
    h.write_text("extern _Atomic int counter;\nint ok(void);\n")
    assert main(["c", "inspect", str(h)]) == 0
    out = capsys.readouterr().out
    assert "int ok(void)" in out
    assert "declarations LuaJIT cannot take (1)" in out and "atomic.h:1:" in out
