-- HAProxy from Debian with Debian's configuration, in front of a server at $BACKEND. From a VM,
-- the host is 10.0.2.2: another engitor VM forwarded to host port 8080 is 10.0.2.2:8080.
--
--   engitor run recipes/web.lua -d                    # a server on host port 8080
--   engitor run recipes/haproxy.lua                   # then: curl localhost:8000
--
-- -db keeps haproxy in the foreground (Debian's configuration says `daemon`); it starts as
-- root, chroots to /var/lib/haproxy and drops to Debian's haproxy user itself.

image "haproxy" {
  debian = {"haproxy"},
  program = "/usr/sbin/haproxy",
  args = {"-f", "/etc/haproxy/haproxy.cfg", "-f", "/etc/haproxy/proxy.cfg", "-db"},
  map = {["haproxy/proxy.cfg"] = "/etc/haproxy"},
  env = {BACKEND = "10.0.2.2:8080"},
  ports = {"8000:80"},
}
