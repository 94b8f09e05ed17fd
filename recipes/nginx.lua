-- Debian's nginx with its own configuration file: a master and two worker processes.
--
--   apt-get install nginx
--   engitor run recipes/nginx.lua            # then curl localhost:8081
--
-- nginx/nginx.conf goes to /etc/nginx/nginx.conf and the site to /srv/www; before_build makes
-- the folders nginx expects to find (the image has nothing it was not given).

local conf = "/etc/nginx/nginx.conf"

image "nginx" {
  program = "/usr/sbin/nginx",
  args = {"-c", conf, "-e", "stderr", "-g", "daemon off;"},
  map = {
    ["nginx/nginx.conf"] = "/etc/nginx",
    ["nginx/html/*"] = "/srv/www",
  },
  ports = {"8081:80"},
  memory = "192M",

  before_build = function(ctx)
    for _, dir in ipairs({"/var/lib/nginx", "/var/log/nginx", "/run"}) do
      fs.mkdir(dir)
    end
  end,
}
