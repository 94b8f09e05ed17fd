"""Every bad input of `engitor run`/`build`: one line naming what and where, a hint, exit 2,
no traceback, nothing written to the image store."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import engitor

EMPTY_APT = "Dir::Etc::sourcelist \"/dev/null\";\nDir::Etc::sourceparts \"/nonexistent\";\n" \
            "Dir::State::lists \"{lists}\";\nDir::Cache \"{cache}\";\n"


def check_one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("engitor: ") and "(hint: " in line, line
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in line, line
    return line


def nothing_stored(h: Path) -> None:
    images = h / "images"
    assert not images.exists() or not any(images.iterdir())


def run(h: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return engitor(*args, cwd=cwd, env={"ENGITOR_HOME": str(h), **(env or {})}, timeout=120)


def test_missing_program(fresh_home: Path, tmp_path: Path):
    check_one_line(run(fresh_home, "run", "./nope", cwd=tmp_path), "program ./nope: no such file")
    nothing_stored(fresh_home)


def test_directory(fresh_home: Path, tmp_path: Path):
    (tmp_path / "adir").mkdir()
    check_one_line(run(fresh_home, "build", "adir", cwd=tmp_path), "adir is a directory")
    nothing_stored(fresh_home)


def test_not_elf(fresh_home: Path, tmp_path: Path):
    (tmp_path / "app.py").write_text("print('hi')\n")
    line = check_one_line(run(fresh_home, "run", "app.py", cwd=tmp_path), "not an ELF")
    assert "engitor load python3" in line
    nothing_stored(fresh_home)


def test_other_architecture(fresh_home: Path, tmp_path: Path, programs: Path):
    data = bytearray((programs / "exit3").read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    (tmp_path / "arm").write_bytes(bytes(data))
    check_one_line(run(fresh_home, "run", "./arm", cwd=tmp_path), "built for arm64")
    nothing_stored(fresh_home)


def test_missing_shared_library(fresh_home: Path, tmp_path: Path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "a.c").write_text("int answer(void){return 42;}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", "lib/libanswer.so", "a.c"], cwd=tmp_path,
                   check=True)
    (tmp_path / "m.c").write_text("int answer(void);\nint main(void){return answer();}\n")
    subprocess.run(["cc", "-o", "app", "m.c", "-Llib", "-lanswer"], cwd=tmp_path, check=True)
    check_one_line(run(fresh_home, "run", "./app", cwd=tmp_path),
                   "library libanswer.so not found (needed by /app)")
    nothing_stored(fresh_home)


def test_port_in_use(fresh_home: Path, tmp_path: Path, programs: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check_one_line(run(fresh_home, "run", str(programs / "server"), "-p", f"{port}:8080",
                           cwd=tmp_path), f"host port {port}/tcp on 127.0.0.1 is already in use")
    nothing_stored(fresh_home)


@pytest.mark.parametrize("flags,needle", [
    (["-p", "80x"], "-p 80x"), (["-p", "8080:99999"], "out of range"),
    (["-e", "JUSTNAME"], "-e JUSTNAME: expected KEY=VALUE"),
    (["-m", "lots"], "-m lots"), (["-m", "1.5G"], "-m 1.5G"),
])
def test_malformed_flags(fresh_home: Path, tmp_path: Path, programs: Path, flags, needle):
    check_one_line(run(fresh_home, "run", str(programs / "exit3"), *flags, cwd=tmp_path), needle)
    nothing_stored(fresh_home)


def test_qemu_not_installed(fresh_home: Path, tmp_path: Path, programs: Path):
    # A PATH without QEMU (python runs from its absolute path).
    bare = tmp_path / "bin"
    bare.mkdir()
    line = check_one_line(run(fresh_home, "run", str(programs / "exit3"), cwd=tmp_path,
                              env={"PATH": str(bare)}), "qemu-system-x86_64 is not installed")
    assert "apt-get install qemu-system-x86" in line
    nothing_stored(fresh_home)


def test_kernel_unavailable_offline(tmp_path: Path, programs: Path):
    """No cached kernel and an apt that knows no archive: say how to get one."""
    h = tmp_path / "empty-home"
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    conf = tmp_path / "apt.conf"
    conf.write_text(EMPTY_APT.format(lists=lists, cache=tmp_path / "aptcache"))
    line = check_one_line(run(h, "build", "-q", str(programs / "exit3"), cwd=tmp_path,
                              env={"APT_CONFIG": str(conf)}),
                          "kernel linux-image-cloud-amd64 is not cached and could not be fetched")
    assert "--kernel PATH" in line
    nothing_stored(h)


def test_unknown_verb_and_usage_errors_are_one_line(tmp_path: Path):
    proc = engitor("frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "engitor", "--debug", "run", "./nope"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "ENGITOR_HOME": str(tmp_path / "h")})
    assert "Traceback" in proc.stderr and "UserError" in proc.stderr
