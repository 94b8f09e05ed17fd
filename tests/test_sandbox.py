"""Sandbox escapes: every one must fail with an error, in the description scope and (where it
applies) in the script scope too."""

from __future__ import annotations

import pytest
from lupa import luajit21

from engitor.errors import UserError
from engitor.lua.runtime import Runtime


@pytest.fixture
def rt(tmp_path):
    return Runtime(base_dir=tmp_path, time_limit=2.0)


def fails(rt: Runtime, code: str, env=None, match: str | None = None) -> str:
    env = env if env is not None else rt.description_env()
    with pytest.raises(UserError) as e:
        rt.eval(code, env, "escape.lua", time_limit=2.0)
    if match:
        assert match in str(e.value), str(e.value)
    return str(e.value)


def both_scopes(rt: Runtime):
    return [rt.description_env(), rt.script_env()]


def test_no_python_global_anywhere(rt):
    for env in both_scopes(rt):
        fails(rt, "return python.eval('1+1')", env, "'python' is not defined")
        fails(rt, "return python.builtins.open", env, "'python' is not defined")
    # Not even in the real globals that engitor's trusted Lua uses.
    assert rt.lua.globals().python is None
    assert rt.lua.eval("package.loaded.python") is None


def test_nothing_reachable_is_a_python_object(rt):
    """Walk every table reachable from both scopes (and what their functions return): no
    userdata (the shape Python objects take in Lua), and no `__class__` chain to walk."""
    walk = """
        local seen, found = {}, {}
        local function visit(v, path, depth)
          if type(v) == "userdata" then found[#found + 1] = v end
          if type(v) ~= "table" or seen[v] or depth > 6 then return end
          seen[v] = true
          for k, x in pairs(v) do visit(x, path .. "." .. tostring(k), depth + 1) end
          local mt = getmetatable(v)
          if mt ~= nil then visit(mt, path .. ".<mt>", depth + 1) end
        end
        visit(_G, "_G", 0)
        if fs then
          visit(fs.stat("."), "fs.stat", 0)
          visit({pcall(fs.read, "missing")}, "fs.read error", 0)
          visit({pcall(fs.at, 42)}, "fs.at error", 0)
        end
        visit({pcall(require, {})}, "require error", 0)
        visit({pcall(image or print, 1, 2)}, "image error", 0)
        return found
    """
    for env in both_scopes(rt):
        (found,) = rt.eval(walk, env, "walk.lua")
        # A Python object comes back to Python as itself; genuine Lua userdata (the FFI's C
        # library namespace, c.C, in the script scope) stays a Lua value.
        for value in found.values():
            assert luajit21.lua_type(value) == "userdata", value
    for env in both_scopes(rt):
        for expr in ("print", "image or print", "require", "os.getenv", "string.format",
                     "fs and fs.read or print", "pcall"):
            for attr in ("__class__", "__mro__", "__subclasses__", "__globals__", "__dict__"):
                fails(rt, f"return ({expr}).{attr}", env)


def test_python_attributes_are_refused_even_if_an_object_leaked(rt):
    # Defence in depth: engitor hands Lua no Python objects, but if one ever slipped through,
    # the attribute filter refuses every attribute.
    rt.lua.globals().leaked = object()
    with pytest.raises(Exception, match="not available to Lua"):
        rt.lua.eval("leaked.__class__")
    with pytest.raises(Exception, match="not available to Lua"):
        rt.lua.eval("leaked.__class__.__mro__[1].__subclasses__()")


def test_io_and_os_execute(rt):
    for env in both_scopes(rt):
        fails(rt, 'return io.open("/etc/passwd"):read("*a")', env,
              "'io' is not available to recipes")
        fails(rt, 'return io.popen("id")', env, "'io' is not available")
        fails(rt, 'return os.execute("touch /tmp/pwned")', env,
              "'execute' is not available to recipes")
        for name in ("remove", "rename", "exit", "tmpname"):
            fails(rt, f'return os.{name}("/tmp/x")', env, f"'{name}' is not available")


def test_bytecode_cannot_be_loaded(rt):
    for env in both_scopes(rt):
        fails(rt, "return load(string.dump(function() return 1 end))()", env,
              "'dump' is not available to recipes")
        # Bytecode made elsewhere: refused by load, loadstring, and load's mode argument.
        assert rt.eval('return load("\\27LJ\\2\\0")', env, "x.lua")[1] == \
            "recipes may not load bytecode"
        assert rt.eval('return loadstring("\\27LJ\\2\\0")', env, "x.lua")[1] == \
            "recipes may not load bytecode"
        assert rt.eval('return load("return 1", "x", "b")', env, "x.lua")[1] == \
            "recipes may load only text chunks (mode 't')"
        fails(rt, "\x1bLJ\x02\x00", env, "bytecode is not a recipe")
        # Text chunks work, in the recipe's own environment.
        assert rt.eval('return load("return type(image), python")()', env, "x.lua")[1] is None


def test_ffi_jit_debug_and_package_are_out_of_reach(rt):
    for env in both_scopes(rt):
        fails(rt, 'return require "ffi"', env, "module 'ffi' not found")
        fails(rt, 'return require("jit").off()', env, "module 'jit' not found")
        fails(rt, 'return require "debug"', env, "module 'debug' not found")
        fails(rt, 'return package.loadlib("libc.so.6", "system")', env,
              "'package' is not available to recipes")
        fails(rt, "return debug.getregistry()", env, "'debug' is not available to recipes")
        fails(rt, "return debug.sethook()", env, "'debug' is not available")
        fails(rt, "return jit.on()", env, "'jit' is not available")
        fails(rt, "return ffi.C", env, "'ffi' is not available")
        fails(rt, 'return dofile("/etc/passwd")', env, "'dofile' is not available")
        fails(rt, 'return loadfile("/etc/passwd")', env, "'loadfile' is not available")
        fails(rt, "return newproxy(true)", env, "'newproxy' is not available")
        fails(rt, 'return module("x")', env, "'module' is not available")


def test_setfenv_tricks(rt):
    for env in both_scopes(rt):
        fails(rt, "return getfenv(0)", env, "'getfenv' is not available")
        fails(rt, "setfenv(1, {})", env, "'setfenv' is not available")
        fails(rt, "return getfenv(image or print).debug", env, "'getfenv' is not available")
        # _G is the recipe's own environment, not LuaJIT's globals.
        assert rt.eval("return _G == _G._G, rawget(_G, 'debug'), rawget(_G, 'jit')", env,
                       "x.lua")[0] is True
        assert rt.eval("return rawget(_G, 'debug') == nil and rawget(_G, 'jit') == nil", env,
                       "x.lua") == (True,)
        assert rt.eval("return getmetatable(_G)", env, "x.lua") == (None,)


def test_the_string_metatable_is_not_available(rt):
    for env in both_scopes(rt):
        fails(rt, 'getmetatable("").__index.upper = function() return "pwned" end', env,
              "the string metatable is not available to recipes")
        fails(rt, 'getmetatable("x").__index = {}', env, "string metatable")
        # The recipe's `string` is its own copy: changing it changes nothing outside.
        rt.eval("string.format = function() return 'pwned' end; string.rep = nil", env, "x.lua")
    assert rt.lua.eval('("%d"):format(7)') == "7"
    assert rt.lua.eval("string.format('%s', 'ok')") == "ok"
    fresh = rt.description_env()
    assert rt.eval('return ("x"):rep(3), string.format("%d", 5)', fresh, "y.lua") == ("xxx", "5")
    # engitor's own Lua keeps working: its errors still format.
    fails(rt, "image(42)", fresh, "image: expected a name (a string), got a number")


def test_recipes_cannot_change_engitors_trusted_functions(rt):
    env = rt.description_env()
    rt.eval("""
        table.insert = nil; pairs = nil; next = nil; type = function() return 'table' end
        tostring = nil; select = nil; error = nil; rawget = nil
    """, env, "x.lua")
    rt.eval('image "ok" { program = "./p" }', env, "y.lua")
    (decl,) = rt.declarations(env)
    assert decl.name == "ok" and decl.settings["program"] == "./p"


def test_garbage_collector_controls_are_limited(rt):
    fails(rt, 'collectgarbage("stop")', None, "is not available to recipes")
    assert rt.eval('return type(collectgarbage("count"))', rt.description_env(), "x.lua") == \
        ("number",)


def test_errors_from_engitor_functions_are_plain_strings(rt):
    env = rt.script_env()
    kinds = rt.eval("""
        local out = {}
        for _, f in ipairs({
          function() return fs.read("missing-file") end,
          function() return fs.write("x", "y") end,         -- read-only tree
          function() return fs.read({}) end,
          function() return require({}) end,
          function() return log.info("%d", "x") end,
        }) do
          local ok, e = pcall(f)
          out[#out + 1] = tostring(ok) .. ":" .. type(e)
        end
        return table.concat(out, " ")
    """, env, "x.lua")
    assert kinds == ("false:string false:string false:string false:string false:string",)


def test_modules_cannot_leave_their_folders(rt, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path.parent / "outside.lua").write_text("return 'escaped'")
    (tmp_path / "link.lua").symlink_to(tmp_path.parent / "outside.lua")
    env = rt.description_env()
    fails(rt, 'return require "link"', env, "leads outside")
    fails(rt, 'return require "..outside"', env, "is not valid")
    fails(rt, 'return require "/etc/passwd"', env, "is not valid")


def test_a_module_required_by_engitor_is_not_the_recipes(rt):
    # The trusted DSL and sandbox live in lua/; a recipe that requires them gets a fresh copy
    # running in its own environment, where what gives them power does not exist.
    env = rt.description_env()
    for name in ("sandbox", "dsl"):
        message = fails(rt, f'local m = require "{name}"', env)
        assert f"lua/{name}.lua:" in message and "'debug' is not available" in message
