-- Debian's redis-server (dynamically linked; engitor copies its libraries in).
--
--   apt-get install redis-server redis-tools
--   engitor run recipes/redis.lua            # then: redis-cli -p 6379 ping
--
-- Persistence is off: the image is immutable and the guest's / is a RAM disk.

image "redis" {
  program = "/usr/bin/redis-server",
  args = {
    "--port", 6379,
    "--bind", "0.0.0.0",
    "--protected-mode", "no",
    "--save", "",
    "--appendonly", "no",
    "--daemonize", "no",
  },
  ports = {6379},
  memory = "256M",
}
