-- The recipe DSL. TRUSTED: loaded by engitor.lua.runtime with LuaJIT's real globals, so it can
-- read the caller's line with debug.getinfo; recipes see only the functions it returns.
--
--   image "web" { program = "./server", ports = {8080} }
--   image("web", { program = "./server" })
--   image { name = "web", program = "./server" }
--
-- Declarations are recorded (a deep copy of the settings as they were at the call, with the
-- call's file and line); validation happens in Python against the settings table.

local error, type, next, rawget, select, pcall, tostring =
      error, type, next, rawget, select, pcall, tostring
local string_format = string.format
local getinfo = debug.getinfo

local M = {}

local MAX_DEPTH = 32

-- Values are copied with next(), never through metamethods, so what is recorded is exactly what
-- the table held when `image` was called (a table shared by several images may change later).
local PLAIN = { string = true, number = true, boolean = true, ["function"] = true }

local function snapshot(value, seen, depth, path)
  local kind = type(value)
  if PLAIN[kind] then return value end
  if kind ~= "table" then
    error(string_format("%s is a %s; settings are strings, numbers, booleans, tables or "
                        .. "functions", path, kind), 0)
  end
  if seen[value] then
    error(string_format("the settings refer to themselves (at %s)", path), 0)
  end
  if depth > MAX_DEPTH then
    error(string_format("the settings are nested too deeply (at %s)", path), 0)
  end
  seen[value] = true
  local out = {}
  for k, v in next, value do
    out[k] = snapshot(v, seen, depth + 1, path == "" and tostring(k) or path .. "." .. tostring(k))
  end
  seen[value] = nil
  return out
end

-- A new declaration context: returns the functions the description scope gets, and the list
-- the declarations go to.
function M.new()
  local decls = {}
  local open = true

  -- `level` is the stack level of the recipe's call, seen from here.
  local function declare(name, settings, level)
    if not open then
      error("image() declares images while the recipe is read; it cannot be called from a hook", level)
    end
    if type(name) ~= "string" then
      error(string_format("image: expected a name (a string), got a %s; write image \"web\" { … }",
                          type(name)), level)
    end
    if type(settings) ~= "table" then
      error(string_format("image %q: expected a table of settings, got a %s; write image %q { … }",
                          name, type(settings), name), level)
    end
    local info = getinfo(level, "Sl")
    local ok, copy = pcall(snapshot, settings, {}, 0, "")
    if not ok then error(string_format("image %q: %s", name, tostring(copy)), level) end
    decls[#decls + 1] = { name = name, settings = copy, source = info.source,
                          line = info.currentline }
  end

  -- Never tail-call declare(): a tail call would drop the recipe's frame from the stack.
  local function image(a, b)
    if type(a) == "table" and b == nil then
      local name = rawget(a, "name")
      if name == nil then
        error("image { … }: the table needs a name = \"…\" (or write image \"web\" { … })", 2)
      end
      local settings = {}
      for k, v in next, a do
        if k ~= "name" then settings[k] = v end
      end
      declare(name, settings, 3)
      return nil
    end
    if b ~= nil or type(a) ~= "string" then
      declare(a, b, 3)
      return nil
    end
    return function(settings)
      declare(a, settings, 3)
      return nil
    end
  end

  -- merge(a, b, …): a new table with the keys of every argument, later ones winning. Sharing
  -- settings between images: image "api" (merge(common, { ports = {8081} })).
  local function merge(...)
    local out = {}
    for i = 1, select("#", ...) do
      local t = select(i, ...)
      if t ~= nil then
        if type(t) ~= "table" then
          error(string_format("merge: argument %d is a %s, expected a table", i, type(t)), 2)
        end
        for k, v in next, t do out[k] = v end
      end
    end
    return out
  end

  local api = { image = image, merge = merge }
  local function close() open = false end
  return api, decls, close
end

return M
