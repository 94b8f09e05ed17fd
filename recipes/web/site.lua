-- Settings shared by the images of fleet.lua: a module, loaded with require "web.site".
local M = {}

M.defaults = {
  program = "web/server",
  map = {["web/www/*"] = "/www"},
  memory = "128M",
}

-- The settings of one site: the defaults plus its own port, name and environment.
function M.server(opts)
  return merge(M.defaults, {
    args = {"-port", opts.port, "-root", "/www", "-name", opts.name},
    env = {SITE = opts.name},
    ports = {opts.port},
  })
end

return M
