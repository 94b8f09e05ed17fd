-- The recipe DSL. TRUSTED: loaded by engitor.lua.runtime with LuaJIT's real globals, so it can
-- read the caller's line with debug.getinfo; recipes see only the functions it returns.
--
--   image "web" { program = "./server", ports = {8080} }
--   image("web", { program = "./server" })
--   image { name = "web", program = "./server" }
--   package "python3" { debs = {"python3"}, program = "/usr/bin/python3" }   (packages/*.lua)
--
-- Declarations are recorded (a deep copy of the settings as they were at the call, with the
-- call's file and line); validation happens in Python against the settings table.

local error, type, next, rawget, select, pcall, tostring, setmetatable =
      error, type, next, rawget, select, pcall, tostring, setmetatable
local string_format, find, gsub, byte = string.format, string.find, string.gsub, string.byte
local concat, floor, huge = table.concat, math.floor, math.huge
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
    -- tostring() only what cannot carry a recipe's __tostring.
    local name = (type(k) == "string" or type(k) == "number") and tostring(k) or "<" .. type(k) .. ">"
    out[k] = snapshot(v, seen, depth + 1, path == "" and name or path .. "." .. name)
  end
  seen[value] = nil
  return out
end

-- Record one declaration into `context` ({decls = {...}, open = bool}). `level` is the stack
-- level of the recipe's call, seen from here. `kind` is what is declared: "image" (recipes) or
-- "package" (runtime package recipes, packages/NAME.lua).
local function declare(context, kind, name, settings, level)
  if not context.open then
    error(string_format("%s() declares %ss while the recipe is read; it cannot be called from "
                        .. "a hook", kind, kind), level)
  end
  if type(name) ~= "string" then
    error(string_format("%s: expected a name (a string), got a %s; write %s \"%s\" { … }",
                        kind, type(name), kind, kind == "image" and "web" or "python3"), level)
  end
  if type(settings) ~= "table" then
    error(string_format("%s %q: expected a table of settings, got a %s; write %s %q { … }",
                        kind, name, type(settings), kind, name), level)
  end
  local info = getinfo(level, "Sl")
  local ok, copy = pcall(snapshot, settings, {}, 0, "")
  if not ok then error(string_format("%s %q: %s", kind, name, tostring(copy)), level) end
  local decls = context.decls
  decls[#decls + 1] = { name = name, settings = copy, source = info.source,
                        line = info.currentline, kind = kind }
end

-- `image` or `package` in its three spellings. Never tail-call declare(): a tail call would
-- drop the recipe's frame from the stack.
local function declarer(context, kind)
  return function(a, b)
    if type(a) == "table" and b == nil then
      local name = rawget(a, "name")
      if name == nil then
        error(string_format("%s { … }: the table needs a name = \"…\" (or write %s \"%s\" { … })",
                            kind, kind, kind == "image" and "web" or "python3"), 2)
      end
      local settings = {}
      for k, v in next, a do
        if k ~= "name" then settings[k] = v end
      end
      declare(context, kind, name, settings, 3)
      return nil
    end
    if b ~= nil or type(a) ~= "string" then
      declare(context, kind, a, b, 3)
      return nil
    end
    return function(settings)
      declare(context, kind, a, settings, 3)
      return nil
    end
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

-- A new declaration context: returns the functions the description scope gets, the list the
-- declarations go to, and a function that closes the context (hooks run after it).
function M.new()
  local context = { decls = {}, open = true }
  local api = { image = declarer(context, "image"), merge = merge,
                package = declarer(context, "package") }
  local function close() context.open = false end
  return api, context.decls, close
end

-- Declarations -> one JSON text for Python (one crossing instead of one per value, which is
-- what makes a thousand images cheap). Tables with keys 1..n are arrays, tables with string
-- keys objects; what JSON cannot say is an array starting with null, which Lua data never
-- produces (a sequence holds no nil): [null, "fn", i] is functions[i], [null, "pairs", […]]
-- a table with other keys, [null, "key", "table"] a key that is a table (or function). Strings go as their bytes; Python checks their UTF-8.
local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape(c) return ESCAPES[c] or string_format("\\u%04x", byte(c)) end

local function quote(s)
  if find(s, '[%c"\\]') then s = gsub(s, '[%c"\\]', escape) end
  return '"' .. s .. '"'
end

-- `limit` caps the bytes of the text: the same string held by many tables is one string in
-- Lua but a copy each time in the text (2,000 references to 1 MiB would be 2 GB); past it,
-- export returns nil and a message.
local TOO_BIG = {}

-- The encoder's state: the text's parts (out, n), the functions met (functions[i] is what
-- [null,"fn",i] names), the bytes charged against `limit`, and each string's quoted form.
local Encoder = {}
Encoder.__index = Encoder

-- Charged before the work: quoting a string scans it.
function Encoder:charge(count)
  self.bytes = self.bytes + count
  if self.bytes > self.limit then error(TOO_BIG, 0) end
end

function Encoder:put(s)
  local n = self.n + 1
  self.n = n
  self.out[n] = s
end

-- A table: [] when empty, an array for keys 1..n, an object for string keys, else pairs.
function Encoder:table(t)
  self:charge(2)
  local count, strings = 0, true
  for k in next, t do
    count = count + 1
    if type(k) ~= "string" then strings = false end
  end
  if count == 0 then return self:put("[]") end
  if strings then return self:object(t) end
  for i = 1, count do
    if t[i] == nil then return self:pairs(t) end
  end
  self:put("[")
  for i = 1, count do
    if i > 1 then self:put(",") end
    self:value(t[i])
  end
  self:put("]")
end

-- Every key and value of t through item(self, k, v), comma-separated, between open and close.
function Encoder:each(t, open, close, item)
  self:put(open)
  local first = true
  for k, v in next, t do
    if not first then self:put(",") end
    first = false
    item(self, k, v)
  end
  self:put(close)
end

function Encoder:member(k, v)
  self:put(quote(k)) self:put(":") self:value(v)
end

function Encoder:pair(k, v)
  self:put("[")
  -- Never tostring() a recipe's table here: its __tostring would run unguarded.
  local kind = type(k)
  if kind == "table" or kind == "function" then self:put('[null,"key","' .. kind .. '"]')
  else self:value(k) end
  self:put(",") self:value(v) self:put("]")
end

function Encoder:object(t) self:each(t, "{", "}", Encoder.member) end
function Encoder:pairs(t) self:each(t, '[null,"pairs",[', "]]", Encoder.pair) end

function Encoder:number(v)
  self:charge(8)
  if v ~= v then self:put("NaN")
  elseif v == huge then self:put("Infinity")
  elseif v == -huge then self:put("-Infinity")
  elseif v == floor(v) and v > -2^53 and v < 2^53 then self:put(string_format("%d", v))
  else self:put(string_format("%.17g", v)) end
end

function Encoder:value(v)
  local kind = type(v)
  if kind == "string" then
    self:charge(#v + 2)
    local q = self.quoted[v]
    if not q then q = quote(v) self.quoted[v] = q end
    self:put(q)
  elseif kind == "number" then self:number(v)
  elseif kind == "boolean" then self:put(v and "true" or "false")
  elseif kind == "function" then
    local functions = self.functions
    functions[#functions + 1] = v
    self:put('[null,"fn",' .. #functions .. "]")
  else self:table(v) end
end

function Encoder:declarations(decls)
  self:put("[")
  for i = 1, #decls do
    local d = decls[i]
    if i > 1 then self:put(",") end
    self:put("[") self:value(d.name) self:put(",") self:value(d.source) self:put(",")
    self:value(d.line) self:put(",") self:value(d.settings) self:put(",") self:value(d.kind)
    self:put("]")
  end
  self:put("]")
end

function M.export(decls, limit)
  local e = setmetatable({ out = {}, n = 0, functions = {}, bytes = 0, limit = limit,
                           quoted = {} }, Encoder)  -- a string used many times is scanned once
  local ok, err = pcall(e.declarations, e, decls)
  if not ok then
    if err == TOO_BIG then return nil, e.functions, e.bytes end
    error(err, 0)
  end
  return concat(e.out), e.functions
end

return M
