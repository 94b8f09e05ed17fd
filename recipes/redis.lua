-- Redis from Debian with Debian's configuration, persistent: an append-only file (fsynced at
-- every write) on the named volume redis-data at /data (the official image's folder), owned
-- by Debian's redis user. Keys survive a stop, a rebuild, and a SIGKILL of QEMU.
--
--   engitor run recipes/redis.lua            # then: redis-cli -p 6379 ping
--
-- The arguments override what Debian's redis.conf sets for a system service: no daemon, log
-- to the console, listen beyond loopback.

image "redis" {
  debian = {"redis-server"},
  user = "redis",
  program = "/usr/bin/redis-server",
  args = {
    "/etc/redis/redis.conf",
    "--daemonize", "no",
    "--supervised", "no",
    "--logfile", "",
    "--bind", "0.0.0.0",
    "--protected-mode", "no",
    "--dir", "/data",
    "--appendonly", "yes",
    "--appendfsync", "always",
  },
  volumes = {["/data"] = "redis-data"},
  ports = {6379},
  memory = "256M",
}
