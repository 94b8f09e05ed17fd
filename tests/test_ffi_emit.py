"""The Lua data chunk: literals LuaJIT reads back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lupa import luajit21

from engitor.ffi import emit


@pytest.fixture(scope="module")
def lua():
    return luajit21.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_strings_round_trip_through_luajit(lua, data):
    assert lua.eval(emit.lua_string(data)) == data


@settings(max_examples=300, deadline=None)
@given(v=st.integers(min_value=-(2**63), max_value=2**64 - 1), unsigned=st.booleans())
def test_integers_keep_their_value(lua, v, unsigned):
    if v < 0 and unsigned:
        v = -v
    text = emit.lua_int(v, 64, unsigned or v >= 2**63)
    back = lua.eval(f"tostring({text})").decode()
    if abs(v) <= 2**53:
        assert lua.eval(text) == v
    else:
        assert back.removesuffix("ULL").removesuffix("LL") == str(v)   # a 64-bit cdata


def test_floats_including_infinities(lua):
    for v in (0.1, -2.5e300, 1e-310):
        assert lua.eval(emit.lua_float(v)) == v
    assert lua.eval(emit.lua_float(float("inf"))) == float("inf")
    assert lua.eval(f"{emit.lua_float('nan')} ~= {emit.lua_float('nan')}") is True


def test_data_chunk_is_a_plain_table_constructor(lua):
    unit = {"headers": ["x.h"], "chunks": [{"text": "int f(int);", "file": "x.h", "line": 1}],
            "functions": {"f": {"sig": "int f(int)", "file": "x.h", "line": 1, "api": True}},
            "variables": {}, "types": {}, "enums": {"E1": {"value": 3, "api": True, "file": "x.h",
                                                              "line": 2, "enum": None}},
            "macros": {"S": {"kind": "string", "value": "a\x00b", "api": True, "file": "x.h",
                             "line": 3, "body": '"a\\0b"'},
                       "F": {"kind": "function", "params": ["a"], "body": "(a)", "api": True,
                             "file": "x.h", "line": 4}}}
    text = emit.lua_data(unit)
    data = lua.execute(text)
    assert data[b"cdef"][1] == b"int f(int);"
    assert data[b"const"][b"E1"] == 3 and data[b"const"][b"S"] == b"a\x00b"
    assert data[b"fmacro"][b"F"].startswith(b"F(a) (a)")
    assert list(data[b"api"].values()) == [b"E1", b"F", b"S", b"f"]
