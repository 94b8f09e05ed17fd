-- The Lua half of `engitor` (engitor/shell/vm_api.py is the other half): VMs as objects.
--
--   local vm = engitor.run("recipes/web.lua", {ports = {"18080:8080"}})
--   vm.name vm.image vm.accel vm.ports vm.pid vm.detached
--   vm:wait_port(8080, 60) vm:port(8080) vm:console() vm:state() vm:pause() vm:resume()
--   vm:stop() vm:kill() vm:wait() vm:qmp("query-status") vm:vcpus()
--   local img = engitor.image("web")  -- or engitor.images()[1]
--   img:history() img:diff(engitor.images()[2]) img:inspect()
--
-- Loaded with the bridge: Lua closures over allow-listed Python functions that take a VM's
-- name. A VM object is a plain table; its methods live in a shared table reached through
-- __index. Every method tail-calls the bridge, so an error blames the caller's line.

local bridge = ...
local setmetatable, getmetatable, type, error, tostring, pcall, ipairs =
  setmetatable, getmetatable, type, error, tostring, pcall, ipairs
local concat = table.concat
local fmt = string.format

-- A class of objects: check(self, what) is self (or self[field]) when self is one, else a
-- "call it as noun:what(…)" error at the caller's line; object(ok, info) makes a bridge call's
-- result one. A bridge call whose result is wrapped is not a tail call: its error is raised
-- again in object, at the caller's line.
local function class(noun, field)
  local methods = {}
  local meta = { __index = methods }
  local function check(self, what)
    if type(self) ~= "table" or getmetatable(self) ~= meta then
      error(fmt("%s is a method: call it as %s:%s(…)", what, noun, what), 3)
    end
    if field then return self[field] end
    return self
  end
  local function object(ok, info)
    if not ok then error(info, 3) end
    return setmetatable(info, meta)
  end
  return methods, meta, check, object
end

local methods, VM, check, object = class("vm", "name")

function methods.wait_port(self, port, timeout) return bridge.wait_port(check(self, "wait_port"), port, timeout) end
function methods.port(self, port) return bridge.port(check(self, "port"), port) end
function methods.console(self, opts)
  local raw = type(opts) == "table" and opts.raw or false
  return bridge.console(check(self, "console"), raw)
end
function methods.state(self) return bridge.state(check(self, "state")) end
function methods.pause(self) return bridge.pause(check(self, "pause")) end
function methods.resume(self) return bridge.resume(check(self, "resume")) end
function methods.stop(self, timeout) return bridge.stop(check(self, "stop"), timeout) end
function methods.kill(self) return bridge.kill(check(self, "kill")) end
function methods.wait(self, timeout) return bridge.wait(check(self, "wait"), timeout) end
function methods.qmp(self, command, args) return bridge.qmp(check(self, "qmp"), command, args) end
function methods.vcpus(self) return bridge.vcpus(check(self, "vcpus")) end

function VM.__tostring(self)
  local ports = {}
  for i, p in ipairs(self.ports or {}) do
    ports[i] = fmt("%s:%d->%d%s", p.bind, p.host, p.guest, p.proto == "udp" and "/udp" or "")
  end
  return fmt("<vm %s: %s, %s%s>", tostring(self.name), tostring(self.image), tostring(self.accel),
             #ports > 0 and ", " .. concat(ports, " ") or "")
end

-- Images from the store: plain tables {name, names, id, short, size, program} whose methods
-- ask the bridge by id (diff, inspect) or by name (history).
local image_methods, Image, image_check, image_object = class("img")

function image_methods.diff(self, other)
  local id = type(other) == "table" and other.id or other
  return bridge.image_diff(image_check(self, "diff").id, id)
end
function image_methods.history(self) return bridge.image_history(image_check(self, "history").name) end
function image_methods.inspect(self) return bridge.image_inspect(image_check(self, "inspect").id) end

function Image.__tostring(self)
  return fmt("<image %s %s, %.1f MiB>", tostring(self.name or "<none>"), tostring(self.short),
             (self.size or 0) / 1048576)
end

local engitor = {}

function engitor.images()
  local list = bridge.images()
  for i, info in ipairs(list) do list[i] = setmetatable(info, Image) end
  return list
end
function engitor.image(ref) return image_object(pcall(bridge.image, ref)) end

function engitor.run(target, opts) return object(pcall(bridge.run, target, opts)) end
function engitor.attach(name) return object(pcall(bridge.attach, name)) end
function engitor.ps(all) return bridge.ps(all) end
function engitor.build(target, opts) return bridge.build(target, opts) end
function engitor.recipe(path) return bridge.recipe(path) end
function engitor.free_port() return bridge.free_port() end

return engitor
