-- PostgreSQL 15 from Debian, run as Debian's postgres user. Takes the official image's
-- variables: POSTGRES_PASSWORD (required), POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS.
--
--   engitor run recipes/postgres.lua -e POSTGRES_PASSWORD=secret
--   PGPASSWORD=secret psql -h 127.0.0.1 -U postgres -c 'select version()'
--
-- The data lives on the named volume pgdata (an ext4 disk in engitor's home, owned by the
-- postgres user): the first boot runs initdb into it (postgres/entrypoint.sh, run by Debian's
-- dash); later boots, and rebuilt images, find it there. As with the official image on a
-- mount point, PGDATA is a folder inside the volume (its root holds ext4's lost+found).

image "postgres" {
  debian = {"postgresql-15", "dash", "libllvm14-"},  -- no JIT compiler: 126 MiB less
  user = "postgres",
  program = "/bin/dash",
  args = {"/usr/local/bin/entrypoint.sh"},
  map = {["postgres/entrypoint.sh"] = "/usr/local/bin"},
  volumes = {["/var/lib/postgresql/data"] = "pgdata"},
  env = {PGDATA = "/var/lib/postgresql/data/pgdata"},
  ports = {5432},
  memory = "1G",
  boot_timeout = 300,
}
