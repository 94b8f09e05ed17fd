"""Helpers for tests: the CLI in a child process, free ports, polling, compiling C, booting an
image in-process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def compile_c(source: Path, out: Path, *flags: str) -> Path:
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(out), str(source), *flags], check=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engitor(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "engitor", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"engitor {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def spawn(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
          ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engitor", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def wait_for(check: Callable[[], object], timeout: float = 90, what: str = "condition") -> object:
    """Poll until `check()` is truthy; VMs boot under TCG on a shared 2-core host."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def http_get(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()



@contextlib.contextmanager
def home_env(path: Path) -> Iterator[Path]:
    """ENGITOR_HOME set to `path` for a module's tests (monkeypatch is per test), then put back."""
    old = os.environ.get("ENGITOR_HOME")
    os.environ["ENGITOR_HOME"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            del os.environ["ENGITOR_HOME"]
        else:
            os.environ["ENGITOR_HOME"] = old


@contextlib.contextmanager
def booted(image: Any, guest_port: int | None = None) -> Iterator[tuple[Any, int]]:
    """Build `image` and boot it under TCG, `guest_port` forwarded from a free host port; yields
    (instance, host port or 0). The VM is killed and its run folder removed afterwards."""
    from engitor.image import hosttools, pipeline
    from engitor.recipe.model import Accel, Port
    from engitor.vm import runner

    host = free_port() if guest_port else 0
    image = image.with_settings(accel=Accel.TCG,
                                ports=(Port(host, guest_port),) if guest_port else ())
    inst = runner.launch(pipeline.build(image), image, tools=hosttools)
    try:
        yield inst, host
    finally:
        inst.kill()
        inst.remove()
