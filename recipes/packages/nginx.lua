-- nginx from Debian. Give it your own configuration (args = {"-c", "/etc/nginx/app.conf"} and
-- the file in map or files); Debian's default one serves /var/www/html on port 80.
package "nginx" {
  description = "nginx web server (master and worker processes)",
  debs = {"nginx"},
  program = "/usr/sbin/nginx",
  -- The VM's init supervises nginx in the foreground; errors go to the console.
  args = {"-e", "stderr", "-g", "daemon off;"},
  -- Needed by Debian's maintainer script only (it asks `ss` whether port 80 is taken).
  skip = {"iproute2"},
}
