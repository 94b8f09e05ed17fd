"""The shipped daemon recipes (recipes/postgres.lua, mariadb.lua, memcached.lua, haproxy.lua)
boot under TCG and their own clients on the host talk to them. Each boots once (module-scoped
where two tests share a VM); the databases' first boots are slow under TCG (initdb,
mariadb-install-db), so these are the costliest tests of the suite: see BENCHMARKS.md."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import support
from test_runtime_vm import console

from engitor import ROOT
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import Port
from engitor.recipe.settings import make_image

pytestmark = pytest.mark.vm
RECIPES = ROOT / "recipes"


def retry(argv: list[str], inst, env: dict[str, str] | None = None, timeout: float = 400) -> str:
    """`argv` (a database client) until it succeeds: a first boot initialises first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                  env={"PATH": "/usr/bin:/bin", **(env or {})})
            if proc.returncode == 0:
                return proc.stdout
            problem = proc.stderr[-500:]
        except subprocess.TimeoutExpired:
            problem = "no answer in 60 s"
        if not inst.alive() or time.monotonic() > deadline:
            pytest.fail(f"{argv[0]} never connected: {problem}\n"
                        f"console:\n{console(inst)[-3000:]}")
        time.sleep(2)


def image(name: str, **env: str):
    (img,) = load_recipe(RECIPES / f"{name}.lua").images
    return img.with_settings(env={**img.env, **env})


@pytest.mark.skipif(not shutil.which("psql"), reason="psql: apt-get install postgresql-client")
def test_postgres_recipe_psql_connects():
    pg = image("postgres", POSTGRES_PASSWORD="s3cret", POSTGRES_DB="app")
    with support.booted(pg, 5432) as (inst, port):
        psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "app",
                "-At", "-v", "ON_ERROR_STOP=1"]
        pw = {"PGPASSWORD": "s3cret", "PGCONNECT_TIMEOUT": "10"}
        out = retry([*psql, "-c", "select current_database(), current_user"], inst, pw)
        assert out.strip() == "app|postgres"
        out = retry([*psql, "-c", "create table t (v text); insert into t values ('kept');"
                     "select v from t"], inst, pw)
        assert out.strip().splitlines()[-1] == "kept"
        # A wrong password is refused: the network is on scram-sha-256, not trust.
        bad = subprocess.run([*psql, "-c", "select 1"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "PGPASSWORD": "wrong"})
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr


@pytest.mark.skipif(not shutil.which("mariadb"), reason="mariadb: apt-get install mariadb-client")
def test_mariadb_recipe_client_connects():
    db = image("mariadb", MARIADB_ROOT_PASSWORD="s3cret", MARIADB_DATABASE="app")
    with support.booted(db, 3306) as (inst, port):
        # The host side of the port forward accepts before the guest listens: time out.
        client = ["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-ps3cret",
                  "--connect-timeout=10", "-N", "-B", "app"]
        out = retry([*client, "-e", "select database(), current_user()"], inst)
        assert out.split() == ["app", "root@%"]
        out = retry([*client, "-e", "create table t (v text); insert into t values ('kept');"
                     "select v from t"], inst)
        assert out.split() == ["kept"]


def test_memcached_recipe_is_the_command_line_form():
    mc = image("memcached")
    cli = make_image("memcached", {"debian": ["memcached"], "user": "memcache",
                                   "program": "/usr/bin/memcached"})
    assert (mc.debian, mc.user, mc.program) == (cli.debian, cli.user, cli.program)
    assert mc.ports == (Port(11211, 11211),)


def test_nginx_debian_recipe_is_what_the_nginx_test_boots():
    ng = image("nginx-debian")
    assert (ng.debian, ng.program, ng.args) == (("nginx",), "/usr/sbin/nginx",
                                                ("-g", "daemon off;"))
    assert ng.ports == (Port(8082, 80),)


def test_haproxy_recipe_in_front_of_a_second_vm(recipes: Path):
    (web,) = load_recipe(recipes / "web.lua").images
    with support.booted(web, 8080) as (_, web_port):
        direct = support.wait_for(lambda: support.http_get(f"http://127.0.0.1:{web_port}/"),
                                  timeout=150, what="the web VM")
        proxy = image("haproxy", BACKEND=f"10.0.2.2:{web_port}")
        with support.booted(proxy, 80) as (inst, port):
            through = support.wait_for(
                lambda: support.http_get(f"http://127.0.0.1:{port}/", timeout=10),
                timeout=200, what=f"haproxy; console:\n{console(inst)[-2000:]}")
            # haproxy resolved Debian's `user haproxy` and `chroot /var/lib/haproxy`: without
            # either it would have exited with an ALERT instead of proxying.
            assert through == direct

