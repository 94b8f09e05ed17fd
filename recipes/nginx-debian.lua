-- Debian's nginx package whole, with Debian's own configuration: the default site
-- (sites-enabled/default, made as nginx-common's postinst makes it) serves /var/www/html;
-- the master runs as root and its workers as www-data (`user www-data;` in nginx.conf).
-- Add sites under /etc/nginx/conf.d or sites-enabled with map.
--
--   engitor run recipes/nginx-debian.lua      # then curl localhost:8082
--   engitor run --deb nginx -p 8082:80 /usr/sbin/nginx -- -g 'daemon off;'   # the same

image "nginx-debian" {
  debian = {"nginx"},
  program = "/usr/sbin/nginx",
  args = {"-g", "daemon off;"},  -- Debian's nginx.conf does not say it: the init supervises
  ports = {"8082:80"},
}
