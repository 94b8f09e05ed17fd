-- libvirt driven through engitor's C bridge: libvirt/libvirt.h is read by c.include and called
-- through LuaJIT's FFI, no binding in between (the project's thesis for C libraries).
--
-- Loaded by engitor/commands/deploy.py in a script scope (which has `c`); returns a table of
-- functions. Each returns true plus a value, or false plus libvirt's own message, so the caller
-- words the error for people.

-- Its header profile (headers/profiles/libvirt.toml) brings libvirt/virterror.h and lib "virt".
local v = c.include("libvirt/libvirt.h")

-- libvirt prints every error to stderr unless a handler is set; the caller reports them once.
v.virSetErrorFunc(nil, function() end)

local M = {}

local function last_error(what)
  local msg = v.virGetLastErrorMessage()
  return false, what .. ": " .. (msg ~= nil and v.string(msg) or "unknown libvirt error")
end

local function with_connection(uri, fn)
  local conn = v.virConnectOpen(uri)
  if conn == nil then return last_error("cannot connect to " .. uri) end
  local ok, a, b = pcall(fn, conn)
  v.virConnectClose(conn)
  if not ok then error(a, 0) end
  return a, b
end

-- Whether `uri` answers: checked before anything is built.
function M.ping(uri)
  return with_connection(uri, function() return true, true end)
end

local function lookup(conn, name)
  local dom = v.virDomainLookupByName(conn, name)
  return dom ~= nil and dom or nil
end

-- Define the domain from `xml` and start it; a stopped domain of the same name is replaced,
-- a running one is refused (unless `replace`).
function M.deploy(uri, name, xml, replace)
  return with_connection(uri, function(conn)
    local old = lookup(conn, name)
    if old then
      local active = v.virDomainIsActive(old) == 1
      if active and not replace then
        v.virDomainFree(old)
        return false, "running"
      end
      if active then v.virDomainDestroy(old) end
      v.virDomainUndefineFlags(old, v.VIR_DOMAIN_UNDEFINE_NVRAM)
      v.virDomainFree(old)
    end
    local dom = v.virDomainDefineXML(conn, xml)
    if dom == nil then return last_error("defining " .. name) end
    local started = v.virDomainCreate(dom)
    if started ~= 0 then
      local ok, msg = last_error("starting " .. name)
      v.virDomainUndefineFlags(dom, v.VIR_DOMAIN_UNDEFINE_NVRAM)
      v.virDomainFree(dom)
      return ok, msg
    end
    v.virDomainFree(dom)
    return true, name
  end)
end

-- `act(dom)` on the domain called `name`, which is freed after: true plus act's second result
-- (or true), or false plus libvirt's message when act's first result is non-zero. The message
-- is read before the domain is freed: every libvirt call resets the thread's last error.
local function on_domain(uri, name, doing, act)
  return with_connection(uri, function(conn)
    local dom = lookup(conn, name)
    if not dom then return true, false end
    local ok, value = true, true
    local rc, result = act(dom)
    if rc ~= 0 then ok, value = last_error(doing .. " " .. name)
    elseif result ~= nil then value = result end
    v.virDomainFree(dom)
    return ok, value
  end)
end

-- Ask the guest to power off (the ACPI power button: the init stops the program gracefully).
function M.shutdown(uri, name)
  return on_domain(uri, name, "shutting down", function(dom)
    return v.virDomainIsActive(dom) == 1 and v.virDomainShutdown(dom) or 0
  end)
end

-- Stop (hard) and undefine a domain; true when it existed.
function M.remove(uri, name)
  return on_domain(uri, name, "undefining", function(dom)
    if v.virDomainIsActive(dom) == 1 then v.virDomainDestroy(dom) end
    return v.virDomainUndefineFlags(dom, v.VIR_DOMAIN_UNDEFINE_NVRAM)
  end)
end

-- "running", "shut off", … or false when there is no such domain.
local STATES = {"running", "blocked", "paused", "shutdown", "shut off", "crashed", "suspended"}
function M.state(uri, name)
  return on_domain(uri, name, "reading the state of", function(dom)
    local state = v.new("int[1]")
    local rc = v.virDomainGetState(dom, state, nil, 0)
    return rc, STATES[state[0]] or "unknown"
  end)
end

return M
