"""The shipped daemon recipes (recipes/postgres.lua, mariadb.lua, redis.lua, haproxy.lua) boot
under TCG and their own clients on the host talk to them; what the databases store survives a
stop and a start on their named volumes (redis' also a SIGKILL of QEMU). The volumes live in a
home of this module's own. The databases' first boots are slow under TCG (initdb,
mariadb-install-db), so these are the costliest tests of the suite: see BENCHMARKS.md."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import support
from test_runtime_vm import console

from engitor import ROOT, home
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import Port
from engitor.recipe.settings import make_image

pytestmark = pytest.mark.vm
RECIPES = ROOT / "recipes"


@pytest.fixture(scope="module", autouse=True)
def own_volumes(tmp_path_factory: pytest.TempPathFactory, kernel_pkg) -> Iterator[Path]:
    """A home sharing everything built or downloaded, with volumes and VMs of its own."""
    real = home.home()
    h = tmp_path_factory.mktemp("daemons-home")
    for name in ("apt", "cache", "debs", "images", "kernels", "keys", "packages", "tags"):
        (h / name).symlink_to(real / name)
    with support.home_env(h):
        yield h


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


@pytest.mark.timeout(1500)  # two boots, the first running initdb: ~6 min under TCG, loaded
@pytest.mark.skipif(not shutil.which("psql"), reason="psql: apt-get install postgresql-client")
def test_postgres_recipe_psql_connects_and_the_row_survives_a_restart():
    pg = image("postgres", POSTGRES_PASSWORD="s3cret", POSTGRES_DB="app")
    pw = {"PGPASSWORD": "s3cret", "PGCONNECT_TIMEOUT": "10"}

    def psql(port: int) -> list[str]:
        return ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "app",
                "-At", "-v", "ON_ERROR_STOP=1"]

    with support.booted(pg, 5432) as (inst, port):
        out = retry([*psql(port), "-c", "select current_database(), current_user"], inst, pw)
        assert out.strip() == "app|postgres"
        retry([*psql(port), "-c", "create table t (v text); insert into t values ('kept')"],
              inst, pw)
        # A wrong password is refused: the network is on scram-sha-256, not trust.
        bad = subprocess.run([*psql(port), "-c", "select 1"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "PGPASSWORD": "wrong"})
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr
        inst.stop(timeout=60)
    with support.booted(pg, 5432) as (inst, port):  # the volume has the cluster: no initdb
        out = retry([*psql(port), "-c", "select v from t"], inst, pw)
        assert out.strip() == "kept"
        assert "initialized" not in console(inst)


@pytest.mark.timeout(1500)  # two boots, the first running mariadb-install-db: ~5 min
@pytest.mark.skipif(not shutil.which("mariadb"), reason="mariadb: apt-get install mariadb-client")
def test_mariadb_recipe_client_connects_and_the_row_survives_a_restart():
    db = image("mariadb", MARIADB_ROOT_PASSWORD="s3cret", MARIADB_DATABASE="app")

    def client(port: int) -> list[str]:
        # The host side of the port forward accepts before the guest listens: time out.
        return ["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-ps3cret",
                "--connect-timeout=10", "-N", "-B", "app"]

    with support.booted(db, 3306) as (inst, port):
        out = retry([*client(port), "-e", "select database(), current_user()"], inst)
        assert out.split() == ["app", "root@%"]
        retry([*client(port), "-e", "create table t (v text); insert into t values ('kept')"],
              inst)
        inst.stop(timeout=60)
    with support.booted(db, 3306) as (inst, port):
        assert retry([*client(port), "-e", "select v from t"], inst).split() == ["kept"]


def redis(port: int, *words: str, timeout: float = 150) -> bytes:
    """One command in RESP; retried until redis answers."""
    payload = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(payload)
                reply = s.recv(4096)
                if reply and not reply.startswith(b"-LOADING"):
                    return reply
        except OSError:
            pass
        assert time.monotonic() < deadline, f"redis never answered {words}"
        time.sleep(0.5)


def test_redis_recipe_keeps_keys_across_a_stop_and_a_sigkill():
    rd = image("redis")
    with support.booted(rd, 6379) as (inst, port):
        assert redis(port, "SET", "greeting", "hello") == b"+OK\r\n"
        inst.stop(timeout=30)
    with support.booted(rd, 6379) as (inst, port):
        assert redis(port, "GET", "greeting") == b"$5\r\nhello\r\n"
        assert redis(port, "SET", "after", "restart") == b"+OK\r\n"  # appendfsync always
        os.kill(inst.meta.pid, signal.SIGKILL)  # QEMU itself: no shutdown, no sync
        inst.wait_exit(30)
    with support.booted(rd, 6379) as (inst, port):
        assert redis(port, "GET", "after") == b"$7\r\nrestart\r\n"
        assert redis(port, "GET", "greeting") == b"$5\r\nhello\r\n"


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

