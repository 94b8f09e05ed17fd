#!/bin/sh
# The first boot of recipes/mariadb.lua, with the official image's variables: system tables
# made by mariadb-install-db (as Debian's postinst does), then the root password, a database
# and a user from MARIADB_ROOT_PASSWORD, MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD
# (MYSQL_* spellings too). Every boot then runs mariadbd in the foreground.
set -eu
datadir=/var/lib/mysql
root_password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
user=${MARIADB_USER:-${MYSQL_USER:-}}
password=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}

sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"; }

if [ ! -d "$datadir/mysql" ]; then
	if [ -z "$root_password" ] && [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}" ]; then
		echo "mariadb: set MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)" >&2
		exit 1
	fi
	setup=/run/mysqld/setup.sql
	{
		pw=$(sql_string "$root_password")
		echo "FLUSH PRIVILEGES;"  # the bootstrap starts without grant tables: load them
		echo "ALTER USER root@localhost IDENTIFIED BY $pw;"
		echo "CREATE USER root@'%' IDENTIFIED BY $pw;"
		echo "GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION;"
		if [ -n "$database" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`$database\`;"
		fi
		if [ -n "$user" ]; then
			echo "CREATE USER '$user'@'%' IDENTIFIED BY $(sql_string "$password");"
			[ -z "$database" ] || echo "GRANT ALL ON \`$database\`.* TO '$user'@'%';"
		fi
	} >"$setup"
	mariadb-install-db --datadir="$datadir" --skip-test-db --skip-name-resolve \
		--auth-root-authentication-method=normal --extra-file="$setup" >/dev/null
	rm -f "$setup"
	echo "mariadb: initialized $datadir${database:+ (database $database)}"
fi
exec mariadbd --datadir="$datadir" --bind-address=0.0.0.0 "$@"
