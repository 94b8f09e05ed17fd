"""The Lua-side APIs of the script scope, one module each (fs, log, sh, c, …).

Every module here has `install(lua, env)` (fs takes more, see fs.py): `lua` is the lupa
`LuaRuntime`, `env` the Lua table of the scope being built. The rules all of them follow, because
the sandbox depends on them:

- Never hand a Python object to Lua: only str/bytes/numbers/bools/None and Lua tables made with
  `to_lua`. Python functions go in through `expose`, which wraps them in a Lua closure and turns
  every exception into a plain Lua error string raised at the caller's line.
- Lua strings arrive in Python as `str`; bytes that are not UTF-8 come as lone surrogates
  (the runtime's codec is UTF-8 with surrogateescape), so `as_bytes(s)` gives the exact bytes.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from lupa import luajit21

from engitor.errors import UserError

ENCODING = "engitor_lua"


def _encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    return codecs.utf_8_encode(text, "surrogateescape")


def _decode(data: Any, errors: str = "strict") -> tuple[str, int]:
    return codecs.utf_8_decode(data, "surrogateescape", True)


def _search(name: str) -> codecs.CodecInfo | None:
    if name == ENCODING:
        return codecs.CodecInfo(_encode, _decode, name=ENCODING)
    return None


codecs.register(_search)


def as_bytes(text: str | bytes) -> bytes:
    """The exact bytes of a Lua string received as `str`."""
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


def is_table(value: Any) -> bool:
    return luajit21.lua_type(value) == "table"


def is_function(value: Any) -> bool:
    return luajit21.lua_type(value) == "function"


class ApiError(Exception):
    """Raised by an exposed function: becomes a Lua error with this message."""


class Multiple(tuple):
    """Return `Multiple((a, b))` from an exposed function to give Lua several results."""


def to_lua(lua: Any, value: Any) -> Any:
    """Python plain data -> Lua values: lists/tuples and dicts become (nested) Lua tables."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return lua.table_from([to_lua(lua, v) for v in value])
    if luajit21.lua_type(value) is not None:
        return value  # already a Lua value
    raise TypeError(f"refusing to hand a {type(value).__name__} to Lua")


def to_python(value: Any, *, depth: int = 0, budget: Budget | None = None) -> Any:
    """Lua values -> Python plain data: tables with keys 1..n become lists, others dicts; an
    empty table is an empty list. Functions and other Lua objects stay as they are.

    A Lua string held by many tables is one string in Lua and a copy for each in Python: with a
    `budget`, the bytes converted are counted and conversion stops (ApiError) past its limit."""
    if budget is None:
        budget = Budget(DEFAULT_BUDGET)
    if isinstance(value, str | bytes):
        budget.charge(len(value))
        return value
    if not is_table(value):
        return value
    if depth > 64:
        raise ApiError("table nested too deeply (or refers to itself)")
    items = []
    for k, v in value.items():  # lazily: each value is charged as soon as it is converted
        budget.charge(16 + (len(v) if isinstance(v, str | bytes) else 0)
                      + (len(k) if isinstance(k, str | bytes) else 0))
        items.append((k, v))
    if all(isinstance(k, int) and not isinstance(k, bool) for k, _ in items):
        keys = sorted(k for k, _ in items)
        if keys == list(range(1, len(keys) + 1)):
            return [_nested(v, depth, budget) for _, v in sorted(items, key=lambda kv: kv[0])]
    return {k: _nested(v, depth, budget) for k, v in items}


def _nested(value: Any, depth: int, budget: Budget) -> Any:
    # Strings were charged when their table was read.
    return to_python(value, depth=depth + 1, budget=budget) if is_table(value) else value


DEFAULT_BUDGET = 256 * 1024 * 1024


class Budget:
    """Bytes a conversion may still produce."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def charge(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise ApiError(f"the value comes to more than {self.limit // (1024 * 1024)} MiB "
                           "once converted (a large string used many times?)")


# Kept in the trusted package.loaded of each Lua state (recipes have no `package`).
_WRAPPER_KEY = "engitor.expose"
_WRAPPER = """
return function(pyfunc)
  local error = error
  -- finish is tail-called, so level 2 is the Lua code that called the API function.
  local function finish(ok, ...)
    if ok then return ... end
    error((...), 2)
  end
  return function(...) return finish(pyfunc(...)) end
end
"""


def expose(lua: Any, func: Callable[..., Any]) -> Any:
    """A Lua function calling `func`: its results go through `to_lua`; a `UserError`,
    `ApiError` or `OSError` becomes a Lua error with its message (blaming the Lua caller's line),
    a call with the wrong number of arguments says so, any other exception names itself.
    BaseExceptions (Ctrl-C) pass through untouched."""
    name = getattr(func, "__name__", "function")

    def call(*args: Any) -> Any:
        try:
            result = func(*args)
            if isinstance(result, Multiple):
                return (True, *(to_lua(lua, r) for r in result))
            return True, to_lua(lua, result)
        except (ApiError, UserError) as e:
            return False, str(e)
        except OSError as e:
            return False, os_message(e)
        except TypeError as e:
            if e.__traceback__ is not None and e.__traceback__.tb_next is None:
                # Raised binding the arguments: the Lua caller passed too many or too few.
                return False, f"{name}: wrong number of arguments ({len(args)} given)"
            return False, f"internal error in {name}: TypeError: {e}"
        except Exception as e:
            return False, f"internal error in {name}: {type(e).__name__}: {e}"

    loaded = lua.globals().package.loaded
    factory = loaded[_WRAPPER_KEY]
    if factory is None:
        factory = loaded[_WRAPPER_KEY] = lua.execute(_WRAPPER)
    return factory(call)


def os_message(e: OSError) -> str:
    text = e.strerror or str(e)
    if e.filename is not None:
        text = f"{e.filename}: {text}"
    return text


def table_of(lua: Any, funcs: Mapping[str, Callable[..., Any]], **values: Any) -> Any:
    """A Lua table of exposed functions (and plain values): how an API module is built."""
    table = lua.table()
    for name, func in funcs.items():
        table[name] = expose(lua, func)
    for name, value in values.items():
        table[name] = to_lua(lua, value)
    return table
