"""Debian daemons as Debian ships them: their packages whole (`debian`), their users (`user`),
what their maintainer scripts would have made. Real packages from Debian's archive, real boots
under TCG (marked vm); each test boots one VM."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import support
from test_runtime_vm import booted, console, get, wait_for

pytestmark = pytest.mark.vm


def memcached_command(port: int, payload: bytes, until: bytes, timeout: float = 150) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(payload)
                got = b""
                while not got.endswith(until):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                if got.endswith(until):
                    return got
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"memcached never answered {payload!r}")
        time.sleep(0.5)


def test_memcached_from_debian_as_its_own_user(tmp_path):
    # memcached refuses to run as root without -u: it serving at all shows the drop worked.
    with booted("memcached", tmp_path, 11211, debian=["memcached"],
                program="/usr/bin/memcached", user="memcache") as (inst, port):
        stored = memcached_command(port, b"set greeting 0 0 5\r\nhello\r\n", b"\r\n")
        assert stored == b"STORED\r\n", console(inst)[-2000:]
        got = memcached_command(port, b"get greeting\r\n", b"END\r\n")
        assert got == b"VALUE greeting 0 5\r\nhello\r\nEND\r\n"
        assert "can't run as root" not in console(inst)


# Debian's nginx.conf includes conf.d/*.conf in its http block: a second server (chosen by its
# Host header) beside the default site, over two folders the init makes at boot from a tmpfiles.d file, one only
# www-data may read and one only root may read. A worker lists the first and is refused the
# second, so workers run as www-data (and not as root, as the master does).
PROBE_SITE = """\
server {
    listen 80;
    server_name probe;
    location / { root /srv; autoindex on; }
}
"""
PROBE_DIRS = "d /srv/www-data-only 0700 www-data www-data -\nd /srv/root-only 0700 root root -\n"


def test_nginx_with_debians_configuration_workers_as_www_data(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d/probe.conf").write_text(PROBE_SITE)
    (tmp_path / "tmpfiles.d").mkdir()
    (tmp_path / "tmpfiles.d/probe.conf").write_text(PROBE_DIRS)
    with booted("nginx-deb", tmp_path, 80, debian=["nginx"], program="/usr/sbin/nginx",
                args=["-g", "daemon off;"],
                map={"conf.d/*": "/etc/nginx/conf.d",
                     "tmpfiles.d/*": "/etc/tmpfiles.d"}) as (inst, port):
        # Debian's default site: sites-enabled/default and the index its postinst makes.
        assert "<title>Welcome to nginx!</title>" in get(inst, f"http://127.0.0.1:{port}/")
        assert status(port, "/www-data-only/") == 200
        assert status(port, "/root-only/") == 403


def status(port: int, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "probe"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_program_calling_popen_gets_a_shell(programs: Path):
    from engitor.recipe.settings import make_image

    image = make_image("popen", {"program": str(programs / "popen_echo")}, where="test")
    with support.booted(image.with_settings(boot_timeout=180)) as (inst, _):
        log = wait_for(inst, "@@engitor:exit", timeout=150)
        assert "shell says 42" in log and "@@engitor:exit code=0" in log, log[-2000:]


def test_user_setting_drops_root_and_keeps_low_ports(programs: Path):
    from engitor.recipe.settings import make_image

    # www-data (33:33) from base-passwd; port 80 forwarded, so it keeps CAP_NET_BIND_SERVICE.
    image = make_image("lowport", {"program": str(programs / "bind_low"), "user": "www-data"},
                       where="test")
    with support.booted(image.with_settings(boot_timeout=180), 80) as (inst, _):
        log = wait_for(inst, "@@engitor:exit", timeout=150)
        assert "uid=33 euid=33 gid=33 groups=1:33" in log, log[-2000:]
        assert "bind 80: ok" in log
