-- memcached from Debian, run as Debian's memcache user (memcached refuses to run as root).
--
--   engitor run recipes/memcached.lua        # then: printf 'stats\r\nquit\r\n' | nc localhost 11211
--
-- The same as: engitor run --deb memcached --user memcache -p 11211 /usr/bin/memcached

image "memcached" {
  debian = {"memcached"},
  user = "memcache",
  program = "/usr/bin/memcached",
  args = {"-m", 64, "-p", 11211, "-v"},
  ports = {11211},
}
