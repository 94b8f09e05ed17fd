"""The ways out of the Lua sandbox that were found open, each held shut: bytecode through the
string metatable, conversions that lifted the memory limit, and a C call (a backtracking
string pattern) that the instruction-count time limit never saw."""

from __future__ import annotations

import time

import pytest

from engitor.errors import UserError
from engitor.lua import isolate
from engitor.lua.runtime import MiB, Runtime
from engitor.recipe.lua_front import load_recipe


def run(code: str):
    rt = Runtime(time_limit=2.0)
    return rt.eval(code, rt.description_env(), "r.lua", time_limit=2.0)


@pytest.mark.parametrize("code", [
    'return ("").dump',
    'return ("x").dump',
    'local s = "" return s.dump',
    'return string.dump',
])
def test_no_string_dump_anywhere(code):
    assert run(code) == (None,)


@pytest.mark.parametrize("code", [
    'return load("\\27LJ\\2\\0", "x", "b")',
    'return load("\\27LJ\\2\\0")',
    'return loadstring("\\27LJ\\2\\0")',
    'local done return load(function() if done then return nil end done = true '
    'return "\\27LJ\\2\\0" end)',
    'return load("return 1", "x", "bt")',
])
def test_no_bytecode_is_loaded(code):
    fn, message = run(code)
    assert fn is None and isinstance(message, str), (fn, message)


def recipe(tmp_path, text: str):
    path = tmp_path / "r.lua"
    path.write_text(text)
    return path


def test_one_string_shared_by_many_settings_is_counted_each_time(tmp_path):
    # 100 references to one 1 MiB string are 100 MiB once written out: past a 32 MiB limit.
    path = recipe(tmp_path, """
        local s = string.rep("x", 1024 * 1024)
        local args = {}
        for i = 1, 100 do args[i] = s end
        image "a" { program = "/bin/true", args = args }
    """)
    with pytest.raises(UserError) as e:
        load_recipe(path, memory_limit=32 * MiB)
    assert "more than 32 MiB once written out" in str(e.value)
    assert str(e.value).startswith(f"{path}:") or str(path) in str(e.value)


def test_two_thousand_references_to_one_mebibyte_are_refused_quickly(tmp_path):
    path = recipe(tmp_path, """
        local s = string.rep("x", 1024 * 1024)
        local args = {}
        for i = 1, 2000 do args[i] = s end
        image "a" { program = "/bin/true", args = args }
    """)
    start = time.monotonic()
    with pytest.raises(UserError, match="more than 256 MiB once written out"):
        load_recipe(path)
    assert time.monotonic() - start < 30


def test_a_hooks_result_is_converted_under_the_budget(tmp_path):
    path = recipe(tmp_path, """
        image "a" { program = "/bin/true", before_build = function()
          local s, t = string.rep("x", 1024 * 1024), {}
          for i = 1, 100 do t[i] = s end
          return t
        end }
    """)
    (image,) = load_recipe(path, memory_limit=32 * MiB).images
    with pytest.raises(UserError, match="more than 32 MiB once converted"):
        image.hooks["before_build"].call({"name": "a"})


PATHOLOGICAL = 'local found = string.find(string.rep("a", 20000), ".-.-.-.-b")'


def test_a_long_c_call_in_the_description_is_stopped(tmp_path):
    path = recipe(tmp_path, PATHOLOGICAL + '\nimage "a" { program = "/bin/true" }\n')
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        load_recipe(path, time_limit=0.5)
    message = str(e.value)
    assert message.startswith(f"{path}: the recipe used more than 1.5 s of CPU"), message
    assert "\n" not in message
    assert time.monotonic() - start < 60  # the pattern alone runs for minutes


def test_a_long_c_call_in_a_hook_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(isolate, "HOOK_CPU_LIMIT", 1.0)
    path = recipe(tmp_path, 'image "a" { program = "/bin/true", before_build = function()\n'
                            + PATHOLOGICAL + "\nend }\n")
    (image,) = load_recipe(path).images
    with pytest.raises(UserError, match="a hook used more than 1 s of CPU"):
        image.hooks["before_build"].call({"name": "a"})


def test_print_in_a_recipe_still_reaches_stderr(tmp_path, capsys):
    path = recipe(tmp_path, 'print("hello from the recipe")\nimage "a" { program = "/bin/true" }')
    load_recipe(path)
    assert "hello from the recipe" in capsys.readouterr().err


def test_a_module_file_holding_bytecode_is_not_loaded(tmp_path):
    (tmp_path / "mod.lua").write_bytes(b"\x1bLJ\x02\x00bytecode")
    rt = Runtime(base_dir=tmp_path, time_limit=2.0)
    with pytest.raises(UserError):
        rt.eval('require("mod")', rt.description_env(), "r.lua", time_limit=2.0)
