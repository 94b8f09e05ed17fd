"""The LuaCATS stubs for editors are generated; the file in lua/ must match the generator."""

from __future__ import annotations

import re

from engitor.lua.runtime import LUA_DIR, Runtime
from engitor.recipe import luacats as meta
from engitor.recipe import settings

STUBS = LUA_DIR / "engitor-meta.lua"


def test_the_stub_file_is_current():
    assert STUBS.read_text() == meta.render(), \
        "regenerate: python -m engitor.recipe.luacats > lua/engitor-meta.lua"


def test_every_setting_hook_and_fs_function_is_annotated():
    text = STUBS.read_text()
    fields = set(re.findall(r"^---@field (\w+)\??", text, re.M))
    assert {s.name for s in settings.SETTINGS} <= fields
    assert set(settings.HOOKS) <= fields
    rt = Runtime()
    (names,) = rt.eval("local k = {} for n in pairs(fs) do k[#k + 1] = n end return k",
                       rt.script_env(), "x.lua")
    assert set(names.values()) <= fields | {"root", "writable", "src"}


def test_the_stubs_cannot_be_required_by_a_recipe():
    rt = Runtime()
    (ok,) = rt.eval('return (pcall(require, "engitor-meta"))', rt.description_env(), "x.lua")
    assert ok is False
