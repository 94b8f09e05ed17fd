"""engitor pkg list|show|get and engitor load, as a user runs them; bad input gives one line and
exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

RUNTIMES = ("erlang", "java", "nginx", "node", "php", "python3", "ruby")


def engitor(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engitor", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_pkg_list_names_every_runtime(tmp_path):
    proc = engitor("pkg", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert sorted(names) == sorted(set(names)) and set(RUNTIMES) <= set(names)
    python = next(line for line in proc.stdout.splitlines() if line.startswith("python3 "))
    assert "Python 3" in python


def test_pkg_show_gives_version_packages_and_size(tmp_path):
    assert engitor("pkg", "get", "python3", cwd=tmp_path).returncode == 0
    proc = engitor("pkg", "show", "python3", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["cached"] and info["version"][0].startswith("python3 3.11.")
    names = {p["package"] for p in info["packages"]}
    assert {"python3", "libc6"} <= names
    assert all("Debian" in p["origin"] for p in info["packages"])
    assert any(s.startswith("dpkg ") for s in info["skipped"])
    # Kept files include the bytecode compiled at build time, which Installed-Size does not count.
    assert info["installed_size"] > 20 * 2**20 and info["kept_size"] > 20 * 2**20
    text = engitor("pkg", "show", "python3", cwd=tmp_path).stdout
    assert "Debian's Installed-Size" in text and "in an image" in text
    assert text.splitlines()[0] == "python3: Python 3 (CPython), the whole standard library"


def test_pkg_show_before_any_fetch_asks_apt_and_downloads_nothing(tmp_path):
    home = tmp_path / "home"
    proc = engitor("pkg", "show", "nginx", "--json", cwd=tmp_path, env={"ENGITOR_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert not info["cached"] and info["version"][0].startswith("nginx 1.22.1")
    assert {"nginx", "nginx-common"} <= {p["package"] for p in info["packages"]}
    assert not any(p["cached"] for p in info["packages"])
    assert not list((home / "debs").glob("*.deb"))
    text = engitor("pkg", "show", "nginx", cwd=tmp_path, env={"ENGITOR_HOME": str(home)}).stdout
    assert "not fetched: 'engitor pkg get nginx' downloads" in text


def test_pkg_get_prints_what_it_fetched(tmp_path):
    proc = engitor("pkg", "get", "nginx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nginx: nginx 1.22.1"), proc.stdout
    assert "Debian packages, installed" in proc.stdout and "in an image" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("pkg", "show", "pyhton3"), "unknown runtime package 'pyhton3' (hint: did you mean "
                                 "'python3'?"),
    (("load", "rubby", "-a", "x.rb"), "unknown runtime package 'rubby' (hint: did you mean "
                                      "'ruby'?"),
    (("load", "python3", "-a", "missing.py"), "script missing.py: no such file (hint: paths "
                                              "are relative to "),
    (("pkg", "get"), "name runtime packages to fetch, or --all"),
])
def test_bad_input(tmp_path, args, message):
    assert message in one_line_error(engitor(*args, cwd=tmp_path))


def test_a_package_recipe_without_a_program(tmp_path):
    folder = tmp_path / "packages"
    folder.mkdir()
    (folder / "broken.lua").write_text('package "broken" {\n  debs = {"python3"},\n}\n')
    line = one_line_error(engitor("load", "broken", cwd=tmp_path))
    assert line == (f"engitor: {folder / 'broken.lua'}:1: package 'broken' has no program "
                    "(hint: The runtime's executable, a path inside its packages; a glob must "
                    "match one file. Write program = \"/usr/bin/python3\")")


def test_a_recipe_asking_too_little_memory_for_its_runtime(tmp_path):
    (tmp_path / "app.lua").write_text('image "app" {\n  package = "nginx", memory = "64M" }\n')
    line = one_line_error(engitor("build", "app.lua", cwd=tmp_path))
    assert line.startswith("engitor: app.lua:1: package nginx needs at least ")
    assert "image 'app' has 64M" in line


@pytest.mark.vm
def test_load_runs_a_script_with_its_args_env_and_exit_code(tmp_path):
    (tmp_path / "app.py").write_text("import os, sys\n"
                                     "print(os.environ['GREETING'], *sys.argv[1:])\n"
                                     "sys.exit(3)\n")
    proc = engitor("load", "python3", "-q", "--accel", "tcg", "-e", "GREETING=hi", "-a", "app.py",
                   "--", "world", "-x", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "hi world -x"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.vm
def test_a_recipe_uses_a_package_and_forwards_its_port(tmp_path):
    """image "app" { package = "python3", args = {"app.py"} }: app.py named in args comes along."""
    port = free_port()
    (tmp_path / "app.py").write_text("""\
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"served once\\n")
http.server.HTTPServer(("0.0.0.0", 8000), H).handle_request()
""")
    (tmp_path / "app.lua").write_text(
        f'image "app" {{ package = "python3", args = {{"app.py"}}, ports = {{"{port}:8000"}},'
        f' accel = "tcg" }}\n')
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "app.lua"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    body = r.read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no answer"
                time.sleep(0.3)
        assert body == b"served once\n"
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert '"GET / HTTP/1.1" 200' in err + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
