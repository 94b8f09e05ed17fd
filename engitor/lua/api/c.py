"""`c`: the C bridge in a Lua script scope (the logic is in engitor/ffi and lua/c.lua).

`install(lua, env)` sets `env.c`. Python is reached only through Lua closures over the three
functions below, each returning a plain Lua table {true, value} or {false, message}, so the
sandbox rule holds (no Python object reaches Lua) and a user's mistake arrives in Lua as a clean
error message, never a traceback.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable

from engitor import LUA_DIR
from engitor.errors import UserError, did_you_mean
from engitor.ffi import ensure, library_candidates, lua_data_for, profiles, request

_WRAP = "function(f) return function(...) return f(...) end end"
_STATE_KEY = "engitor.c.state"


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _strings(tbl) -> list[str]:
    if tbl is None:
        return []
    if isinstance(tbl, str | bytes):
        return [_text(tbl)]
    return [_text(v) for _, v in sorted(tbl.items(), key=lambda kv: kv[0])
            if isinstance(_, int)]


def guarded(lua, fn: Callable) -> object:
    """A Lua function calling `fn`; failures come back as {false, message}, never raised."""
    def call(*args):
        try:
            return lua.table(True, fn(*args))
        except UserError as e:
            return lua.table(False, str(e).encode())
        except Exception as e:   # our bug: readable in Lua; the traceback with ENGITOR_DEBUG
            if os.environ.get("ENGITOR_DEBUG"):
                traceback.print_exc()
            return lua.table(False, f"internal error in engitor ({type(e).__name__}: {e})".encode())
    return lua.eval(_WRAP)(call)


def module(lua):
    """A fresh `c` table for one Lua scope of `lua` (a lupa.luajit21.LuaRuntime)."""
    ffi = lua.require("ffi")

    def include(spec):
        """The entry's key, and the libraries of the profiles the headers select."""
        found = profiles.resolve(_strings(spec["headers"]), _strings(spec["define"]),
                                 _strings(spec["cflags"]))
        req = request(found.headers, include_dirs=_strings(spec["incdir"]),
                      defines=found.define, cflags=found.cflags)
        try:
            key = ensure(req)
        except UserError as e:
            raise profiles.missing(found, e) from None
        return lua.table_from({"key": key, "lib": lua.table_from(found.lib)})

    def data(key):
        chunk = lua.compile(lua_data_for(_text(key)), name=f"=[C data {_text(key)[:8]}]")
        return chunk()

    def libs(name, libdirs, only_given):
        dirs = _strings(libdirs)
        found = library_candidates(_text(name), dirs)
        if only_given:
            found = [p for p in found if any(p.startswith(d.rstrip("/") + "/") for d in dirs)]
        return lua.table_from(p.encode() for p in found)

    def suggest(word, names):
        hint = did_you_mean(_text(word), (_text(n) for n in names.values()))
        return hint.encode() if hint else None

    bridge = lua.table_from({"include": guarded(lua, include), "data": guarded(lua, data),
                             "libs": guarded(lua, libs), "suggest": guarded(lua, suggest)})
    # per Lua state (package.loaded is the trusted registry): what c.include declared to this
    # state's FFI, and the data tables of includes, shared by every scope of the state
    loaded = lua.globals().package.loaded
    state = loaded[_STATE_KEY]
    if state is None:
        state = loaded[_STATE_KEY] = lua.eval(
            "{declared = {}, typedefs = {}, data = setmetatable({}, {__mode = 'v'})}")
    factory = lua.execute((LUA_DIR / "c.lua").read_text(), ffi, bridge, state,
                          name="@lua/c.lua")
    return factory()


def install(lua, env) -> None:
    env["c"] = module(lua)


_DESCRIBE = """function(ns)
  local meta = type(ns) == "table" and getmetatable(ns)
  local data = type(meta) == "table" and meta.data
  if type(data) ~= "table" or type(data.api) ~= "table" or type(data.func) ~= "table" then
    return nil
  end
  local out = {}
  for _, k in ipairs(data.api) do
    local d = data.func[k] or data.var[k] or data.fmacro[k] or data.expr[k]
    if d == nil then
      local v = data.const[k]
      if v ~= nil then d = tostring(v)
      elseif data.cast[k] then d = "(" .. data.cast[k][1] .. ")" .. tostring(data.cast[k][2])
      elseif data.alias[k] then d = "= " .. data.alias[k]
      elseif data.typedef[k] then d = "type"
      else d = "constant" end
    end
    out[k] = d
  end
  return out
end"""


def describe(lua, value) -> dict[str, str] | None:
    """For the shell's completion and help: if `value` is a namespace from c.include, its API
    names, each with a one-line description (a signature with header:line, a constant's
    value, "type", a macro's text); None for anything else."""
    found = lua.eval(_DESCRIBE)(value)
    if found is None:
        return None
    return {_text(k): _text(v) for k, v in found.items()}
