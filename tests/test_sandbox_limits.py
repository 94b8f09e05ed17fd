"""Runaway recipes: endless loops and memory bombs are stopped within seconds, with one clear
line, however the recipe tries to hide them (pcall, xpcall, coroutines, modules, callbacks)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from engitor.errors import UserError
from engitor.lua.runtime import MiB, Runtime
from engitor.recipe.lua_front import load_recipe

LIMIT = 0.5


def stopped(tmp_path, code: str, **modules: str) -> tuple[str, float]:
    for name, text in modules.items():
        (tmp_path / f"{name}.lua").write_text(text)
    rt = Runtime(base_dir=tmp_path, time_limit=LIMIT, memory_limit=64 * MiB)
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        rt.eval(code, rt.description_env(), "loop.lua", time_limit=LIMIT)
    return str(e.value), time.monotonic() - start


TIMEOUT = "the recipe ran longer than 0.5 s and was stopped (hint: an endless loop?"


@pytest.mark.parametrize("code", [
    "while true do end",
    "local x = 0\nfor i = 1, math.huge do x = x + i end",
    "repeat local t = {} until false",
    "local function f() return f() end\nf()",                     # a proper tail call: no stack
    "while true do pcall(function() while true do end end) end",   # swallowing the error
    "while true do pcall(error, 'x') end",
    "xpcall(function() while true do end end, function() while true do end end)",
    "while true do xpcall(function() while true do end end, function(e) return e end) end",
    "local co = coroutine.wrap(function() while true do end end)\nco()",
    "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    'string.gsub(("x"):rep(100), ".", function() while true do end end)',
    "table.sort({3, 2, 1}, function(a, b) while true do end end)",
    'load("while true do end")()',
    "setmetatable({}, {__index = function(t, k) while true do end end}).x = nil; "
    "local y = setmetatable({}, {__index = function() while true do end end}).z",
])
def test_endless_loops_are_stopped(tmp_path, code):
    message, took = stopped(tmp_path, code)
    assert message.startswith("loop.lua:") and TIMEOUT in message, message
    assert took < LIMIT + 3


def test_the_error_points_at_the_looping_line(tmp_path):
    message, _ = stopped(tmp_path, "local n = 0\n\nwhile true do\n  n = n + 1\nend\n")
    assert message.startswith(("loop.lua:4: ", "loop.lua:3: "))


def test_a_loop_in_a_module_is_stopped_and_located_there(tmp_path):
    message, took = stopped(tmp_path, 'require "spin"', spin="local x = 0\nwhile true do x = x + 1 end\n")
    assert f"{tmp_path / 'spin.lua'}:2: {TIMEOUT}" in message
    assert took < LIMIT + 3


MEMORY = "the recipe used more than 64 MiB of memory and was stopped (hint: a table or string " \
         "that grows without end?)"


@pytest.mark.parametrize("code", [
    'local s = "x"\nwhile true do s = s .. s end',
    "local t = {}\nfor i = 1, 1e9 do t[i] = {i} end",
    'local t = {}\nfor i = 1, 1e9 do t[i] = ("y"):rep(1000) .. i end',
    'local s = ("x"):rep(2^30)',
    'local t = {} for i = 1, 30 do t[i] = ("z"):rep(2^22) .. i end local s = table.concat(t)',
])
def test_memory_bombs_are_stopped(tmp_path, code):
    # The line is known when the count hook saw the bomb running; a bomb of a few instructions
    # is located at its file.
    message, took = stopped(tmp_path, code)
    assert message.startswith("loop.lua") and message.endswith(MEMORY), message
    assert took < 10


def test_a_swallowed_memory_bomb_still_ends_by_the_time_limit(tmp_path):
    message, took = stopped(tmp_path, """
        while true do
          pcall(function() local s = "x" while true do s = s .. s end end)
        end
    """)
    assert TIMEOUT in message
    assert took < LIMIT + 5


def test_the_defaults_apply_to_recipes(tmp_path):
    (tmp_path / "spin.lua").write_text('image "x" { program = "./p" }\nwhile true do end\n')
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        load_recipe(tmp_path / "spin.lua")
    assert str(e.value).startswith(f"{tmp_path / 'spin.lua'}:2: the recipe ran longer than 3 s")
    assert time.monotonic() - start < 8


def test_hooks_have_the_memory_limit_but_not_the_wall_clock_limit(tmp_path):
    (tmp_path / "r.lua").write_text("""
        local function fill(n)
          local t = {}
          for i = 1, n do t[i] = ("x"):rep(40) .. i end   -- n = 1e6: ~60 MiB
          return #t
        end
        image "x" {
          program = "./p",
          before_build = function()
            local n = 0
            for i = 1, 1e8 do n = n + i % 3 end               -- JIT-compiled again
            return fill(1e4)
          end,
          after_build = function() return fill(1e6) end,
        }
    """)
    (image,) = load_recipe(tmp_path / "r.lua", time_limit=0.2, memory_limit=32 * MiB).images
    assert image.hooks["before_build"].call({"name": "x"}) == 10_000
    with pytest.raises(UserError, match=r"after_build of image 'x': .*out of memory"):
        image.hooks["after_build"].call({"name": "x"})


def test_ctrl_c_interrupts_running_lua_even_through_pcall(tmp_path):
    rt = Runtime(base_dir=tmp_path, time_limit=None)
    env = rt.script_env()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            # JIT off for this chunk: count hooks do not fire inside compiled traces.
            rt.eval("while true do pcall(function() local x = 0 for i = 1, 1e5 do x = x + i end "
                    "end) end", env, "spin.lua", time_limit=30)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5
    # The runtime is still usable afterwards.
    assert rt.eval("return 1 + 1", env, "after.lua") == (2,)


def test_metamethods_of_a_recipes_tables_never_run_unguarded(tmp_path):
    # Exporting declarations runs outside the time limit: it must not call into the recipe.
    (tmp_path / "r.lua").write_text("""
        local evil = setmetatable({}, { __tostring = function() while true do end end,
                                        __index = function() while true do end end,
                                        __len = function() while true do end end })
        image "x" { program = "./p", env = { [evil] = "v" } }
    """)
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        load_recipe(tmp_path / "r.lua")
    assert time.monotonic() - start < 5
    assert "env: keys must be strings, got a table" in str(e.value)


def test_a_hook_returning_a_cycle_is_a_clear_error(tmp_path):
    (tmp_path / "r.lua").write_text("""
        image "x" { program = "./p", before_build = function()
          local t = {} t.t = t return t
        end }
    """)
    (image,) = load_recipe(tmp_path / "r.lua").images
    with pytest.raises(UserError) as e:
        image.hooks["before_build"].call({"name": "x"})
    assert str(e.value).startswith(f"{tmp_path / 'r.lua'}:2: before_build of image 'x': the hook "
                                   "returned a value engitor cannot read: table nested too deeply "
                                   "(or refers to itself)")
