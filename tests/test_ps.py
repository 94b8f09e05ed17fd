"""Detached instances and their CLI (engitor ps, logs, stop; engitor/vm/instance.py reap):
instance records of real processes first, then (marked vm) real VMs under TCG: a detached VM's
whole life, and VMs whose engitor process died."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support import free_port

from engitor import home
from engitor.vm.instance import Instance, Meta, pid_is_qemu, process_start, reap, run_dir

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

CONSOLE = ("@@engitor:start uptime=1.25\n"
           "hello from the program\n"
           "second line\n"
           "\n"
           "@@engitor:exit code=3\n"
           "reboot: Power down\n")


def engitor(*args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engitor", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def record(name: str, *, owner: int | None, owner_start: int | None = None,
           console: str = CONSOLE) -> Path:
    """An instance directory as `instance.start` writes it, for a QEMU that has ended."""
    directory = run_dir() / name
    directory.mkdir(parents=True)
    meta = Meta(name=name, image="f" * 64, image_name="web", pid=dead_pid(), owner=owner,
                started=time.time() - 90, accel="tcg", ports=["18080:8080"], argv=["/server"],
                owner_start=owner_start)
    home.atomic_write(directory / "instance.json", json.dumps(dataclasses.asdict(meta)))
    (directory / "console.log").write_text(console)
    return directory


@pytest.fixture
def engitor_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_reap_removes_only_instances_whose_owner_died(engitor_home):
    me, my_start = os.getpid(), process_start(os.getpid())
    orphan = record("orphan", owner=dead_pid())
    mine = record("mine", owner=me, owner_start=my_start)
    reused = record("reused", owner=me, owner_start=(my_start or 0) + 1)  # pid of another
    detached = record("detached", owner=None)
    assert sorted(reap()) == ["orphan", "reused"]
    assert not orphan.exists() and not reused.exists()
    assert mine.exists() and detached.exists()  # the living owner reads its VM's end itself


def test_reap_removes_launches_killed_before_they_wrote_their_record(engitor_home):
    old, fresh = run_dir() / "killed-early", run_dir() / "starting-now"
    for d in (old, fresh):
        d.mkdir()
        (d / "qemu.log").write_text("")
    past = time.time() - 120
    os.utime(old, (past, past))
    assert reap() == ["killed-early"]
    assert not old.exists() and fresh.exists()


def test_state_and_exit_code_of_an_ended_instance(engitor_home):
    record("done", owner=None)
    inst = Instance.load("done")
    assert inst.state() == "exited"
    assert inst.exit_code() == 3
    assert inst.vm_status() is None


def test_ps_lists_running_vms_and_with_all_the_ended_ones(engitor_home):
    env = {"ENGITOR_HOME": str(engitor_home)}
    record("ended", owner=None)
    record("gone-owner", owner=dead_pid())
    plain = engitor("ps", env=env)
    assert plain.returncode == 0
    assert plain.stdout.splitlines() == ["NAME  IMAGE  STATE  PORTS  ACCEL  UP  OWNER"]
    listed = engitor("ps", "-a", env=env)
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "STATE", "PORTS", "ACCEL", "UP", "OWNER"]
    fields = lines[1].split()  # UP is 90 s before the record was made: a loaded host adds some
    assert fields[:6] + fields[7:] == ["ended", "web", "exited", "(3)", "18080:8080", "tcg",
                                       "detached"]
    assert fields[6] in ("1m30s", "1m31s", "1m32s", "1m33s"), fields
    assert len(lines) == 2  # the one whose owner died was cleaned up, not listed
    rows = json.loads(engitor("ps", "-a", "--json", env=env).stdout)
    assert [(r["name"], r["state"], r["code"], r["owner"]) for r in rows] == \
        [("ended", "exited", 3, None)]
    assert engitor("ps", "-aq", env=env).stdout == "ended\n"


def test_logs_shows_what_the_program_printed(engitor_home):
    env = {"ENGITOR_HOME": str(engitor_home)}
    record("talker", owner=None)
    logs = engitor("logs", "talker", env=env)
    assert (logs.returncode, logs.stdout) == (0, "hello from the program\nsecond line\n")
    assert engitor("logs", "talker", "--raw", env=env).stdout == CONSOLE
    assert engitor("logs", "-f", "talker", env=env).stdout == \
        "hello from the program\nsecond line\n"  # it has ended: nothing to follow
    missing = engitor("logs", "nope", env=env)
    assert (missing.returncode, missing.stderr) == \
        (2, "engitor: no VM named 'nope' (hint: see 'engitor ps')\n")


def test_stop_removes_an_ended_instance_and_refuses_unknown_names(engitor_home):
    env = {"ENGITOR_HOME": str(engitor_home)}
    kept = record("kept", owner=None)
    done = record("done", owner=None)
    refused = engitor("stop", "done", "nope", env=env)
    assert refused.returncode == 2 and done.exists()  # all names known, or nothing happens
    stopped = engitor("stop", "done", env=env)
    assert (stopped.returncode, stopped.stdout) == (0, "done: had ended (exit code 3)\n")
    assert not done.exists() and kept.exists()


# ---------------------------------------------------------------------------------------------
# Real VMs (TCG). They use the default engitor home, where the kernel is cached; names are
# unique to each run because other runs may share that home.


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ps_row(name: str, *flags: str) -> list[str] | None:
    out = engitor("ps", *flags).stdout
    return next((line.split() for line in out.splitlines() if line.split()[:1] == [name]), None)


@pytest.mark.vm
def test_a_detached_vm_from_run_to_stop(recipes):
    port = free_port()
    started = engitor("run", "-d", "-q", "--accel", "tcg", "-p", f"{port}:8080",
                      str(recipes / "web.lua"), timeout=300)
    assert started.returncode == 0, started.stderr
    inst_name = started.stdout.strip()  # the image's name, made unique among instances
    assert inst_name.startswith("web")
    try:
        row = ps_row(inst_name)
        # run -d returned once the guest said the server listens on its forwarded port
        assert row is not None and row[1] == "web" and row[2] == "ready"
        assert row[3] == f"{port}:8080" and row[-1] == "detached"
        follow = subprocess.Popen([sys.executable, "-m", "engitor", "logs", "-f", inst_name],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The shell attaches to it, waits for the port and makes the program exit with 7.
        attached = engitor("shell", "-e", f'vm = engitor.attach("{inst_name}") '
                           'port = vm:wait_port(8080, 180) '
                           'print(vm.detached, sh.curl("-s", "http://127.0.0.1:" .. port .. '
                           '"/exit?code=7")) print(vm:wait())', timeout=300)
        assert attached.returncode == 0, attached.stderr
        assert attached.stdout == "true\tbye 7\n7\n"
        out, _ = follow.communicate(timeout=60)
        assert follow.returncode == 0
        assert out == "web: serving /www on port 8080\nweb: exiting with status 7\n"
        assert ps_row(inst_name) is None
        assert ps_row(inst_name, "-a")[2:4] == ["exited", "(7)"]
        assert engitor("logs", inst_name).stdout == out
        stopped = engitor("stop", inst_name)
        assert stopped.stdout == f"{inst_name}: had ended (exit code 7)\n"
        assert ps_row(inst_name, "-a") is None
    finally:
        if (run_dir() / inst_name).exists():
            engitor("stop", "--kill", inst_name)


@pytest.mark.vm
def test_stop_ends_a_running_detached_vm(recipes):
    started = engitor("run", "-d", "-q", "--accel", "tcg", "-p", f"{free_port()}:8080",
                      str(recipes / "web.lua"), timeout=300)
    assert started.returncode == 0, started.stderr
    inst_name = started.stdout.strip()
    pid = Instance.load(inst_name).meta.pid
    assert (ps_row(inst_name) or [""] * 3)[2] == "ready"
    stopped = engitor("stop", inst_name, timeout=120)
    assert stopped.stdout == f"{inst_name}: stopped (exit code 0)\n"  # SIGTERM: a clean exit
    assert not pid_is_qemu(pid) and not (run_dir() / inst_name).exists()


@pytest.mark.vm
def test_a_vm_whose_shell_was_killed_goes_with_it(recipes):
    name = f"orphan-{uuid.uuid4().hex[:6]}"
    shell = subprocess.Popen(
        [sys.executable, "-m", "engitor", "shell", "-e",
         f'vm = engitor.run("{recipes}/web.lua", {{name = "{name}", accel = "tcg", ports = {{}}}}) '
         'print(vm.name, vm.pid) sh.sleep(600)'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = shell.stdout.readline()
        assert line, shell.stderr.read()
        inst_name, pid = line.split()
        assert pid_is_qemu(int(pid))
        assert ps_row(inst_name)[-2:] == ["pid", str(shell.pid)]
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its sleep; QEMU has its own session
        shell.wait()
    # QEMU's parent-death signal ends it; ps then cleans its directory up.
    wait_until(lambda: not pid_is_qemu(int(pid)), 30, "QEMU to end with its shell")
    assert (run_dir() / inst_name).exists()
    assert ps_row(inst_name, "-a") is None
    assert not (run_dir() / inst_name).exists()


@pytest.mark.vm
def test_reap_kills_a_vm_that_outlived_its_owner(recipes):
    from engitor.image import hosttools, pipeline
    from engitor.recipe.lua_front import load_recipe
    from engitor.recipe.model import Accel
    from engitor.vm import runner

    (web,) = load_recipe(recipes / "web.lua").images
    image = web.with_settings(ports=(), accel=Accel.TCG)
    owner = subprocess.Popen(["sleep", "1"])
    inst = runner.launch(pipeline.build(image), image, tools=hosttools, name=f"outlived-{uuid.uuid4().hex[:6]}",
                         owner=owner.pid)
    try:
        assert inst.meta.owner == owner.pid and inst.meta.owner_start == process_start(owner.pid)
        assert inst.name not in reap() and inst.alive()
        owner.wait()
        assert inst.name in reap()
        assert inst.wait_exit(10) and not inst.dir.exists()
    finally:
        inst.kill()
        inst.remove()
