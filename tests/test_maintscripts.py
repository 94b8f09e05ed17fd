"""Reading what Debian maintainer scripts, sysusers.d and tmpfiles.d ask for; the texts are
excerpts of bookworm's packages (memcached, postgresql-common, mariadb-server, nginx-common)."""

from __future__ import annotations

from engitor.packages import maintscripts
from engitor.packages.maintscripts import SysUser, TmpDir

MEMCACHED_POSTINST = """\
#!/bin/sh
set -e
USER="memcache"
GROUP="memcache"
DATADIR="/nonexistent"
if [ "$1" = "configure" ]; then
    if ! getent group $GROUP >/dev/null ; then
            addgroup --system $GROUP >/dev/null
    fi
    if ! getent passwd $USER >/dev/null ; then
            adduser \\
              --system \\
              --disabled-login \\
              --ingroup $GROUP \\
              --home $DATADIR \\
              --no-create-home \\
              --gecos "Memcached" \\
              --shell /bin/false \\
              $USER  >/dev/null
    fi
    if [ ! -e /etc/memcached.conf ]; then
            cp /usr/share/memcached/memcached.conf.default /etc/memcached.conf
    fi
fi
"""

POSTGRES_POSTINST = """\
    [ "$DPKG_MAINTSCRIPT_PACKAGE" ] && quiet="--quiet" # RedHat doesn't have this
    if ! getent passwd postgres > /dev/null; then
        adduser --system $quiet --home /var/lib/postgresql --no-create-home \\
            --shell /bin/bash --group --gecos "PostgreSQL administrator" postgres
    fi
    if ! id -Gn postgres | grep -qw postgres; then
        adduser $quiet postgres postgres
    fi
    mkdir -p /var/lib/postgresql
    su -s /bin/sh postgres -c "test -O /var/lib/postgresql &&
            test -G /var/lib/postgresql" || \\
        chown postgres:postgres /var/lib/postgresql
    chown root:postgres /var/log/postgresql
"""

MARIADB_PREINST = """\
if ! getent passwd mysql >/dev/null; then
\tadduser \\
\t  --system \\
          --disabled-login \\
\t  --ingroup mysql \\
\t  --no-create-home \\
\t  --home /nonexistent \\
\t  --gecos "MySQL Server" \\
\t  --shell /bin/false \\
\t  mysql  >/dev/null 2>&1
fi
"""

NGINX_POSTINST = """\
    if [ -z "$2" ]; then
      if [ ! -e /etc/nginx/sites-enabled/default ]; then
        ln -s /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
      fi
      if [ ! -e /var/www/html/index.html ]; then
        cp /usr/share/nginx/html/index.html /var/www/html/index.nginx-debian.html
      fi
    fi
"""


def test_memcached_user_group_and_config_copy():
    a = maintscripts.parse_script(MEMCACHED_POSTINST)
    assert a.users == [SysUser("memcache", "memcache", "/nonexistent", "/bin/false",
                               "Memcached", create_home=False)]
    assert a.groups == ["memcache"]
    assert a.copies == [("/usr/share/memcached/memcached.conf.default", "/etc/memcached.conf")]


def test_postgres_runtime_variables_dropped_multiline_string_joined():
    a = maintscripts.parse_script(POSTGRES_POSTINST)
    assert [u.name for u in a.users] == ["postgres"]
    assert a.users[0].group == "postgres" and a.users[0].home == "/var/lib/postgresql"
    assert ("postgres", "postgres") in a.members
    assert a.owners == [("/var/lib/postgresql", "postgres", "postgres"),
                        ("/var/log/postgresql", "root", "postgres")]


def test_mariadb_redirections_are_not_names():
    a = maintscripts.parse_script(MARIADB_PREINST)
    assert [(u.name, u.group, u.shell) for u in a.users] == [("mysql", "mysql", "/bin/false")]


def test_nginx_generated_site_link_and_index():
    a = maintscripts.parse_script(NGINX_POSTINST)
    assert a.links == [("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default")]
    assert a.copies == [("/usr/share/nginx/html/index.html",
                         "/var/www/html/index.nginx-debian.html")]


def test_alternatives_with_slaves():
    a = maintscripts.parse_script(
        "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n"
        "  --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n")
    assert a.alternatives == [("/usr/bin/awk", "awk", "/usr/bin/mawk", 5),
                              ("/usr/share/man/man1/awk.1.gz", "awk.1.gz",
                               "/usr/share/man/man1/mawk.1.gz", 5)]


def test_tmpfiles_and_sysusers():
    t = maintscripts.parse_tmpfiles("# comment\nd /run/haproxy 2775 haproxy haproxy -\n"
                                    "d /run/mysqld 0755 mysql root -\nL /x - - - - /y\n"
                                    "D /run/tinyproxy 0750 tinyproxy tinyproxy\n")
    assert t.dirs == [TmpDir("/run/haproxy", 0o2775, "haproxy", "haproxy"),
                      TmpDir("/run/mysqld", 0o755, "mysql", "root"),
                      TmpDir("/run/tinyproxy", 0o750, "tinyproxy", "tinyproxy")]
    s = maintscripts.parse_sysusers('u _chrony - "Chrony daemon" /var/lib/chrony\n'
                                    "g ssl-cert\nm _chrony ssl-cert\n")
    assert s.users == [SysUser("_chrony", "_chrony", "/var/lib/chrony", "/usr/sbin/nologin",
                               "Chrony daemon")]
    assert s.groups == ["_chrony", "ssl-cert"] and s.members == [("_chrony", "ssl-cert")]
