-- MariaDB 10.11 from Debian, run as Debian's mysql user. Takes the official image's variables:
-- MARIADB_ROOT_PASSWORD (required), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD.
--
--   engitor run recipes/mariadb.lua -e MARIADB_ROOT_PASSWORD=secret -e MARIADB_DATABASE=app
--   mariadb -h 127.0.0.1 -u root -psecret app
--
-- The data lives on the named volume mariadb-data, owned by the mysql user; the first boot
-- makes the system tables there with mariadb-install-db (a shell script: it wants coreutils
-- and sed) from mariadb/entrypoint.sh.

image "mariadb" {
  debian = {"mariadb-server", "dash", "coreutils", "sed"},
  user = "mysql",
  program = "/bin/dash",
  args = {"/usr/local/bin/entrypoint.sh"},
  map = {["mariadb/entrypoint.sh"] = "/usr/local/bin"},
  volumes = {["/var/lib/mysql"] = "mariadb-data"},
  ports = {3306},
  memory = "1G",
  boot_timeout = 300,
}
