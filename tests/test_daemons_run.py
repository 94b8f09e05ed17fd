"""What daemons and their users expect of `run`: readiness from the guest, programs that fork,
a stop reported as a stop, --env-file, -q, /dev/stdout and /dev/log."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import engitor, free_port

from engitor.errors import UserError
from engitor.recipe import envfile
from engitor.recipe.model import Port
from engitor.vm import ready, runner
from engitor.vm.instance import Status

# ---- pure parts ---------------------------------------------------------------------------------


def test_env_file_in_dockers_format():
    text = ("\ufeff# a comment\n\n  MODE=prod\nQUOTED=\"kept as is\"\nEMPTY=\nEQ=a=b\n"
            "FROM_HOST\nUNSET_HERE\n")
    assert envfile.parse(text, "app.env", {"FROM_HOST": "yes"}) == {
        "MODE": "prod", "QUOTED": '"kept as is"', "EMPTY": "", "EQ": "a=b", "FROM_HOST": "yes"}
    with pytest.raises(UserError) as e:
        envfile.parse("OK=1\nBAD NAME=2\n", "app.env", {})
    assert e.value.where == "app.env:2" and "contains whitespace" in e.value.message
    with pytest.raises(UserError):
        envfile.parse("=value\n", "app.env", {})


def test_listening_reports_and_readiness():
    seen = ready.Listening()
    ports = [Port(18080, 8080), Port(5353, 53, ready.Proto.UDP)]
    seen.feed("listen uptime=1.500")
    assert seen.reported and not ready.is_ready(seen, ports)
    seen.feed("listen uptime=2.250 127.0.0.1:8080 [::1]:9000")
    assert not ready.is_ready(seen, ports) and seen.loopback_only(8080)
    seen.feed("listen uptime=3.000 0.0.0.0:8080 [::]:9000")
    assert ready.is_ready(seen, ports) and ready.ready_uptime(seen, ports) == 3.0
    assert ready.reachable_ports(seen.addrs) == {8080, 9000}
    assert ready.waited_ports(ports) == [8080]  # UDP has no listening state
    assert ready.is_ready(ready.Listening(), [])  # nothing forwarded: ready once started


def test_a_stop_that_ends_the_program_by_sigterm_is_a_stop():
    for line in ("exit signal=15 name=SIGTERM", "exit code=143"):
        st = Status()
        for text in ("@@engitor:start pid=5 uptime=1.0", "@@engitor:stopping", "@@engitor:" + line):
            st.feed(text)
        assert st.graceful_stop
        assert runner.Outcome(st, "stopped").exit_status == 0
    crashed = Status()
    crashed.feed("@@engitor:exit signal=15 name=SIGTERM")  # not asked to stop: a kill
    assert not crashed.graceful_stop
    daemon = Status()
    daemon.feed("@@engitor:daemon left=2")
    assert daemon.daemon_left == 2 and not daemon.finished


def test_stop_timeout_flag_reaches_the_image(tmp_path: Path):
    from engitor.commands import common
    from engitor.image.init import InitConfig

    proc = engitor("build", "-q", "--stop-timeout", "x", "/bin/true", cwd=tmp_path)
    assert proc.returncode == 2 and "--stop-timeout x" in proc.stderr
    parser = __import__("argparse").ArgumentParser()
    common.add_image_flags(parser)
    args = parser.parse_args(["--stop-timeout", "3"])
    args.program_args = []
    assert common.overrides(args)["stop_timeout"] == 3
    assert b"stop_timeout 3\n" in InitConfig(argv=("/p",), stop_timeout=3).render()


# ---- booted -----------------------------------------------------------------------------------


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float = 180) -> str:
    """stderr until it contains `needle` (the VM boots under TCG on a shared host).

    Reads the pipe's fd itself: a buffered readline() may take two lines in one read, and
    select() then waits on an empty pipe for the second line that is already in the buffer.
    """
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"no {needle!r} in:\n{seen.decode()}"
        if select.select([proc.stderr], [], [], min(left, 1))[0]:
            seen += os.read(proc.stderr.fileno(), 65536)
    return seen.decode()


@pytest.mark.vm
def test_a_forking_daemon_keeps_the_vm_logs_to_dev_stdout_and_syslog_and_stops_cleanly(
        programs: Path, tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "--accel", "tcg",
                             "-p", f"{port}:8080", str(programs / "forking")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = _read_until(proc, "listening on 8080")
        if "it daemonized" not in err:  # the parent's exit may be seen after the child listens
            err += _read_until(proc, "it daemonized")
        # Ready came from the guest: the daemon answers at once, through the forward.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            assert s.recv(100) == b"daemon says hi\n"
        proc.send_signal(signal.SIGTERM)  # engitor's stop: SIGTERM reaches the daemon
        out_bytes, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    out, err = out_bytes.decode(), err + rest.decode()
    assert proc.returncode == 0, err
    assert err.count("it daemonized; the VM keeps running") == 1, err + out
    assert "listening on 8080 (guest uptime" in err
    assert err.strip().endswith("engitor: stopped")
    assert "written to /dev/stdout by name\n" in out
    assert "forking[" in out and "]: listening on port 8080\n" in out  # syslog() via /dev/log


@pytest.mark.vm
def test_quiet_env_file_and_no_started_line_when_the_program_cannot_start(
        programs: Path, tmp_path: Path):
    (tmp_path / "app.env").write_text("# settings\nGREETING=from the env file\n")
    proc = engitor("run", "-q", "--env-file", "app.env", str(programs / "exit3"), cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stdout.startswith("argc=1 host=exit3 greeting=from the env file cwd=/\n")
    assert proc.stderr == ""  # -q: the program's output only, no exit line

    (tmp_path / "bad.lua").write_text(
        f'image "bad" {{ program = "{programs / "exit3"}", workdir = "/missing" }}\n')
    proc = engitor("run", "bad.lua", cwd=tmp_path)
    assert proc.returncode == 127, proc.stderr
    assert "workdir /missing: No such file or directory" in proc.stderr
    assert "started in" not in proc.stderr


@pytest.mark.vm
def test_detached_run_returns_when_the_guest_listens(programs: Path, tmp_path: Path):
    port = free_port()
    proc = engitor("run", "-d", "--accel", "tcg", "-p", f"{port}:8080", "-n", "fork-d",
                   str(programs / "forking"), cwd=tmp_path)
    name = proc.stdout.strip()
    try:
        assert proc.returncode == 0, proc.stderr
        assert "fork-d ready in" in proc.stderr
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            assert s.recv(100) == b"daemon says hi\n"
        listed = engitor("ps", "--json", check=True).stdout
        assert '"state": "ready"' in listed
    finally:
        stopped = engitor("stop", name, timeout=120)
    assert stopped.stdout == f"{name}: stopped (exit code 0)\n", stopped.stderr


@pytest.mark.vm
def test_every_image_has_the_directories_and_dev_entries_daemons_expect(programs: Path,
                                                                        tmp_path: Path):
    proc = engitor("run", "-q", str(programs / "fhs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    assert proc.stdout.count("ok ") == 12


def test_restart_policies_parse_and_decide():
    from engitor.vm.supervisor import Policy, parse_policy

    assert parse_policy("no") == Policy("no")
    assert parse_policy("on-failure:3") == Policy("on-failure", 3)
    assert parse_policy("always") == Policy("always")
    for bad in ("sometimes", "always:2", "on-failure:x", ""):
        with pytest.raises(UserError):
            parse_policy(bad)
    on_failure = Policy("on-failure", 2)
    assert on_failure.should_restart(1, 0) and on_failure.should_restart(125, 1)
    assert not on_failure.should_restart(1, 2) and not on_failure.should_restart(0, 0)
    assert Policy("always").should_restart(0, 100) and not Policy("no").should_restart(1, 0)


def test_restart_needs_detach(programs: Path, tmp_path: Path):
    proc = engitor("run", "--restart", "always", str(programs / "exit3"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert "--restart always needs -d" in proc.stderr


@pytest.mark.vm
def test_on_failure_restarts_until_its_limit_and_ps_counts_them(programs: Path, tmp_path: Path,
                                                                fresh_home: Path):
    import json

    from support import wait_for

    proc = engitor("run", "-d", "-q", "--accel", "tcg", "--restart", "on-failure:1",
                   str(programs / "exit3"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    record = fresh_home / "run" / name / "instance.json"

    def ended_for_good() -> bool:
        meta = json.loads(record.read_text())
        return meta["restarts"] == 1 and _gone(meta["supervisor"])

    wait_for(ended_for_good, timeout=300, what="one restart, then the end")
    row = engitor("ps", "-a", check=True).stdout.splitlines()[1]
    assert row.split()[:6] == [name, "exit3", "exited", "(3),", "1", "restart"]
    assert engitor("stop", name, check=True).stdout == f"{name}: had ended (exit code 3)\n"


def _gone(pid: int) -> bool:
    """The process ended (a zombie counts: nothing reaps it in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@pytest.mark.vm
def test_a_listener_on_loopback_only_is_pointed_out(programs: Path, tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "--accel", "tcg",
                             "-p", f"{free_port()}:8080", str(programs / "forking"), "--",
                             "8080", "loopback"], cwd=tmp_path, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = _read_until(proc, "loopback only")
        proc.send_signal(signal.SIGTERM)
        err += proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert "listens on port 8080 on loopback only" in err
    assert "listening on 8080" not in err  # never reachable, so never ready
    assert proc.returncode == 0


@pytest.mark.vm
def test_detached_run_of_a_program_that_ends_before_listening(programs: Path, tmp_path: Path):
    proc = engitor("run", "-d", "--accel", "tcg", "-p", f"{free_port()}:8080", "-n", "early",
                   str(programs / "exit3"), cwd=tmp_path)
    assert proc.returncode == 3
    assert "ended before it was ready (exit code 3); see 'engitor logs early" in proc.stderr
    name = proc.stderr.split("see 'engitor logs ")[1].split("'")[0]
    assert engitor("stop", name, check=True).stdout == f"{name}: had ended (exit code 3)\n"


@pytest.mark.vm
def test_stop_timeout_bounds_a_program_that_ignores_sigterm(programs: Path, tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "--accel", "tcg",
                             "--stop-timeout", "1", "-v", "tmpfs:/data", str(programs / "counter"),
                             "--", "/data", "stubborn"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _read_until(proc, "started in")
        assert proc.stdout is not None and proc.stdout.readline() == "count=1\n"
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert "program ignored SIGTERM for 1s; killed by SIGKILL" in err
    assert proc.returncode == 128 + signal.SIGKILL


@pytest.mark.vm
def test_always_restarts_a_killed_vm_and_stop_ends_it_for_good(programs: Path, tmp_path: Path,
                                                               fresh_home: Path):
    import json

    from support import wait_for

    proc = engitor("run", "-d", "-q", "--accel", "tcg", "--restart", "always", "-v",
                   "tmpfs:/data", str(programs / "counter"), "--", "/data", "hold", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.strip()
    record = fresh_home / "run" / name / "instance.json"
    first = json.loads(record.read_text())
    os.kill(first["pid"], signal.SIGKILL)  # the VM dies under it: a failure to restart from

    def restarted() -> bool:
        meta = json.loads(record.read_text())
        return meta["restarts"] == 1 and meta["pid"] != first["pid"]

    wait_for(restarted, timeout=120, what="a restart")
    supervisor = json.loads(record.read_text())["supervisor"]
    stopped = engitor("stop", name, timeout=120)
    assert stopped.returncode == 0 and stopped.stdout.startswith(f"{name}: stopped")
    wait_for(lambda: _gone(supervisor), timeout=30, what="the supervisor to end")
    assert not (fresh_home / "run" / name).exists()
