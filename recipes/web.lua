-- The C web server (web/server.c) as a micro-VM.
--
--   cc -O2 -o recipes/web/server recipes/web/server.c      # once
--   engitor run recipes/web.lua                             # then curl localhost:8080
--
-- Everything below is data except before_build, which runs at build time in the script scope
-- with `fs` confined to the image's root.

local port = 8080

image "web" {
  program = "web/server",
  args = {"-port", port, "-root", "/www", "-name", "web"},
  map = {["web/www/*"] = "/www"},
  env = {MODE = "prod"},
  ports = {port},
  memory = "128M",

  before_build = function(ctx)
    -- A page made at build time: the guest serves it as /build.txt.
    fs.write("/www/build.txt", ("built by engitor for image %s\n"):format(ctx.name))
    log.info("added /www/build.txt")
  end,
}
