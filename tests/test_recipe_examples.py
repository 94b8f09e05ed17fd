"""The example recipes in recipes/: the models they declare, and (marked vm) that they all build
and that the web server, nginx and redis images boot and serve."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import support

from engitor.recipe import settings
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import Image, MiB, Port

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_every_example_recipe_loads():
    for path in sorted(RECIPES.glob("*.lua")):
        recipe = load_recipe(path)
        assert recipe.images, path


def test_web_recipe_model():
    (web,) = load_recipe(RECIPES / "web.lua").images
    assert web == Image(name="web", program="web/server",
                        args=("-port", "8080", "-root", "/www", "-name", "web"),
                        map={"web/www/*": "/www"}, env={"MODE": "prod"}, ports=(Port(8080, 8080),),
                        memory=128 * MiB, base_dir=RECIPES)
    assert set(web.hooks) == {"before_build"}


def test_nginx_recipe_model():
    (nginx,) = load_recipe(RECIPES / "nginx.lua").images
    assert nginx == Image(name="nginx", program="/usr/sbin/nginx",
                          args=("-c", "/etc/nginx/nginx.conf", "-e", "stderr", "-g", "daemon off;"),
                          map={"nginx/nginx.conf": "/etc/nginx", "nginx/html/*": "/srv/www"},
                          ports=(Port(8081, 80),), memory=192 * MiB, base_dir=RECIPES)
    assert (RECIPES / "nginx/nginx.conf").is_file()


def test_redis_recipe_model():
    (redis,) = load_recipe(RECIPES / "redis.lua").images
    assert redis.program == "/usr/bin/redis-server" and redis.ports == (Port(6379, 6379),)
    assert redis.debian == ("redis-server",) and redis.user == "redis"
    assert redis.args[0] == "/etc/redis/redis.conf" and "--appendonly" in redis.args


def test_fleet_declares_three_images_from_a_loop_and_a_module():
    fleet = load_recipe(RECIPES / "fleet.lua").images
    assert [i.name for i in fleet] == ["site-red", "site-green", "site-blue"]
    for n, (image, color) in enumerate(zip(fleet, ("red", "green", "blue"), strict=True), 1):
        assert image == Image(name=f"site-{color}", program="web/server",
                              args=("-port", str(8090 + n), "-root", "/www", "-name", color),
                              map={"web/www/*": "/www"}, env={"SITE": color},
                              ports=(Port(8090 + n, 8090 + n),), memory=128 * MiB,
                              base_dir=RECIPES)


def test_the_web_before_build_hook_writes_into_staging(tmp_path, capsys):
    (web,) = load_recipe(RECIPES / "web.lua").images
    web.hooks["before_build"].call({"name": "web", "staging": str(tmp_path)})
    assert (tmp_path / "www/build.txt").read_text() == "built by engitor for image web\n"
    assert "[web] added /www/build.txt" in capsys.readouterr().err


def test_the_readme_example_means_what_it_says(tmp_path):
    block = re.search(r"```lua\n(.*?)```", (RECIPES / "README.md").read_text(), re.S).group(1)
    (tmp_path / "recipe.lua").write_text(block)
    (tmp_path / "common.lua").write_text('return { program = "./worker" }')
    web, *workers = load_recipe(tmp_path / "recipe.lua").images
    assert web == Image(name="web", program="./server", args=("-port", "8080"), dirs=("static",),
                        map={"conf/*": "/etc/app"}, env={"MODE": "prod"},
                        ports=(Port(8080, 8080), Port(8443, 443)), base_dir=tmp_path)
    assert set(web.hooks) == {"before_build", "files"}
    assert [(w.name, w.program, w.args) for w in workers] == \
        [(f"worker-{i}", "./worker", ("-id", str(i))) for i in (1, 2, 3)]


def test_the_server_compiles_cleanly(tmp_path):
    out = tmp_path / "server"
    proc = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                           str(RECIPES / "web/server.c")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# Integration: real builds, real VMs under TCG.


def engitor(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engitor", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.vm
def test_every_example_recipe_builds(recipes):
    for name in ("web", "redis", "nginx", "fleet"):
        proc = engitor("build", "-q", f"{name}.lua", cwd=recipes)
        assert proc.returncode == 0, proc.stderr
        ids = proc.stdout.split()
        assert len(ids) == len(load_recipe(recipes / f"{name}.lua").images)
        assert all(len(i) >= 12 for i in ids), proc.stdout


@contextlib.contextmanager
def booted(image: Image, guest_port: int) -> Iterator[tuple[object, int]]:
    """Build and boot `image` (its generators run first) with its guest port forwarded."""
    with support.booted(settings.expand_generators(image, {"name": image.name}),
                        guest_port) as booted_vm:
        yield booted_vm


def get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.vm
def test_web_boots_serves_and_exits_with_the_code_asked(recipes):
    from engitor.vm import runner

    (web,) = load_recipe(recipes / "web.lua").images
    with booted(web, 8080) as (inst, port):
        deadline = time.monotonic() + 60
        assert "Hello from an engitor micro-VM" in get(f"http://127.0.0.1:{port}/", deadline)
        # Written by the recipe's before_build hook into the staging tree.
        assert get(f"http://127.0.0.1:{port}/build.txt", deadline) == \
            "built by engitor for image web\n"
        assert get(f"http://127.0.0.1:{port}/env/MODE", deadline) == "prod\n"
        assert get(f"http://127.0.0.1:{port}/exit?code=3", deadline) == "bye 3\n"
        outcome = runner.follow(inst, out=None)
        assert outcome.exit_status == 3


@pytest.mark.vm
def test_nginx_boots_with_its_own_config_and_serves(recipes):
    (nginx,) = load_recipe(recipes / "nginx.lua").images
    with booted(nginx, 80) as (_, port):
        deadline = time.monotonic() + 60
        assert "nginx, served from an engitor micro-VM" in \
            get(f"http://127.0.0.1:{port}/", deadline)
        assert get(f"http://127.0.0.1:{port}/healthz", deadline) == "ok nginx\n"
