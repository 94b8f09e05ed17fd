"""Every header profile the C bridge ships works here: its headers preprocess and parse, its
declarations load into LuaJIT, its libraries load, and its `check` function answers when
called through the FFI. Plus how a profile combines with c.include's own options."""

from __future__ import annotations

import ctypes
import ctypes.util
import zlib

import pytest

from engitor.ffi import profiles
from engitor.lua.api import as_bytes

NAMES = sorted(profiles.profiles())


@pytest.fixture()
def lua(rt):
    env = rt.script_env()

    def run(code: str, *args):
        values = rt.call(rt.compile(code, env, "test.lua"), *args)
        return values[0] if isinstance(values, tuple) and len(values) == 1 else values
    return run


def test_the_promised_libraries_have_profiles():
    assert {"glibc", "zlib", "sqlite3", "libcurl", "libvirt"} <= set(NAMES)
    for p in profiles.profiles().values():
        assert p.headers and p.package and p.check, p


@pytest.mark.parametrize("name", NAMES)
def test_profile_includes_loads_and_calls(lua, name):
    p = profiles.get(name)
    assert p is not None
    answered = lua(f'local ns = c.include("{name}"); local r = ns.{p.check}(); '
                   'return type(ns.' + p.check + '), tostring(r ~= nil)')
    assert tuple(answered) == ("cdata", "true")


def test_profile_flags_and_library_are_the_real_ones(lua):
    # the header's version macro (through the profile's preprocessor run) is the one Python's
    # zlib was built with, and the loaded library's answer to zlibVersion() matches it
    assert as_bytes(lua('return c.include("zlib").ZLIB_VERSION')).decode() == zlib.ZLIB_VERSION
    z = ctypes.CDLL(ctypes.util.find_library("z"))
    z.zlibVersion.restype = ctypes.c_char_p
    assert z.zlibVersion().decode().split(".")[:2] == zlib.ZLIB_VERSION.split(".")[:2]
    # glibc's profile defines _GNU_SOURCE: GNU-only declarations are there
    assert lua('return type(c.include("glibc").get_current_dir_name)') == "cdata"


def test_lib_given_replaces_the_profiles(lua):
    with pytest.raises(Exception, match="library 'no-such-lib-x' not found"):
        lua('return c.include("zlib", {lib = "no-such-lib-x"})')


def test_a_header_name_is_never_taken_for_a_profile(lua):
    # "zlib.h" has a '.', so it is a header: the library is not loaded for it
    assert lua('local z = c.include("zlib.h"); return tostring(z.Z_OK)') == "0"


def test_unknown_profile_is_a_header_error(lua):
    with pytest.raises(Exception) as e:
        lua('return c.include("zlibb")')
    assert "zlibb" in str(e.value)
