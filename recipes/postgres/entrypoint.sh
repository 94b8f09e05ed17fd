#!/bin/sh
# The first boot of recipes/postgres.lua, as the official image's docker-entrypoint.sh does it:
# initdb into an empty $PGDATA with POSTGRES_USER / POSTGRES_PASSWORD, create POSTGRES_DB,
# let clients in from the network; then (every boot) postgres in the foreground.
set -eu
bin=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "postgres: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	# The password goes through a pipe, never a file.
	printf '%s\n' "${POSTGRES_PASSWORD:-}" | "$bin/initdb" -D "$PGDATA" \
		-U "$POSTGRES_USER" --pwfile=/proc/self/fd/0 -E UTF8 --locale=C.UTF-8 \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
		${POSTGRES_INITDB_ARGS:-} >/dev/null
	printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
	if [ "$POSTGRES_DB" != postgres ]; then
		printf 'CREATE DATABASE "%s";\n' "$POSTGRES_DB" |
			"$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
	fi
	echo "postgres: initialized $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' \
	-c unix_socket_directories=/run/postgresql "$@"
