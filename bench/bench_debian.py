"""Debian daemons (issue 14): the shipped recipes' builds, sizes and time to ready; haproxy's
throughput beside a direct connection.

For each shipped daemon recipe (recipes/postgres.lua, mariadb, memcached, redis, haproxy, and
nginx as `--deb nginx`):
  cold     an engitor home with nothing of the recipe's packages unpacked or merged (the kernel
           and the downloaded .debs shared: the archive's speed is not engitor's): resolve with
           apt, unpack, merge, build the image.
  warm     packages cached, a new image assembled (other args); unchanged: found in the store.
  sizes    Debian's Installed-Size summed over the packages in the image; the initramfs
           uncompressed (what the guest holds in memory) and compressed.
  ready    from `launch` (QEMU started, TCG) until the daemon answers its own protocol on the
           forwarded port (a client's request, not a TCP connect: the port forward accepts
           before the guest listens). A database's first boot initialises it first.
haproxy: N sequential HTTP GETs to a web VM directly and through a haproxy VM (both TCG).

Run: .venv/bin/python bench/bench_debian.py [NAME ...]   (prints a Markdown section)
CPU-heavy: each recipe boots a VM; run it when the machine is quiet.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchlib import ROOT, cpu

from engitor import home
from engitor.image import pipeline
from engitor.packages import cache
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import Accel, Image, MiB, Port
from engitor.recipe.settings import make_image
from engitor.vm import runner

ORDER = ("memcached", "redis", "nginx", "haproxy", "postgres", "mariadb")
ENV = {"postgres": {"POSTGRES_PASSWORD": "bench"}, "mariadb": {"MARIADB_ROOT_PASSWORD": "bench"}}
REQUESTS = 300


def recipe_image(name: str) -> Image:
    if name == "nginx":
        return make_image("nginx-deb", {"debian": ["nginx"], "program": "/usr/sbin/nginx",
                                        "args": ["-g", "daemon off;"], "ports": [80]})
    (image,) = load_recipe(ROOT / "recipes" / f"{name}.lua").images
    return image.with_settings(env={**image.env, **ENV.get(name, {})})


def fresh_home(work: Path, real: Path) -> None:
    h = Path(tempfile.mkdtemp(dir=work, prefix="home-"))
    for name in ("kernels", "cache", "debs", "apt"):
        (h / name).symlink_to(real / name)
    os.environ["ENGITOR_HOME"] = str(h)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def installed_size(image: Image) -> int:
    """Debian's Installed-Size of the image's packages (the last resolution)."""
    from engitor.packages import debian

    resolution = cache.read_resolution(debian.recipe_for(image).name)
    assert resolution is not None
    units = cache.units_of(resolution) or []
    return sum(u.installed_size for u in units)


def answers(name: str, port: int) -> bool:
    """The daemon's own protocol answers (one request)."""
    if name in ("nginx", "haproxy"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                return r.status == 200
        except urllib.error.HTTPError as e:  # haproxy's own 503: no backend here, but it answers
            return name == "haproxy" and e.code == 503
    if name == "postgres":
        return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0
    if name == "mariadb":
        return subprocess.run(["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", "root",
                               "-pbench", "--connect-timeout=5", "-e", "select 1"], capture_output=True).returncode == 0
    request, reply = {"memcached": (b"version\r\n", b"VERSION"),
                      "redis": (b"PING\r\n", b"+PONG")}[name]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        return s.recv(64).startswith(reply)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def boot(image: Image, guest: int) -> tuple[runner.Instance, int]:
    host = free_port()
    image = image.with_settings(accel=Accel.TCG, ports=(Port(host, guest),))
    return runner.launch(pipeline.build(image), image), host


def ready_time(name: str, image: Image) -> float:
    guest = image.ports[0].guest
    start = time.perf_counter()
    inst, port = boot(image, guest)
    try:
        while time.perf_counter() - start < 900:
            try:
                if answers(name, port):
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{name} never answered")
    finally:
        inst.kill()
        inst.remove()


def throughput(url: str) -> float:
    for _ in range(10):  # warm-up: connections, caches
        urllib.request.urlopen(url, timeout=30).read()
    start = time.perf_counter()
    for _ in range(REQUESTS):
        urllib.request.urlopen(url, timeout=30).read()
    return REQUESTS / (time.perf_counter() - start)


def haproxy_vs_direct() -> tuple[float, float]:
    subprocess.run(["cc", "-O2", "-o", str(ROOT / "recipes/web/server"),
                    str(ROOT / "recipes/web/server.c")], check=True)
    (web,) = load_recipe(ROOT / "recipes/web.lua").images
    web_vm, web_port = boot(web, 8080)
    try:
        proxy = recipe_image("haproxy")
        proxy = proxy.with_settings(env={**proxy.env, "BACKEND": f"10.0.2.2:{web_port}"})
        proxy_vm, proxy_port = boot(proxy, 80)
        try:
            for port in (web_port, proxy_port):
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                        break
                    except OSError:
                        time.sleep(0.5)
            direct = throughput(f"http://127.0.0.1:{web_port}/")
            through = throughput(f"http://127.0.0.1:{proxy_port}/")
            return direct, through
        finally:
            proxy_vm.kill()
            proxy_vm.remove()
    finally:
        web_vm.kill()
        web_vm.remove()


def main(names: list[str]) -> int:
    real = home.home()
    work = Path(tempfile.mkdtemp(prefix="engitor-bench-daemons-"))
    rows = []
    try:
        for name in names or ORDER:
            image = recipe_image(name)
            fresh_home(work, real)
            cold = timed(lambda image=image: pipeline.build(image))
            changed = image.with_settings(args=(*image.args,), env={**image.env, "BENCH": "1"})
            warm = timed(lambda changed=changed: pipeline.build(changed))
            same = timed(lambda image=image: pipeline.build(image))
            stored = pipeline.build(image)
            raw = stored.manifest["initrd"]["uncompressed"]
            rows.append((name, cold, warm, same, installed_size(image), raw,
                         stored.initrd.stat().st_size, ready_time(name, image)))
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
        direct, through = haproxy_vs_direct() if not names or "haproxy" in names else (0, 0)
    finally:
        os.environ.pop("ENGITOR_HOME", None)
        shutil.rmtree(work, ignore_errors=True)
    out = [
        "## Debian daemons",
        "",
        "Script: `bench/bench_debian.py` (issue 14); one run of each figure (each boots a VM "
        "under TCG on a machine shared with other sessions: load average "
        f"{os.getloadavg()[0]:.1f} at the end).",
        "",
        f"**Machine.** {cpu()}, {os.cpu_count()} cores; Debian 12; TCG. "
        f"**Date.** {datetime.date.today().isoformat()}.",
        "",
        "| recipe | cold build | warm build | unchanged | Debian Installed-Size | initramfs "
        "(in guest memory) | initramfs (zstd) | in memory / Installed-Size | run to ready |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cold, warm, same, installed, raw, packed, ready in rows:
        out.append(f"| {name} | {cold:.1f} s | {warm:.1f} s | {same:.2f} s | "
                   f"{installed / MiB:.1f} MiB | {raw / MiB:.1f} MiB | {packed / MiB:.1f} MiB | "
                   f"{raw / installed:.0%} | {ready:.1f} s |")
    if direct:
        out += ["", f"haproxy (Debian's configuration, `-db`) in front of the web recipe's VM, "
                    f"{REQUESTS} sequential GETs of its index page, one connection each: "
                    f"direct {direct:.0f} req/s, through haproxy {through:.0f} req/s "
                    f"({through / direct:.2f}× direct; two TCG guests, user networking twice)."]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
