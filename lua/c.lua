-- The Lua half of the C bridge (engitor/ffi is the other half): header data in, namespace out.
--
-- Loaded by engitor/lua/api/c.py with (ffi, bridge, state); returns a function making a fresh
-- `c` module. `bridge` holds Lua closures over allow-listed Python functions, each returning
-- {true, value} or {false, message}: no Python object ever reaches Lua code. `state` is shared
-- by every scope of one Lua state (what was declared, the data tables of includes).
--
-- A namespace resolves names lazily and caches what is immutable (functions, constants,
-- types) as plain fields, so `z.crc32(...)` in a loop is a table hit plus a JIT-compiled FFI
-- call. Includes into one Lua state compose: `state` (one per state) remembers what they
-- declared, and the FFI itself is asked about the rest (a complete struct, an enum constant),
-- so hand-written ffi.cdef text composes too.

local ffi, bridge, state = ...
local error, pcall, pairs, ipairs, type, tostring, tonumber = error, pcall, pairs, ipairs, type, tostring, tonumber
local setmetatable, getmetatable, rawset = setmetatable, getmetatable, rawset
local concat, sort = table.concat, table.sort
local fmt, find, match, gsub = string.format, string.find, string.match, string.gsub

local function call(fn, ...)
  local r = fn(...)
  if not r[1] then error(r[2], 3) end
  return r[2]
end

local function strip_where(msg)
  -- errors raised inside pcall'd FFI functions carry no useful Lua position
  return (gsub(tostring(msg), "^[^:]*:%d+: ", ""))
end

-- What an FFI state already has, so a second include skips it instead of failing with
-- "attempt to redefine".
local function complete(tag)
  local ok, size = pcall(ffi.sizeof, tag)
  return ok and size ~= nil
end

local declared, typedefs = state.declared, state.typedefs
local C = ffi.C
local function index_C(name) return C[name] end

local function has_const(name)
  return (pcall(index_C, name))
end

-- The declarations of `data` this state still needs, in order (parts), with their indexes in
-- data.cdef (index). A typedef that differs from the state's is refused into `failed`.
local function needed(data, failed)
  local parts, index, n = {}, {}, 0
  for i, text in ipairs(data.cdef) do
    -- Already declared by an include into this state: skipping it also keeps LuaJIT from
    -- minting new ctypes for repeated typedefs and prototypes (their table is finite).
    -- Otherwise a declaration is all in or all out, so its first tag or constant tells.
    local tags, consts = data.guard[i], data.gconst[i]
    local skip = not data.pragma[i] and (declared[text] or (tags and complete(tags[1]))
      or (consts and has_const(consts[1])))   -- packing pushes and pops always go in, paired
    -- One state is one C namespace: LuaJIT would keep an earlier typedef of the same name
    -- without a word, so a different one is refused here, and said so when it is used.
    for _, name in ipairs(not skip and data.gtypedef[i] or {}) do
      local prev = typedefs[name]
      if prev and prev.text ~= text then
        failed[#failed + 1] = {text = text, where = data.where[i], name = name,
          err = fmt("this Lua state already has a different typedef %s (%s: %s), and one state "
            .. "holds one C namespace", name, prev.where, prev.text)}
        skip = true
      end
    end
    if not skip then
      n = n + 1
      parts[n], index[n] = text, i
    end
  end
  return parts, index, n
end

-- Which of parts[a..b] a cdef error at "line N" of their concatenation is in.
local function locate(parts, err, a, b)
  local line, seen, j = tonumber(match(tostring(err), "at line (%d+)")) or 1, 0, a
  while j < b do
    local _, nl = gsub(parts[j], "\n", "")
    if seen + nl + 1 >= line then break end
    seen, j = seen + nl + 1, j + 1
  end
  return j
end

local function declare(data, failed)
  local parts, index, n = needed(data, failed)
  -- One cdef for the lot. LuaJIT rolls a failed cdef back whole, so on an error the
  -- declarations before the culprit are declared again, the culprit is recorded and skipped
  -- (names it declares explain themselves when used), and the rest goes on.
  local bad, a = {}, 1
  while a <= n do
    local b = n
    while true do
      local ok, err = pcall(ffi.cdef, concat(parts, "\n", a, b))
      if ok then
        for k = a, b do
          declared[parts[k]] = true
          for _, name in ipairs(data.gtypedef[index[k]] or {}) do
            typedefs[name] = typedefs[name] or {text = parts[k], where = data.where[index[k]]}
          end
        end
        a = b + 1
        break
      end
      local j = locate(parts, err, a, b)
      bad[j] = strip_where(err)
      if j == a then break end
      b = j - 1
    end
    if bad[a] then
      failed[#failed + 1] = {text = parts[a], where = data.where[index[a]], err = bad[a]}
      a = a + 1
    end
  end
end

local function short(path)
  return match(path, "([^/]+)$") or path
end

-- The dynamic loader first (it knows ld.so.conf and LD_LIBRARY_PATH), then the files the
-- linker would consider; directories the user named come before both.
local function load_lib(name, libdirs, tried)
  if name == "c" or name == "libc" then return ffi.C, "the C library" end
  local function try(target, label)
    local ok, lib = pcall(ffi.load, target)
    if ok then return lib end
    tried[#tried + 1] = fmt("%s (%s)", label, strip_where(lib))
  end
  local lib
  if #libdirs > 0 then
    for _, path in ipairs(call(bridge.libs, name, libdirs, true)) do
      lib = try(path, path)
      if lib then return lib, path end
    end
  end
  lib = try(name, fmt("'%s' through the dynamic loader", name))
  if lib then return lib, name end
  for _, path in ipairs(call(bridge.libs, name, libdirs, false)) do
    lib = try(path, path)
    if lib then return lib, path end
  end
  return nil
end

local function libraries(spec, libdirs)
  local libs, names = {}, {}
  if spec == nil or spec == false then return libs, names end
  if type(spec) == "string" then spec = {spec} end
  for _, name in ipairs(spec) do
    local tried = {}
    local lib, label = load_lib(name, libdirs, tried)
    if not lib then
      error(fmt("library '%s' not found (tried %s) (hint: install the package with its .so, or "
        .. "give its directory with libdir={...})", name, concat(tried, "; ")), 3)
    end
    libs[#libs + 1], names[#names + 1] = lib, short(label)
  end
  return libs, names
end

-- The FFI's own functions on every namespace (z.new("z_stream"), z.sizeof(...)). A C name equal
-- to one of them is still there as ns.lib.NAME.
local HELPERS = {"new", "cast", "typeof", "sizeof", "alignof", "offsetof", "istype", "string",
  "copy", "fill", "gc", "errno", "metatype"}

local function macro_object(name, text)
  return setmetatable({}, {
    __call = function()
      error(fmt("%s is a function-like macro, not a function: C code expands it at compile time "
        .. "and no library exports it (%s) (hint: call what it expands to)", name, text), 2)
    end,
    __tostring = function() return "macro " .. text end,
  })
end

-- Why `name` is missing from a namespace, when an include could not declare it.
local function unavailable(failed, name)
  for _, f in ipairs(failed) do
    if f.name == name then return fmt("%s is not available: %s (%s)", name, f.err, f.where) end
  end
  for _, f in ipairs(failed) do
    if not f.name and find(f.text, name, 1, true) then
      return fmt("%s could not be declared to LuaJIT: %s (%s)", name, f.err, f.where)
    end
  end
end

-- A declared function or variable from the libraries, then the C library. Called by the
-- namespace's __index: level 3 is the user's line.
local function symbol(libs, failed, searched, name, what)
  for _, lib in ipairs(libs) do
    local ok, v = pcall(function() return lib[name] end)
    if ok then return v end
  end
  local ok, v = pcall(function() return ffi.C[name] end)
  if ok then return v end
  local why = unavailable(failed, name)
  if why then error(why, 3) end
  error(fmt("%s is declared (%s) but %s does not export it (hint: pass the library that "
    .. "defines it with lib=\"...\")", name, what, searched), 3)
end

local function namespace(data, libs, libnames, failed, suggest)
  local label = concat(data.headers, ", ")
  local ns = {lib = libs[1] or ffi.C, C = ffi.C}
  for _, h in ipairs(HELPERS) do ns[h] = ffi[h] end
  local searched = #libnames > 0 and concat(libnames, ", ") .. " and the C library" or "the C library"

  local function lookup(t, k)
    if type(k) ~= "string" then return nil end
    local v = data.const[k]
    if v ~= nil then rawset(t, k, v) return v end
    local c = data.cast[k]
    if c then v = ffi.cast(c[1], c[2]) rawset(t, k, v) return v end
    local target = data.alias[k]
    if target then v = t[target] rawset(t, k, v) return v end
    local sig = data.func[k]
    if sig then
      if data.nocall[k] then error(fmt("%s cannot be called from Lua: %s (%s)", k, data.nocall[k], sig), 2) end
      if data.inline[k] then
        error(fmt("%s is a static inline function in the header (%s): no library exports it "
          .. "(hint: write it in Lua with the FFI)", k, sig), 2)
      end
      v = symbol(libs, failed, searched, k, sig)
      rawset(t, k, v)
      return v
    end
    if data.var[k] then   -- a variable: read it every time
      return symbol(libs, failed, searched, k, data.var[k])
    end
    if data.typedef[k] then
      local why = unavailable(failed, k)
      if why then error(why, 2) end
      local ok, ct = pcall(ffi.typeof, k)
      if not ok then error(strip_where(ct), 2) end
      rawset(t, k, ct)
      return ct
    end
    if data.enumc[k] then v = ffi.C[k] rawset(t, k, v) return v end
    if data.fmacro[k] then
      v = macro_object(k, data.fmacro[k])
      rawset(t, k, v)
      return v
    end
    if data.expr[k] then
      error(fmt("%s is a macro that is not a constant: %s", k, data.expr[k]), 2)
    end
    local hint = suggest(k, data.api)
    error(fmt("%s declares no '%s'%s", label, k, hint and (" (hint: " .. hint .. ")") or ""), 2)
  end

  return setmetatable(ns, {
    __index = lookup,
    __newindex = function(_, k) error(fmt("the C namespace of %s is read-only (tried to set %s)", label, tostring(k)), 2) end,
    __tostring = function() return fmt("C namespace: %s (%d names)", label, #data.api) end,
    -- c.info reads it; getmetatable(ns) tells what the namespace is
    __metatable = {data = data, failed = failed, libraries = libnames},
  })
end

local OPTIONS = {lib = true, libdir = true, incdir = true, define = true, cflags = true}

local function list(v, what)
  if v == nil then return {} end
  if type(v) == "string" then return {v} end
  if type(v) ~= "table" then error(fmt("%s must be a string or a list of strings, not %s", what, type(v)), 4) end
  local out = {}
  for _, x in ipairs(v) do out[#out + 1] = tostring(x) end
  return out
end

local function defines(v)
  if type(v) ~= "table" then return list(v, "define") end
  local out = list(v, "define")
  local keys = {}
  for k, x in pairs(v) do
    if type(k) == "string" then keys[#keys + 1] = x == true and k or (k .. "=" .. tostring(x)) end
  end
  sort(keys)
  for _, d in ipairs(keys) do out[#out + 1] = d end
  return out
end

return function()
  local c = {}
  local function suggest(word, names)
    local ok, hint = pcall(call, bridge.suggest, word, names)
    return ok and hint or nil
  end

  -- c.include("zlib.h", {lib = "z"}) or c.include{"stdio.h", "stdlib.h", lib = ...}
  function c.include(headers, opts)
    local hs, o = headers, opts or {}
    if type(headers) == "table" then
      hs = {}
      for i, h in ipairs(headers) do hs[i] = h end
      if opts == nil then
        o = {}
        for k, v in pairs(headers) do if type(k) ~= "number" then o[k] = v end end
      end
    elseif type(headers) ~= "string" then
      error("c.include wants a header name or a list of them, not " .. type(headers), 2)
    else
      hs = {headers}
    end
    if type(o) ~= "table" then error("c.include options must be a table, not " .. type(o), 2) end
    for k in pairs(o) do
      if not OPTIONS[k] then
        local hint = suggest(tostring(k), {"lib", "libdir", "incdir", "define", "cflags"})
        error(fmt("unknown c.include option '%s'%s", tostring(k), hint and (" (hint: " .. hint .. ")") or ""), 2)
      end
    end
    local spec = {headers = hs, incdir = list(o.incdir, "incdir"), define = defines(o.define),
                  cflags = list(o.cflags, "cflags")}
    -- A header with a profile (headers/profiles/) brings its flags, extra headers and
    -- libraries; a lib= given replaces the profile's.
    local found = call(bridge.include, spec)
    local key, lib = found.key, o.lib
    if lib == nil and #found.lib > 0 then lib = found.lib end
    local data = state.data[key]
    if not data then
      data = call(bridge.data, key)
      state.data[key] = data
    end
    local failed = {}
    declare(data, failed)
    local libs, names = libraries(lib, list(o.libdir, "libdir"))
    return namespace(data, libs, names, failed, suggest)
  end

  -- The escape hatch: declarations written by hand.
  function c.cdef(text)
    local ok, err = pcall(ffi.cdef, text)
    if not ok then error("c.cdef: " .. strip_where(err), 2) end
  end

  -- A library by name, found like c.include's lib= option.
  function c.load(name, libdir)
    local libs = libraries(name, list(libdir, "libdir"))
    return libs[1]
  end

  -- What a namespace offers, for help and completion: name -> description, by kind.
  function c.info(ns)
    local meta = getmetatable(ns)
    local data = type(meta) == "table" and meta.data
    if type(data) ~= "table" or not data.api then error("c.info wants a namespace from c.include", 2) end
    local out = {functions = {}, variables = {}, types = {}, constants = {}, macros = {},
                 unavailable = {}, headers = data.headers, libraries = meta.libraries}
    for i, f in ipairs(meta.failed) do out.unavailable[i] = f.where .. ": " .. f.err end
    for _, k in ipairs(data.api) do
      if data.func[k] then out.functions[k] = data.func[k]
      elseif data.var[k] then out.variables[k] = data.var[k]
      elseif data.typedef[k] then
        local ok, size = pcall(ffi.sizeof, k)
        out.types[k] = ok and size or "incomplete"
      elseif data.fmacro[k] then out.macros[k] = data.fmacro[k]
      elseif data.const[k] ~= nil then out.constants[k] = data.const[k]
      elseif data.cast[k] or data.enumc[k] or data.alias[k] then
        local ok, v = pcall(function() return ns[k] end)
        if ok then out.constants[k] = v end
      end
    end
    for tag in pairs(data.tags) do
      local ok, size = pcall(ffi.sizeof, tag)
      out.types[tag] = ok and size or "incomplete"
    end
    return out
  end

  for _, h in ipairs(HELPERS) do c[h] = ffi[h] end
  c.C = ffi.C
  return c
end
