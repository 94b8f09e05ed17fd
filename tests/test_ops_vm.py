"""Acceptance (boots VMs under QEMU): ops users' configs, through the CLI as they would type it.

- The seeds' example: a Go file server (main.go serving ./static, built with Debian's
  golang-go, with cgo, so dynamically linked) and {"Dirs": ["static"]}, run as
  `engitor run -p PORT-8080 -c config.json server`, serves /hello.html to curl.
- ops' config shapes: Files + Args, MapDirs globs, Env, RunConfig.Ports and Memory in one boot
  (the C web server); ENV, Dirs, RunConfig.Memory and CPUs and ops' copy of the file Args
  names in another (a small C program that reports what it finds).

Host ports are free ones picked at run time; each VM is stopped by a request or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from support import free_port

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ENGITOR = [sys.executable, "-m", "engitor"]
BOOT_WAIT = 180  # seconds: boots share two cores with other builds and guests

pytestmark = pytest.mark.vm


@contextlib.contextmanager
def engitor_run(argv: list[str], cwd: Path, env: dict[str, str] | None = None
                ) -> Iterator[subprocess.Popen]:
    """`engitor run ARGV` in the foreground of a child process; SIGTERM (what Ctrl-C does)
    stops it at the end if the program has not ended by itself."""
    out = open(cwd / "run.out", "w+")
    proc = subprocess.Popen([*ENGITOR, "run", *argv], cwd=cwd, stdout=out,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()


def output(cwd: Path) -> str:
    return (cwd / "run.out").read_text(errors="replace")


def curl(url: str, proc: subprocess.Popen, cwd: Path, *, deadline: float) -> str:
    """curl URL until it answers (the VM is booting), failing early if engitor ends."""
    while True:
        done = subprocess.run(["curl", "-sS", "--fail", "--max-time", "5", url],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
        if proc.poll() is not None:
            pytest.fail(f"engitor run ended ({proc.returncode}) before {url} answered:\n"
                        f"{output(cwd)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer: {done.stderr}\n{output(cwd)}")
        time.sleep(0.3)


def is_dynamic(path: Path) -> bool:
    with path.open("rb") as f:
        return any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments())


@pytest.fixture(scope="module")
def go_server(tmp_path_factory) -> Path:
    """recipes/ops (main.go, static/, config.json) with `server` built by Debian's Go."""
    root = tmp_path_factory.mktemp("ops") / "app"
    shutil.copytree(RECIPES / "ops", root, ignore=shutil.ignore_patterns("server"))
    cache = root.parent / "go"
    env = {**os.environ, "GOCACHE": str(cache / "cache"), "GOPATH": str(cache / "path"),
           "GOFLAGS": "", "HOME": str(cache)}
    subprocess.run(["go", "build", "-o", "server", "main.go"], cwd=root, env=env, check=True,
                   timeout=600)
    return root


def test_the_go_file_server_serves_hello_html_to_curl(go_server):
    assert json.loads((go_server / "config.json").read_text()) == {"Dirs": ["static"]}
    assert is_dynamic(go_server / "server")  # cgo's resolver: libc comes along
    port = free_port()
    with engitor_run(["-p", f"{port}-8080", "-c", "config.json", "server"], go_server) as proc:
        page = curl(f"http://127.0.0.1:{port}/hello.html", proc, go_server,
                    deadline=time.monotonic() + BOOT_WAIT)
        assert page == (go_server / "static/hello.html").read_text()
    assert "Listening on :8080" in output(go_server)


@pytest.fixture(scope="module")
def c_programs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    subprocess.run(["cc", "-O2", "-o", str(root / "server"), str(RECIPES / "web/server.c")],
                   check=True)
    (root / "report.c").write_text(r"""
#include <stdio.h>
#include <stdlib.h>
/* Prints each file its arguments name, $GREETING, the guest's MemTotal and CPU count. */
int main(int argc, char **argv) {
    char line[512];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) { printf("%s: missing\n", argv[i]); continue; }
        while (fgets(line, sizeof line, f)) printf("%s: %s", argv[i], line);
        fclose(f);
    }
    printf("GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "(unset)");
    FILE *m = fopen("/proc/meminfo", "r");
    if (m && fgets(line, sizeof line, m)) printf("%s", line);
    int cpus = 0;
    FILE *c = fopen("/proc/cpuinfo", "r");
    while (c && fgets(line, sizeof line, c)) cpus += line[0] == 'p' && line[1] == 'r';
    printf("cpus=%d\n", cpus);
    return 0;
}
""")
    subprocess.run(["cc", "-O2", "-o", str(root / "report"), str(root / "report.c")], check=True)
    return root


def test_files_args_mapdirs_env_ports_memory(c_programs):
    root = c_programs / "a"
    (root / "pages").mkdir(parents=True)
    shutil.copy(c_programs / "server", root / "server")
    (root / "motd.txt").write_text("message of the day\n")
    (root / "pages/a.html").write_text("<p>page a</p>\n")
    (root / "pages/b.html").write_text("<p>page b</p>\n")
    (root / "pages/notes.txt").write_text("not matched by the glob\n")
    port = free_port()
    (root / "config.json").write_text(json.dumps({
        "Files": ["motd.txt"],
        "Args": ["-port", "8080", "-root", "/", "-name", "shapes"],
        "MapDirs": {"pages/*.html": "/www"},
        "Env": {"GREETING": "hello from Env"},
        "RunConfig": {"Ports": [f"{port}-8080"], "Memory": "192M"},
    }, indent=2))
    with engitor_run(["-c", "config.json", "server"], root) as proc:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + BOOT_WAIT
        assert curl(f"{base}/motd.txt", proc, root, deadline=deadline) == "message of the day\n"
        assert curl(f"{base}/www/a.html", proc, root, deadline=deadline) == "<p>page a</p>\n"
        assert curl(f"{base}/www/b.html", proc, root, deadline=deadline) == "<p>page b</p>\n"
        missing = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"{base}/www/notes.txt"], capture_output=True, text=True)
        assert missing.stdout == "404"
        assert curl(f"{base}/env/GREETING", proc, root, deadline=deadline) == "hello from Env\n"
        assert curl(f"{base}/args", proc, root, deadline=deadline) == \
            "/server\n-port\n8080\n-root\n/\n-name\nshapes\n"
        assert curl(f"{base}/exit?code=7", proc, root, deadline=deadline) == "bye 7\n"
        assert proc.wait(60) == 7  # engitor run exits with the program's code, as ops run does


def test_env_spelled_ENV_dirs_args_copy_memory_cpus(c_programs):
    root = c_programs / "b"
    (root / "data").mkdir(parents=True)
    shutil.copy(c_programs / "report", root / "report")
    (root / "note.txt").write_text("copied in because Args names it\n")
    (root / "data/x.txt").write_text("from Dirs\n")
    config = json.dumps({
        "ENV": {"GREETING": "hello from ENV"},
        "Args": ["note.txt", "data/x.txt"],
        "Dirs": ["data"],
        "RunConfig": {"Memory": "160M", "CPUs": 2, "Verbose": True},
        "Klibs": ["ntp"],
    })
    (root / "config.json").write_text(config)
    proc = subprocess.run([*ENGITOR, "run", "-c", "config.json", "report"], cwd=root,
                          capture_output=True, text=True, timeout=BOOT_WAIT + 60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "note.txt: copied in because Args names it" in lines
    assert "data/x.txt: from Dirs" in lines
    assert "GREETING=hello from ENV" in lines
    assert "cpus=2" in lines
    total_kib = int(re.search(r"MemTotal:\s+(\d+) kB", proc.stdout).group(1))
    assert 100 * 1024 < total_kib <= 160 * 1024  # 160M, less what the kernel keeps
    # Keys engitor cannot honour were named on stderr, one line each.
    column = config.index('"Klibs"') + 1
    assert f"config.json:1:{column}: warning: Klibs is not used: Nanos kernel libraries" in \
        proc.stderr
    assert "warning: RunConfig.Verbose is not used" in proc.stderr
