"""No way in through a VM's host side: the home and sockets are private whatever the umask,
QEMU runs under its seccomp sandbox and not as root, its sockets live in a short run directory
(any home length works), and `run -d` returns only once the program started."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port, http_get, wait_for

from engitor import home
from engitor.errors import UserError
from engitor.recipe.model import Accel
from engitor.vm import confine, qemu, runner, sockets
from engitor.vm.instance import Instance, Meta, pid_is_qemu, qmp_socket, start

HOME_LENGTH = 200  # characters; unix socket paths hold at most 107 bytes


def engitor_umask0(*args: str, env: dict[str, str], timeout: float = 300
                   ) -> subprocess.CompletedProcess[str]:
    """The CLI run by a careless user: umask 000."""
    return subprocess.run([sys.executable, "-m", "engitor", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env},
                          preexec_fn=lambda: os.umask(0))


def long_home(base: Path) -> Path:
    path = base / "h"
    path = path.with_name("h" * (HOME_LENGTH - len(str(path)) + 1))
    assert len(str(path)) == HOME_LENGTH
    return path


def status_fields(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


class Detached:
    def __init__(self, name: str, env: dict[str, str], port: int):
        self.name, self.env, self.port = name, env, port

    @property
    def inst(self) -> Instance:
        os.environ["ENGITOR_HOME"] = self.env["ENGITOR_HOME"]
        return Instance.load(self.name)


@pytest.fixture(scope="module")
def detached(recipes: Path, tmp_path_factory: pytest.TempPathFactory, kernel_pkg
             ) -> Iterator[Detached]:
    """The web recipe started with `run -d` under umask 000, from a 200-character home."""
    path = long_home(tmp_path_factory.mktemp("home"))
    path.mkdir()
    (path / "kernels").symlink_to(home.home() / "kernels")
    (path / "cache").symlink_to(home.home() / "cache")
    os.chmod(path, 0o777)  # as a careless user's umask left it
    env = {"ENGITOR_HOME": str(path)}
    port = free_port()
    saved = os.environ.get("ENGITOR_HOME")
    started = engitor_umask0("run", "-d", "-q", "--accel", "tcg", "-p", f"{port}:8080",
                             str(recipes / "web.lua"), env=env)
    assert started.returncode == 0, started.stderr
    vm = Detached(started.stdout.strip(), env, port)
    try:
        yield vm
    finally:
        engitor_umask0("stop", "--kill", vm.name, env=env)
        if saved is None:
            os.environ.pop("ENGITOR_HOME", None)
        else:
            os.environ["ENGITOR_HOME"] = saved


@pytest.mark.vm
def test_run_d_returns_once_the_program_started(detached: Detached):
    # No waiting here: the start line is on the console when `run -d` returns.
    assert "@@engitor:start" in (detached.inst.dir / "console.log").read_text()
    # The program then binds its port (forwarded by a QEMU that is not root).
    wait_for(lambda: http_get(f"http://127.0.0.1:{detached.port}/"), 120, "the web server")


@pytest.mark.vm
def test_home_and_sockets_are_private_under_umask_000(detached: Detached):
    inst = detached.inst
    assert stat.S_IMODE(Path(detached.env["ENGITOR_HOME"]).stat().st_mode) == 0o700
    qmp = inst.qmp_path
    assert len(str(qmp)) < 108 and not str(qmp).startswith(detached.env["ENGITOR_HOME"])
    st = qmp.lstat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    for folder in (qmp.parent, qmp.parent.parent):
        fst = folder.lstat()
        assert stat.S_IMODE(fst.st_mode) == 0o700 and fst.st_uid == os.geteuid()
    assert stat.S_IMODE((inst.dir / "console.log").stat().st_mode) == 0o600
    assert inst.vm_status() == "running"  # engitor itself still talks to it


@pytest.mark.vm
def test_qemu_runs_sandboxed_and_not_as_root(detached: Detached):
    pid = detached.inst.meta.pid
    fields = status_fields(pid)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert fields["Seccomp"] == "2"  # filter mode
    assert argv[argv.index(b"-sandbox") + 1] == qemu.SANDBOX.encode()
    if os.geteuid() == 0:
        user = pwd.getpwnam(confine.DEFAULT_USER)
        assert fields["Uid"].split() == [str(user.pw_uid)] * 4
        assert fields["Gid"].split() == [str(user.pw_gid)] * 4
        kvm = [str(g.gr_gid) for g in grp.getgrall() if g.gr_name == "kvm"]
        assert fields["Groups"].split() == kvm  # /dev/kvm's group, nothing else
    # Nothing in the home is opened by path: it is 0700 and QEMU is not its owner.
    assert not any(detached.env["ENGITOR_HOME"].encode() in a for a in argv)


@pytest.mark.vm
def test_a_sandboxed_vm_still_stops_gracefully(detached: Detached):
    pid = detached.inst.meta.pid
    stopped = engitor_umask0("stop", detached.name, env=detached.env, timeout=120)
    assert stopped.stdout == f"{detached.name}: stopped (exit code 0)\n", stopped.stderr
    assert not pid_is_qemu(pid)
    directory = Path(detached.env["ENGITOR_HOME"]) / "run" / detached.name
    assert not directory.exists() and not sockets.vm_dir(directory).exists()


@pytest.mark.vm
def test_qmp_migrate_exec_runs_no_command(fresh_home: Path, recipes: Path, tmp_path: Path):
    from support import booted

    from engitor.recipe.lua_front import load_recipe

    (web,) = load_recipe(recipes / "web.lua").images
    marker = tmp_path / "ran"
    with booted(web) as (inst, _):
        wait_for(lambda: inst.poll_console() is not None and inst.status.started, 180,
                 "the program")
        with pytest.raises(Exception):  # noqa: B017 - QEMU dies of SIGSYS mid-command
            inst.qmp("migrate", uri=f"exec:touch {marker}")
        assert inst.wait_exit(10)
        assert inst.proc is not None and inst.proc.returncode == -31  # SIGSYS: seccomp
    time.sleep(0.5)
    assert not marker.exists()


@pytest.mark.vm
def test_run_d_fails_with_qemus_own_words(fresh_home: Path, programs: Path, tmp_path: Path,
                                          kernel_pkg):
    """A VM QEMU refuses is reported with QEMU's message (the CLI refuses --smp 1000 before the
    build; here QEMU is given it directly)."""
    from engitor.image import pipeline
    from engitor.recipe.settings import make_image

    image = make_image("toomany", {"program": str(programs / "exit3"), "accel": "tcg"})
    stored = pipeline.build(image)
    directory = runner.run_dir() / "toomany"
    directory.mkdir(parents=True)
    spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                       console=directory / "console.log", cpus=1000, accel=Accel.TCG,
                       qmp=qmp_socket(directory), name="toomany")
    meta = Meta(name="toomany", image=stored.id, image_name=image.name, pid=0, owner=None,
                started=time.time(), accel="tcg", ports=[], argv=[])
    inst = start(spec, meta, directory, detached=True)
    with pytest.raises(UserError) as err:
        runner.wait_started(inst)
    assert "Invalid SMP CPUs 1000" in str(err.value) and "288" in str(err.value)
    assert not directory.exists()


def test_a_home_owned_by_another_user_is_refused(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("making a folder of another user's needs root")
    other = tmp_path / "theirs"
    other.mkdir()
    os.chown(other, 65534, 65534)
    done = engitor_umask0("images", env={"ENGITOR_HOME": str(other)}, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"engitor home {other} belongs to nobody" in done.stderr
    assert os.listdir(other) == []


def test_a_run_directory_made_by_another_user_is_refused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    runtime = tmp_path / "xdg"
    (runtime / "engitor").mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    if os.geteuid() == 0:
        os.chown(runtime / "engitor", 65534, 65534)
        with pytest.raises(UserError, match="belongs to nobody"):
            sockets.run_root()
    os.chown(runtime / "engitor", os.geteuid(), os.getegid())
    os.chmod(runtime / "engitor", 0o777)
    assert sockets.run_root() == runtime / "engitor"
    assert stat.S_IMODE((runtime / "engitor").stat().st_mode) == 0o700


def test_a_fresh_home_is_made_0700_under_umask_000(tmp_path: Path):
    path = tmp_path / "new" / "home"
    done = engitor_umask0("images", env={"ENGITOR_HOME": str(path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
