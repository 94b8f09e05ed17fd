-- The Lua half of `sh` (engitor/lua/api/sh.py runs the processes).
--
--   sh.git("rev-parse", "HEAD")             --> stdout, trailing newline stripped
--   sh{"ls", "-la", cwd = "/tmp"}           --> the same, argv in the array part
--   sh.ls("-la", {cwd = "/tmp"})            --> a table argument adds args and options
--   sh.pipe{{"ls"}, {"grep", "lua"}}        --> real pipes between processes
--   sh.shell("echo $HOME")                  --> the only way to get /bin/sh
-- Options: cwd, env (a table; false unsets a variable), stdin (a string), timeout (seconds),
-- stderr ("capture", "inherit" or "stdout"), check (default true; false returns
-- stdout, exit code, stderr instead of raising on failure).

local run, option_names = ...
local error, type, tostring, pairs, ipairs, setmetatable, select =
  error, type, tostring, pairs, ipairs, setmetatable, select
local fmt, gsub, next = string.format, string.gsub, next

local OPTIONS = {}
for _, k in ipairs(option_names) do OPTIONS[k] = true end

local function add_args(argv, opts, args, n, where)
  for i = 1, n do
    local a = args[i]
    local t = type(a)
    if t == "string" then argv[#argv + 1] = a
    elseif t == "number" then argv[#argv + 1] = tostring(a)
    elseif t == "table" then
      for _, x in ipairs(a) do
        if type(x) ~= "string" and type(x) ~= "number" then
          error(fmt("%s: arguments are strings or numbers, not %s", where, type(x)), 4)
        end
        argv[#argv + 1] = tostring(x)
      end
      for k, v in pairs(a) do
        if type(k) ~= "number" then
          if not OPTIONS[k] then error(fmt("%s: unknown option '%s'", where, tostring(k)), 4) end
          opts[k] = v
        end
      end
    else
      error(fmt("%s: argument %d is %s; arguments are strings or numbers", where, i, t), 4)
    end
  end
end

-- Callers must not tail-call this: a tail call drops the frame the error level counts on.
local function execute(spec, level)
  local r = run(spec)
  if not r[1] then error(r[2], level + 1) end
  local out, code, err = r[2][1], r[2][2], r[2][3]
  if spec.check == false then return out, code, err end
  return (gsub(out, "\n$", "")), nil, nil
end

local function results(spec, out, code, err)
  if spec.check == false then return out, code, err end
  return out
end

local function command(argv, opts)
  local spec = {stages = {argv}}
  for k, v in pairs(opts) do spec[k] = v end
  return spec
end

return function()
  local sh = {}

  function sh.shell(script, opts)
    if type(script) ~= "string" then error("sh.shell wants a string", 2) end
    local spec = {shell = script}
    for k, v in pairs(opts or {}) do
      if not OPTIONS[k] then error(fmt("sh.shell: unknown option '%s'", tostring(k)), 2) end
      spec[k] = v
    end
    local out, code, err = execute(spec, 2)
    return results(spec, out, code, err)
  end

  function sh.pipe(t)
    if type(t) ~= "table" or #t == 0 then error("sh.pipe wants {{cmd, args...}, {cmd, ...}, options...}", 2) end
    local spec = {stages = {}}
    for i, stage in ipairs(t) do
      if type(stage) ~= "table" then error(fmt("sh.pipe: stage %d is not a table", i), 2) end
      local argv, opts = {}, {}
      add_args(argv, opts, {stage}, 1, "sh.pipe")
      if next(opts) then error("sh.pipe: options go in the outer table", 2) end
      spec.stages[i] = argv
    end
    for k, v in pairs(t) do
      if type(k) ~= "number" then
        if not OPTIONS[k] then error(fmt("sh.pipe: unknown option '%s'", tostring(k)), 2) end
        spec[k] = v
      end
    end
    local out, code, err = execute(spec, 2)
    return results(spec, out, code, err)
  end

  return setmetatable(sh, {
    __index = function(_, name)
      if type(name) ~= "string" then return nil end
      return function(...)
        local argv, opts = {name}, {}
        add_args(argv, opts, {...}, select("#", ...), "sh." .. name)
        local spec = command(argv, opts)
        local out, code, err = execute(spec, 2)
        return results(spec, out, code, err)
      end
    end,
    __call = function(_, t)
      if type(t) ~= "table" or type(t[1]) ~= "string" then
        error('sh{...} wants {"command", args..., option = value}', 2)
      end
      local argv, opts = {}, {}
      add_args(argv, opts, {t}, 1, "sh{" .. t[1] .. "}")
      local spec = command(argv, opts)
      local out, code, err = execute(spec, 2)
      return results(spec, out, code, err)
    end,
  })
end
