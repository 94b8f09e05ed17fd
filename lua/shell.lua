-- The Lua half of `engitor shell` (engitor/shell/ is the other half). TRUSTED: loaded with
-- LuaJIT's real globals; it hands the shell only the functions of the table it returns, never
-- a global. It reads values the way Lua sees them (metatables, rawget, debug info) so that
-- printing, completing and documenting a value never runs the user's code, except a
-- __tostring, which is the value's own way of showing itself and is called under pcall.
--
--   pretty(opts, n, ...)      the values as text: tables laid out to a width, depth and item
--                             limits, repeated tables numbered and cycles marked
--   members(root, path, sep)  the names reachable after `a.b.` or `a.b:` ("name\1kind\n"…)
--   find(root, value)         a dotted path from root to value, for help()
--   c_data(v)                 the data table of a C namespace made by c.include, or nil

local pairs, ipairs, next, type, tostring, tonumber, select, pcall =
      pairs, ipairs, next, type, tostring, tonumber, select, pcall
local rawget, rawequal, getmetatable, setmetatable, unpack = rawget, rawequal, getmetatable, setmetatable, unpack
-- The real metatable: a C namespace shows a public one (__metatable) that holds its index.
local metatable = debug.getmetatable
local fmt, rep, find, sub, gsub, byte = string.format, string.rep, string.find, string.sub, string.gsub, string.byte
local concat, sort, floor, huge = table.concat, table.sort, math.floor, math.huge
local getinfo = debug.getinfo

local M = {}

local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat "
          .. "return then true until while"):gmatch("%S+") do KEYWORDS[w] = true end
M.KEYWORDS = KEYWORDS

local function is_identifier(s)
  return type(s) == "string" and find(s, "^[%a_][%w_]*$") ~= nil and not KEYWORDS[s]
end

-- C namespaces (lua/c.lua) keep their index in the metatable's `data`.
local function c_data(v)
  if type(v) ~= "table" then return nil end
  local mt = getmetatable(v)
  local data = type(mt) == "table" and rawget(mt, "data")
  if type(data) == "table" and type(rawget(data, "api")) == "table"
      and type(rawget(data, "func")) == "table" then
    return data
  end
  return nil
end
M.c_data = c_data

-- ---------------------------------------------------------------------------------------------
-- pretty

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                  ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\v"] = "\\v" }

local function quote(s, limit)
  local cut = ""
  if limit and #s > limit then
    cut = fmt("…(%d bytes)", #s)
    s = sub(s, 1, limit)
  end
  s = gsub(s, '[%c\\"]', function(c) return ESCAPES[c] or fmt("\\%03d", byte(c)) end)
  return '"' .. s .. '"' .. cut
end

-- A top-level string with line breaks reads best as a long string.
local function long_string(s)
  if find(s, "[%z\1-\8\11\12\14-\31\127]") then return nil end
  local level = 0
  while find(s, "]" .. rep("=", level) .. "]", 1, true) do level = level + 1 end
  local eq = rep("=", level)
  -- Lua drops a newline right after the opening bracket: keep one that belongs to the text.
  local lead = sub(s, 1, 1) == "\n" and "\n" or ""
  return "[" .. eq .. "[" .. lead .. s .. "]" .. eq .. "]"
end

local function number(v)
  if v ~= v then return "0/0" end
  if v == huge then return "math.huge" end
  if v == -huge then return "-math.huge" end
  if v == floor(v) and v > -2^53 and v < 2^53 then return fmt("%d", v) end
  local short = fmt("%.14g", v)
  if tonumber(short) == v then return short end
  return fmt("%.17g", v)
end

local function function_text(f, names)
  local name = names and names[f]
  if name then return "<function " .. name .. ">" end
  local info = getinfo(f, "S")
  if info and info.what ~= "C" and sub(info.source, 1, 1) == "@" then
    return fmt("<function %s:%d>", info.short_src, info.linedefined)
  end
  return "<function builtin>"
end

-- Array items up to this long share lines in a table laid out on several lines.
local PACK_MAX = 24

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 4) < (TYPE_ORDER[tb] or 4) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function own_tostring(t)
  local mt = metatable(t)
  if type(mt) == "table" and rawget(mt, "__tostring") ~= nil then
    local ok, s = pcall(tostring, t)
    return ok and type(s) == "string" and s or nil
  end
  return nil
end

-- The keys of t in display order: the array part 1..n first, then the others sorted.
local function ordered_keys(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local rest = {}
  for k in next, t do
    if not (type(k) == "number" and k >= 1 and k <= n and k == floor(k)) then
      rest[#rest + 1] = k
    end
  end
  sort(rest, key_less)
  return n, rest
end

-- Pass 1 of pretty: the tables met more than once (within the depth and items shown) get a
-- number, so the second meeting prints <table N> (or <cycle N> inside itself).
local function shared_tables(value, depth_limit, item_limit)
  local seen, ids, count = {}, {}, 0
  local function scan(v, depth)
    if type(v) ~= "table" or depth > depth_limit or own_tostring(v) then return end
    if seen[v] then
      if not ids[v] then count = count + 1; ids[v] = count end
      return
    end
    seen[v] = true
    local n, rest = ordered_keys(v)
    local shown = 0
    for i = 1, n do
      shown = shown + 1
      if shown > item_limit then return end
      scan(rawget(v, i), depth + 1)
    end
    for _, k in ipairs(rest) do
      shown = shown + 1
      if shown > item_limit then return end
      scan(k, depth + 1)
      scan(rawget(v, k), depth + 1)
    end
  end
  scan(value, 1)
  return ids
end

-- A table's items over several lines: one entry a line, except runs of short array items,
-- which fill lines up to `width`.
local function multiline(label, items, packable, indent, width)
  local inner = indent + 2
  local lines, line = {}, nil
  for i, text in ipairs(items) do
    if packable[i] and line and inner + #line + #text + 2 <= width then
      line = line .. " " .. text .. ","
    else
      if line then lines[#lines + 1] = line end
      line = text .. ","
      if not packable[i] then lines[#lines + 1], line = line, nil end
    end
  end
  if line then lines[#lines + 1] = line end
  local pad = rep(" ", inner)
  return label .. "{\n" .. pad .. concat(lines, "\n" .. pad) .. "\n" .. rep(" ", indent) .. "}"
end

-- Pass 2 of pretty: the printer holds the options, the numbered tables (ids) and which tables
-- are being printed (active: a cycle) or were printed (done).
local Printer = {}
Printer.__index = Printer

-- The text of v on a line indented by `indent`, where it may take `room` more chars.
function Printer:render(v, indent, room, depth)
  depth = depth or 1
  local tv = type(v)
  if tv == "string" then return quote(v, depth > 1 and self.strlen or nil) end
  if tv == "number" then return number(v) end
  if tv == "function" then return function_text(v, self.names) end
  if tv ~= "table" then return tostring(v) end
  local own = own_tostring(v)
  if own then return own end
  local id = self.ids[v]
  if id and self.active[v] then return fmt("<cycle %d>", id) end
  if id and self.done[v] then return fmt("<table %d>", id) end
  return self:table(v, id and fmt("<%d>", id) or "", indent, room, depth)
end

function Printer:key_text(k, indent)
  if is_identifier(k) then return k end
  if type(k) == "string" then return "[" .. quote(k, self.strlen) .. "]" end
  return "[" .. self:render(k, indent, 1e9) .. "]"
end

function Printer:table(v, label, indent, room, depth)
  local n, rest = ordered_keys(v)
  local total = n + #rest
  if total == 0 then return label .. "{}" end
  if depth > self.depth_limit then return fmt("%s{…%d}", label, total) end
  self.active[v] = true
  local items, packable, multi, length = {}, {}, false, 0
  local inner, width, limit = indent + 2, self.width, self.item_limit
  local function add(text, short)
    items[#items + 1] = text
    length = length + #text + 2
    if find(text, "\n", 1, true) then multi = true
    else packable[#items] = short and #text <= PACK_MAX end
  end
  for i = 1, n do
    if #items >= limit then break end
    add(self:render(rawget(v, i), inner, width - inner - 1, depth + 1), true)
  end
  for _, k in ipairs(rest) do
    if #items >= limit then break end
    local key = self:key_text(k, inner)
    -- nested lines indent from this line's indentation, not from the column the value starts
    add(key .. " = " .. self:render(rawget(v, k), inner, width - inner - #key - 4, depth + 1))
  end
  if total > #items then add(fmt("…(%d more)", total - #items)) end
  self.active[v] = nil
  self.done[v] = true
  if not multi and length + #label + 2 <= room then
    return label .. "{" .. concat(items, ", ") .. "}"
  end
  return multiline(label, items, packable, indent, width)
end

local function pretty(value, opts)
  local depth_limit = opts.depth or 4
  if type(value) == "string" and depth_limit > 0 and find(value, "\n", 1, true) then
    local long = long_string(value)
    if long then return long end
  end
  local item_limit = opts.items or 50
  local printer = setmetatable({
    depth_limit = depth_limit, item_limit = item_limit, width = opts.width or 80,
    strlen = opts.strlen or 200, names = opts.names,
    ids = shared_tables(value, depth_limit, item_limit), active = {}, done = {},
  }, Printer)
  return printer:render(value, 0, printer.width)
end

-- Several values (a chunk's results) on one line each when one of them spans lines, else
-- separated by tabs, as Lua's own REPL does.
function M.pretty(opts, n, ...)
  local parts, multi = {}, false
  for i = 1, n do
    parts[i] = pretty((select(i, ...)), opts)
    if find(parts[i], "\n", 1, true) then multi = true end
  end
  return concat(parts, multi and "\n" or "\t")
end

-- ---------------------------------------------------------------------------------------------
-- completion

-- Follow one name the way indexing would, without running code: rawget, then __index tables.
local function lookup(v, name)
  for _ = 1, 16 do
    if type(v) ~= "table" then
      if type(v) == "string" and string[name] then return string[name] end
      return nil
    end
    local found = rawget(v, name)
    if found ~= nil then return found end
    local mt = metatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) ~= "table" then return nil end
    v = index
  end
  return nil
end
M.lookup = lookup

local function kind_of(v)
  local t = type(v)
  if t == "table" then
    if c_data(v) then return "C namespace" end
    local own = own_tostring(v)
    if own then return (gsub(sub(own, 1, 40), "\n.*", "")) end
  end
  return t
end

-- Names reachable from `v` by indexing: own keys, those of __index tables, a C namespace's API,
-- the string library for strings. `want_functions` for `a:` (methods).
local function member_names(v, prefix, want_functions, out, seen)
  local plen = #prefix
  local function consider(k, value, kind)
    if type(k) == "string" and not seen[k] and sub(k, 1, plen) == prefix and is_identifier(k) then
      if want_functions and type(value) ~= "function" and kind == nil then return end
      seen[k] = true
      out[#out + 1] = k .. "\1" .. (kind or kind_of(value))
    end
  end
  if type(v) == "string" then
    for k, f in pairs(string) do consider(k, f) end
    return
  end
  for _ = 1, 16 do
    if type(v) ~= "table" then return end
    for k, value in next, v do consider(k, value) end
    local data = c_data(v)
    if data then
      for _, k in ipairs(data.api) do
        local kind = data.func[k] or data.var[k] or (data.typedef[k] and "C type")
                     or (data.fmacro[k] and "macro " .. data.fmacro[k]) or "C constant"
        consider(k, nil, kind)
      end
      return
    end
    local mt = metatable(v)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) ~= "table" then return end
    v = index
  end
end

function M.members(root, path, prefix, want_functions)
  local v = root
  for _, name in ipairs(path) do
    v = lookup(v, name)
    if v == nil then return "" end
  end
  local out = {}
  member_names(v, prefix, want_functions, out, {})
  sort(out)
  return concat(out, "\n")
end

-- A VM object of lua/vm.lua (methods through __index, a name), told apart without running code.
function M.is_vm(v)
  return type(v) == "table" and type(lookup(v, "wait_port")) == "function"
    and type(rawget(v, "name")) == "string"
end

-- The value at a path (for help and completion of C namespaces), or nil.
function M.resolve(root, path)
  local v = root
  for _, name in ipairs(path) do
    v = lookup(v, name)
    if v == nil then return nil end
  end
  return v
end

-- ---------------------------------------------------------------------------------------------
-- help

-- Where `value` sits under `root`, as a list of names (breadth first, three levels deep).
function M.find(root, value)
  local queue, seen, head = {{root, {}}}, {[root] = true}, 1
  while queue[head] do
    local t, path = queue[head][1], queue[head][2]
    head = head + 1
    local keys = {}
    for k in next, t do if type(k) == "string" then keys[#keys + 1] = k end end
    sort(keys)
    for _, k in ipairs(keys) do
      local v = rawget(t, k)
      if rawequal(v, value) and k ~= "_G" then
        local out = {unpack(path)}
        out[#out + 1] = k
        return out
      end
    end
    if #path < 2 then
      for _, k in ipairs(keys) do
        local v = rawget(t, k)
        if type(v) == "table" and not seen[v] then
          seen[v] = true
          local p = {unpack(path)}
          p[#p + 1] = k
          queue[#queue + 1] = {v, p}
          local mt = metatable(v)
          local index = type(mt) == "table" and rawget(mt, "__index")
          if type(index) == "table" and not seen[index] then
            seen[index] = true
            queue[#queue + 1] = {index, p}
          end
        end
      end
    end
  end
  return nil
end

-- Every function reachable from root two levels down, by dotted name: the names pretty() shows.
function M.names(root, names)
  names = names or setmetatable({}, {__mode = "k"})
  for k, v in next, root do
    if type(k) == "string" and k ~= "_G" then
      if type(v) == "function" and names[v] == nil then names[v] = k end
      if type(v) == "table" and not c_data(v) then
        for k2, v2 in next, v do
          if type(k2) == "string" and type(v2) == "function" and names[v2] == nil then
            names[v2] = k .. "." .. k2
          end
        end
      end
    end
  end
  return names
end

-- Where a Lua function was defined: source name, first and last line; nil for builtins.
function M.defined(f)
  local info = getinfo(f, "S")
  if not info or info.what == "C" or sub(info.source, 1, 1) ~= "@" then return nil end
  return sub(info.source, 2), info.linedefined, info.lastlinedefined
end

return M
