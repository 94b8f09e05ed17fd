-- PostgreSQL 15 from Debian, run as Debian's postgres user. Takes the official image's
-- variables: POSTGRES_PASSWORD (required), POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS.
--
--   engitor run recipes/postgres.lua -e POSTGRES_PASSWORD=secret
--   PGPASSWORD=secret psql -h 127.0.0.1 -U postgres -c 'select version()'
--
-- The first boot runs initdb into the data folder (postgres/entrypoint.sh, run by Debian's
-- dash); later boots find it there.

image "postgres" {
  debian = {"postgresql-15", "dash", "libllvm14-"},  -- no JIT compiler: 126 MiB less
  user = "postgres",
  program = "/bin/dash",
  args = {"/usr/local/bin/entrypoint.sh"},
  map = {["postgres/entrypoint.sh"] = "/usr/local/bin"},
  env = {PGDATA = "/var/lib/postgresql/data"},
  ports = {5432},
  memory = "1G",
  boot_timeout = 300,
}
