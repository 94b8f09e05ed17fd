-- Several images from one loop: the C web server three times, each with its own name, port and
-- environment. The shared settings live in a module (web/site.lua, found by require from this
-- recipe's folder).
--
--   cc -O2 -o recipes/web/server recipes/web/server.c
--   engitor build recipes/fleet.lua              # builds site-red, site-green, site-blue
--   engitor run recipes/fleet.lua:site-green     # curl localhost:8092/env/SITE

local site = require "web.site"

for i, color in ipairs {"red", "green", "blue"} do
  image("site-" .. color) (site.server {name = color, port = 8090 + i})
end
