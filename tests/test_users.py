"""The image's user database: base-passwd's fixed ids, stable ids for packages' users."""

from __future__ import annotations

import pytest

from engitor.errors import UserError
from engitor.packages import maintscripts, users

# The head of base-passwd 3.6.1's passwd.master and group.master.
PASSWD = """\
root:*:0:0:root:/root:/bin/bash
daemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:*:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = "root:*:0:\ndaemon:*:1:\nadm:*:4:\nwww-data:*:33:\nnogroup:*:65534:\n"


def base() -> users.Accounts:
    return users.parse_master(PASSWD, GROUP)


def test_stable_ids_do_not_depend_on_the_other_users():
    alone = users.add(base(), maintscripts.parse_tmpfiles("d /run/memcached 0755 memcache memcache"))
    with_more = users.add(base(), maintscripts.parse_script(
        "adduser --system --group postgres\nadduser --system --group aaa\n"
        "adduser --system --ingroup memcache memcache\n"))
    assert alone.users["memcache"].uid == with_more.users["memcache"].uid
    assert 100 <= alone.users["memcache"].uid <= 999
    assert alone.users["memcache"].gid == alone.groups["memcache"].gid
    assert with_more.users["www-data"].uid == 33  # base ids stay


def test_collisions_move_to_the_next_free_id():
    first = users.stable_id("x", set())
    assert users.stable_id("x", {first}) == (first + 1 if first < 999 else 100)


def test_render_and_run_as():
    accounts = users.add(base(), maintscripts.parse_script(
        "adduser --system --home /var/lib/postgresql --group postgres\n"
        "addgroup --system ssl-cert\nadduser postgres ssl-cert\n"))
    files = users.render(accounts)
    passwd = files["/etc/passwd"][0]
    assert passwd.splitlines()[0] == "root:x:0:0:root:/root:/bin/bash"
    assert f"postgres:x:{accounts.users['postgres'].uid}:" in passwd
    assert files["/etc/shadow"][1] == 0o640 and "postgres:*:" in files["/etc/shadow"][0]
    who = users.run_as(accounts, "postgres")
    assert who.home == "/var/lib/postgresql"
    assert set(who.groups) == {accounts.groups["postgres"].gid, accounts.groups["ssl-cert"].gid}
    assert users.run_as(accounts, "www-data:adm").gid == 4
    assert users.run_as(accounts, "1000:1000").uid == 1000


def test_unknown_user_or_group_is_the_users_error():
    with pytest.raises(UserError) as e:
        users.run_as(base(), "www-dat")
    assert "'www-dat' does not exist" in e.value.message and "www-data" in (e.value.hint or "")
    with pytest.raises(UserError):
        users.run_as(base(), "www-data:nosuch")
