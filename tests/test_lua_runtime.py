"""The runtime's API: scopes, evaluation, modules, output, and how other APIs plug in."""

from __future__ import annotations

import io

import pytest

from engitor.errors import UserError
from engitor.lua import api
from engitor.lua.runtime import MiB, Runtime
from engitor.recipe.lua_front import load_recipe

DESCRIPTION_GLOBALS = {
    "_G", "_VERSION", "assert", "bit", "collectgarbage", "coroutine", "error", "getmetatable",
    "image", "ipairs", "load", "loadstring", "math", "merge", "next", "os", "pairs", "pcall",
    "print", "rawequal", "rawget", "rawset", "require", "select", "setmetatable", "string",
    "table", "tonumber", "tostring", "type", "unpack", "xpcall",
}


def keys(rt: Runtime, env, expr: str = "_G") -> set[str]:
    (t,) = rt.eval(f"local k = {{}} for name in pairs({expr}) do k[#k + 1] = name end return k",
                   env, "keys.lua")
    return set(t.values())


def test_the_description_scope_is_exactly_this(tmp_path):
    rt = Runtime(base_dir=tmp_path)
    env = rt.description_env()
    assert keys(rt, env) == DESCRIPTION_GLOBALS
    assert keys(rt, env, "os") == {"time", "clock", "date", "difftime", "getenv"}
    assert "dump" not in keys(rt, env, "string")


def test_the_script_scope_adds_fs_log_sh_and_c(tmp_path):
    rt = Runtime(base_dir=tmp_path)
    env = rt.script_env()
    assert keys(rt, env) - DESCRIPTION_GLOBALS == {"fs", "log", "sh", "c"}
    assert rt.eval('return sh.echo("from", "sh")', env, "x.lua") == ("from sh",)
    assert rt.eval('return tonumber(c.include("stdlib.h").abs(-5))', env, "x.lua") == (5,)


def test_other_modules_install_apis_through_script_apis(tmp_path):
    def install(lua, env):
        env.vm = api.table_of(lua, {"hello": lambda who: f"hello {who}"}, version=3)

    rt = Runtime(base_dir=tmp_path, script_apis=(install, "engitor.lua.api.no_such_module"))
    env = rt.script_env()
    assert rt.eval('return vm.hello("world"), vm.version, sh', env, "x.lua") == \
        ("hello world", 3, None)
    assert rt.eval("return vm", rt.description_env(), "x.lua") == (None,)


def test_eval_returns_every_result_and_call_takes_arguments(tmp_path):
    rt = Runtime(base_dir=tmp_path)
    env = rt.description_env()
    assert rt.eval("return 1, nil, 'x', nil", env, "x.lua") == (1, None, "x", None)
    assert rt.eval("", env, "x.lua") == ()
    (f,) = rt.eval("return function(a, b) return a .. b, #a end", env, "x.lua")
    assert rt.call(f, "ab", "cd") == ("abcd", 2)


def test_print_goes_to_the_runtime_stream_and_log_to_stderr(tmp_path, capsys):
    out = io.StringIO()
    rt = Runtime(base_dir=tmp_path, out=out)
    rt.eval('print("a", 1, nil, true)', rt.description_env(), "x.lua")
    assert out.getvalue() == "a\t1\tnil\ttrue\n"
    env = rt.script_env(label="web")
    rt.eval('log.info("built %d files", 3) log.warn("careful") log.info("plain", 1)', env, "x.lua")
    assert capsys.readouterr().err == "[web] built 3 files\n[web] warning: careful\n[web] plain 1\n"


def test_is_incomplete_tells_a_repl_to_read_more(tmp_path):
    rt = Runtime(base_dir=tmp_path)
    assert rt.is_incomplete("function f()")
    assert rt.is_incomplete("local t = {")
    assert rt.is_incomplete("x = = 1") is False
    assert rt.is_incomplete("return 1") is False
    assert rt.is_incomplete("return )") is False


def test_modules_come_from_the_recipe_folder_then_engitors_lua_folder(tmp_path):
    recipe_dir, lua_dir = tmp_path / "r", tmp_path / "l"
    recipe_dir.mkdir()
    lua_dir.mkdir()
    (recipe_dir / "both.lua").write_text("return 'recipe'")
    (lua_dir / "both.lua").write_text("return 'engitor'")
    (lua_dir / "only.lua").write_text("return 'engitor only'")
    for name in ("sandbox.lua", "dsl.lua"):
        (lua_dir / name).write_text((Runtime().lua_dir / name).read_text())
    rt = Runtime(base_dir=recipe_dir, lua_dir=lua_dir)
    env = rt.description_env()
    assert rt.eval('return require "both", require "only"', env, "x.lua") == \
        ("recipe", "engitor only")


def test_each_scope_has_its_own_module_cache(tmp_path):
    (tmp_path / "state.lua").write_text("return { n = 0 }")
    rt = Runtime(base_dir=tmp_path)
    a, b = rt.description_env(), rt.description_env()
    rt.eval('local s = require "state" s.n = s.n + 1', a, "a.lua")
    assert rt.eval('return require("state").n', a, "a.lua") == (1,)
    assert rt.eval('return require("state").n', b, "b.lua") == (0,)


def test_a_module_that_requires_itself(tmp_path):
    (tmp_path / "loop.lua").write_text('return require "loop"')
    rt = Runtime(base_dir=tmp_path)
    with pytest.raises(UserError, match="module 'loop' requires itself"):
        rt.eval('require "loop"', rt.description_env(), "x.lua")


def test_limits_apply_to_descriptions_and_are_lifted_for_scripts(tmp_path):
    rt = Runtime(base_dir=tmp_path, memory_limit=40 * MiB)
    assert rt.lua.get_max_memory() == 40 * MiB
    rt.eval("x = 1", rt.description_env(), "d.lua", time_limit=1)
    assert rt.lua.eval("jit.status()")[0] is True  # the JIT is back on after a guarded run
    rt.script_env()
    assert rt.lua.get_max_memory() > 1 << 40


def test_declarations_close_after_reading(tmp_path):
    (tmp_path / "r.lua").write_text("""
        image "a" { program = "./p", before_build = function() image "b" { program = "./q" } end }
    """)
    (image,) = load_recipe(tmp_path / "r.lua").images
    with pytest.raises(UserError) as e:
        image.hooks["before_build"].call({"name": "a"})
    assert "image() declares images while the recipe is read; it cannot be called from a hook" \
        in str(e.value)
    assert str(e.value).startswith(f"{tmp_path / 'r.lua'}:2: before_build of image 'a': ")


def test_hooks_see_the_recipes_globals_with_the_script_apis(tmp_path):
    (tmp_path / "r.lua").write_text("""
        function write_motd(text) fs.write("/etc/motd", text) end
        local greeting = "hi"
        image "a" { program = "./p", before_build = function(ctx) write_motd(greeting) end }
    """)
    (image,) = load_recipe(tmp_path / "r.lua").images
    staging = tmp_path / "staging"
    staging.mkdir()
    assert image.hooks["before_build"].call({"name": "a", "staging": str(staging)}) is None
    assert (staging / "etc/motd").read_text() == "hi"


def test_long_file_names_are_shown_whole(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "recipe-with-a-long-name.lua"
    deep.parent.mkdir(parents=True)
    deep.write_text('image "x" {\n  nope = 1 }')
    with pytest.raises(UserError) as e:
        load_recipe(deep)
    assert str(e.value).startswith(f"{deep}:2: unknown setting 'nope'")
