"""`log`: messages from hooks, on stderr, marked with the image they come from.

    log.info("copied %d files", n)   log.warn(…)   log.error(…)   log.debug(…)

When the first of several arguments holds a '%' it is a `string.format` pattern; otherwise the
arguments are printed with `tostring`, separated by spaces. `log.debug` prints only when ENGITOR_DEBUG is set.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from engitor.lua.api import expose

LEVELS = ("debug", "info", "warn", "error")

# Formatting happens in Lua (tostring and string.format know Lua values); Python only writes.
_LUA = """
local emit = ...
local select, tostring, type, format, find = select, tostring, type, string.format, string.find
local function message(...)
  local n = select("#", ...)
  if n > 1 and type((...)) == "string" and find((...), "%", 1, true) then return format(...) end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  return table.concat(parts, " ")
end
local log = {}
for _, level in ipairs({"debug", "info", "warn", "error"}) do
  log[level] = function(...) emit(level, message(...)) end
end
return log
"""


def install(lua: Any, env: Any, *, label: str = "", stream: Any = None) -> None:
    prefix = f"[{label}] " if label else ""

    def emit(level: str, text: str) -> None:
        if level == "debug" and not os.environ.get("ENGITOR_DEBUG"):
            return
        tag = {"warn": "warning: ", "error": "error: "}.get(level, "")
        out = stream or sys.stderr
        out.write(f"{prefix}{tag}{text}\n")
        out.flush()

    make = lua.eval("function(src, emit) return assert(load(src, '=engitor/log'))(emit) end")
    env.log = make(_LUA, expose(lua, emit))
