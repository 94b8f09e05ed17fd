-- engitor's Lua sandbox. TRUSTED: engitor.lua.runtime loads this file with LuaJIT's real
-- globals and hands recipes only the environments built here. Everything a recipe can reach is
-- a plain table or an allow-listed function; the real globals (debug, jit, ffi, io, package)
-- stay upvalues of this file.
--
-- Loaded as a chunk that takes the Python helpers table and returns the module.

local py = ...

-- Capture everything we use before any recipe runs: recipes get copies, never these.
local assert, error, next, pairs, ipairs, select, type, tostring, rawget, rawset =
      assert, error, next, pairs, ipairs, select, type, tostring, rawget, rawset
local setmetatable, getmetatable, pcall, xpcall, load = setmetatable, getmetatable, pcall, xpcall, load
local string_format, string_byte = string.format, string.byte
local co_resume = coroutine.resume
local getinfo, sethook = debug.getinfo, debug.sethook
local jit_on, jit_off, collectgarbage = jit.on, jit.off, collectgarbage

-- Bytecode can break the VM's invariants, and string.dump is the way to make it. Every string
-- shares one metatable whose __index is this very `string` table, so ("").dump would reach it
-- even when the recipes' copy of `string` leaves it out: it goes from the real table. Nothing
-- trusted dumps functions.
string.dump = nil

local M = {}

-- Instructions between two checks of the time limit and of pending Ctrl-C. Count hooks do not
-- fire inside JIT-compiled traces, so guarded code runs with the JIT off (recipes' description
-- scope is cheap: it needs no JIT).
local HOOK_COUNT = 10000

-- The error object that ends guarded code; a table so no recipe can raise it by accident.
local TIMEOUT = setmetatable({}, { __tostring = function() return "time limit exceeded" end })
M.TIMEOUT = TIMEOUT

local state = {
  aborted = false,     -- once set, no pcall in recipe code can swallow the abort
  where = nil,         -- the last recipe line the hook saw ("file:line"), for memory errors
  user = {},           -- chunk sources ("@name") that belong to recipes
}

local function user_frame(level)
  -- The first stack frame at or above `level` that runs recipe code, as "name:line".
  while true do
    local info = getinfo(level, "Sl")
    if not info then return nil end
    if state.user[info.source] and info.currentline and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline
    end
    level = level + 1
  end
end

function M.add_user_source(source) state.user[source] = true end
function M.last_where() return state.where end

-- Start a guarded stretch: `now` is a Python function (a Python function, so a pending Ctrl-C
-- surfaces in it as KeyboardInterrupt) returning a monotonic time, called every HOOK_COUNT
-- instructions; with `seconds`, code still running after that long is stopped with TIMEOUT.
function M.guard(now, seconds)
  state.aborted, state.where = false, nil
  local deadline = seconds and (now() + seconds)
  if deadline then jit_off() end
  sethook(function()
    state.where = user_frame(2) or state.where
    local t = now()
    if deadline and t > deadline then
      state.aborted = true
      error(TIMEOUT, 0)
    end
  end, "", HOOK_COUNT)
end

function M.unguard()
  sethook()
  jit_on()
end

-- Raise again what recipe code must not catch: the time limit, or a Python BaseException
-- (Ctrl-C) that arrived as a userdata error object.
local function pass_aborts(ok, ...)
  if state.aborted then error(TIMEOUT, 0) end
  if not ok and type((...)) == "userdata" then error((...), 0) end
  return ok, ...
end

local function safe_pcall(f, ...) return pass_aborts(pcall(f, ...)) end
-- The recipe's message handler never sees an abort (nor the Python object of a Ctrl-C).
local function safe_xpcall(f, handler, ...)
  local function guarded(e)
    if state.aborted or type(e) == "userdata" then return e end
    return handler(e)
  end
  return pass_aborts(xpcall(f, guarded, ...))
end
local function safe_resume(co, ...) return pass_aborts(co_resume(co, ...)) end

-- Run `f` for the runtime: returns true, results… or false, message, where, kind where kind is
-- "timeout", "memory", "python" (the message is then the exception) or "error".
local where_failed
local function failed_at(e)
  where_failed = user_frame(2)
  return e
end

local function outcome(ok, ...)
  if ok then return true, ... end  -- varargs keep every result, trailing nils included
  local e, where = ..., where_failed
  if e == TIMEOUT or state.aborted then
    return false, "time limit exceeded", state.where or where, "timeout"
  end
  if e == "not enough memory" then
    collectgarbage()
    return false, e, where or state.where, "memory"
  end
  if type(e) == "userdata" then return false, e, where, "python" end
  if type(e) ~= "string" then
    e = string_format("error object is a %s value", type(e))
  end
  return false, e, where, "error"
end

function M.run(f, ...)
  where_failed = nil
  return outcome(xpcall(f, failed_at, ...))
end

local function copy(t, without)
  local out = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then out[k] = v end
  end
  return out
end

-- getmetatable("") would hand out the metatable every string shares with engitor's own code.
local function safe_getmetatable(v)
  if type(v) == "string" then
    error("the string metatable is not available to recipes", 2)
  end
  return getmetatable(v)
end

local GC_OPTIONS = { count = true, collect = true, step = true }
local function safe_collectgarbage(opt, arg)
  opt = opt or "collect"
  if not GC_OPTIONS[opt] then
    error(string_format("collectgarbage(%q) is not available to recipes", tostring(opt)), 2)
  end
  return collectgarbage(opt, arg)
end

-- Text chunks only (bytecode can break the VM's invariants), and in the caller's environment
-- unless one is given.
local function make_load(env)
  local function safe_load(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then
      return nil, "recipes may load only text chunks (mode 't')"
    end
    if type(chunk) == "string" and string_byte(chunk, 1) == 27 then
      return nil, "recipes may not load bytecode"
    end
    return load(chunk, name, "t", chunk_env or env)
  end
  local function safe_loadstring(s, name) return safe_load(s, name) end
  return safe_load, safe_loadstring
end

-- require: modules come from the recipe's folder and engitor's lua/ folder only (py.find_module
-- checks names and paths); each environment has its own cache, so a recipe never receives a
-- module instance loaded by engitor's trusted code.
local LOADING = {}
local function make_require(env)
  local loaded = {}
  return function(name)
    if type(name) ~= "string" then
      error(string_format("require: expected a module name, got a %s", type(name)), 2)
    end
    local have = loaded[name]
    if have == LOADING then
      error(string_format("module '%s' requires itself (a require loop)", name), 2)
    end
    if have ~= nil then return have end
    local chunkname, source = py.find_module(name)
    if not chunkname then error(source, 2) end
    local f, err = load(source, chunkname, "t", env)
    if not f then error(err, 0) end
    M.add_user_source(chunkname)
    loaded[name] = LOADING
    local ok, result = pcall(f, name)
    if not ok then
      loaded[name] = nil
      error(result, 0)
    end
    if result == nil then result = true end
    loaded[name] = result
    return result
  end
end

local BASE = {
  "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawset", "select",
  "setmetatable", "tonumber", "tostring", "type", "unpack", "_VERSION",
}

-- A fresh allow-listed environment. `print` is the runtime's (it writes where the runtime says).
function M.new_env(print)
  local env = {}
  for _, k in ipairs(BASE) do env[k] = _G[k] end
  env.pcall, env.xpcall = safe_pcall, safe_xpcall
  env.getmetatable = safe_getmetatable
  env.collectgarbage = safe_collectgarbage
  env.print = print
  env.string = copy(string, { dump = true })
  env.table = copy(table)
  env.math = copy(math)
  env.bit = copy(bit)
  env.coroutine = copy(coroutine)
  env.coroutine.resume = safe_resume
  env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
             getenv = os.getenv }
  env.load, env.loadstring = make_load(env)
  env.require = make_require(env)
  env._G = env
  return env
end

-- Compile recipe text in `env`; returns the function or nil, message.
function M.compile(source, chunkname, env)
  if string_byte(source, 1) == 27 then return nil, chunkname:sub(2) .. ": bytecode is not a recipe" end
  M.add_user_source(chunkname)
  return load(source, chunkname, "t", env)
end

-- print for recipes: Lua's own formatting (tostring, tabs), written by the runtime's `write`.
function M.make_print(write)
  local tostring, select, concat = tostring, select, table.concat
  return function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    write(concat(parts, "\t") .. "\n")
  end
end

-- Where a Lua function was defined, "name:line".
function M.where_of(f)
  local info = getinfo(f, "S")
  return info.short_src .. ":" .. info.linedefined
end

return M
