"""Volumes: named ext4 disks, image files and tmpfs, mounted by the guest init; their data
survives stops, rebuilds and a SIGKILL of QEMU; a second VM, a non-ext4 file and a relative
guest path are refused before anything is touched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import engitor, home_env, wait_for

from engitor.image.init import InitConfig
from engitor.recipe import volumes as declared
from engitor.recipe.model import MiB
from engitor.vm import qemu
from engitor.vm import volumes as disks

# ---- pure parts ---------------------------------------------------------------------------------


def test_flag_forms_and_their_kinds():
    assert declared.parse_flag("pgdata:/var/lib/postgresql/data") == \
        ("/var/lib/postgresql/data", "pgdata")
    assert declared.parse_flag("./disk.img:/data/") == ("/data", "./disk.img")
    assert declared.parse_flag("/abs/x:y.img:/data") == ("/data", "/abs/x:y.img")
    assert [declared.kind_of(s) for s in ("tmpfs", "pg", "./d.img", "/d.img", "~/d")] == \
        [declared.Kind.TMPFS, declared.Kind.NAMED, declared.Kind.FILE, declared.Kind.FILE,
         declared.Kind.FILE]
    for bad in ("data:relative/path", "data", ":/data", "data:/proc/x", "a b:/data", "x:/"):
        with pytest.raises(ValueError):
            declared.parse_flag(bad)


def test_mount_order_puts_parents_first_and_numbers_disks_only():
    mounts = declared.mounts({"/srv/data/cache": "tmpfs", "/srv/data": "one", "/a": "./a.img"})
    assert [(m.guest, m.serial) for m in mounts] == \
        [("/a", "engitor-vol0"), ("/srv/data", "engitor-vol1"), ("/srv/data/cache", "")]


def test_disks_and_report_channel_in_the_qemu_argv(tmp_path: Path):
    spec = qemu.VMSpec(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="", memory=256 * MiB,
                       console=tmp_path / "c", disks=((tmp_path / "a,b.img", "engitor-vol0"),),
                       channel=tmp_path / "report.log")
    argv = qemu.argv(spec)
    at = argv.index("-drive")
    assert argv[at:at + 4] == ["-drive", f"file={tmp_path}/a,,b.img,format=raw,if=none,id=disk0",
                               "-device", "virtio-blk-device,drive=disk0,serial=engitor-vol0"]
    assert f"virtserialport,chardev=report0,name={qemu.CHANNEL_NAME}" in argv


def test_init_config_lists_volumes_in_mount_order_with_their_owner():
    text = InitConfig(argv=("/p",), volumes=(("engitor-vol0", "/data"), ("", "/data/tmp")),
                      volume_owner=(101, 102)).render().decode()
    assert "volume engitor-vol0 /data\ntmpfs /data/tmp\nvolume_owner 101 102\n" in text


# ---- the CLI refuses bad input with one line and touches nothing ---------------------------------


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "hint:" in lines[0]
    return lines[0]


def test_a_relative_guest_path_is_refused(programs: Path, tmp_path: Path, fresh_home: Path):
    line = _one_line(engitor("run", str(programs / "counter"), "-v", "data:var/data",
                             cwd=tmp_path))
    assert "-v data:var/data: the guest path must be absolute" in line
    assert not (fresh_home / "volumes").exists() or not list((fresh_home / "volumes").iterdir())


def test_a_file_that_is_not_ext4_is_refused_untouched(programs: Path, tmp_path: Path,
                                                      fresh_home: Path):
    junk = tmp_path / "notes.img"
    junk.write_bytes(os.urandom(64 * 1024))
    before = hashlib.sha256(junk.read_bytes()).hexdigest()
    line = _one_line(engitor("run", str(programs / "counter"), "-v", "./notes.img:/data",
                             cwd=tmp_path))
    assert "is not an ext4 file system" in line
    assert hashlib.sha256(junk.read_bytes()).hexdigest() == before


def test_volume_verbs(fresh_home: Path):
    assert engitor("volume", "create", "v1", "--size", "64M", check=True).returncode == 0
    assert "v1" in engitor("volume", "ls", check=True).stdout
    info = engitor("volume", "inspect", "v1", check=True).stdout
    assert '"state": "clean"' in info and f'"size": {64 * MiB}' in info
    assert "already exists" in _one_line(engitor("volume", "create", "v1"))
    assert "no volume named 'nope'" in _one_line(engitor("volume", "rm", "v1", "nope"))
    assert (fresh_home / "volumes/v1.img").exists()  # one bad name removes nothing
    engitor("volume", "rm", "v1", check=True)
    assert engitor("volume", "ls", "-q", check=True).stdout.strip() == ""


def test_a_new_volume_is_sparse_and_seeded(tmp_path: Path):
    seed = tmp_path / "seed"
    (seed / "sub").mkdir(parents=True)
    (seed / "sub/x").write_text("hello\n")
    target = tmp_path / "v.img"
    disks.make_ext4(target, 1024 * MiB, label="v", seed=seed)
    assert target.stat().st_size == 1024 * MiB
    assert target.stat().st_blocks * 512 < 8 * MiB  # sparse: what mkfs wrote, not the size
    assert disks.is_ext(target)
    listing = subprocess.run(["debugfs", "-R", "cat /sub/x", str(target)], capture_output=True,
                             text=True, check=True).stdout
    assert listing == "hello\n"


# ---- booted: persistence, locking, SIGKILL, tmpfs -------------------------------------------------


@pytest.fixture(scope="module")
def vol_home(tmp_path_factory: pytest.TempPathFactory, kernel_pkg) -> Iterator[Path]:
    from engitor import home

    h = tmp_path_factory.mktemp("volhome")
    (h / "kernels").symlink_to(home.home() / "kernels")
    (h / "cache").symlink_to(home.home() / "cache")
    with home_env(h):
        yield h


@pytest.fixture(scope="module")
def app(programs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The counter with a seed file at the mount point: a new volume starts from 41."""
    d = tmp_path_factory.mktemp("app")
    shutil.copy2(programs / "counter", d / "counter")
    (d / "seed").mkdir()
    (d / "seed/count").write_text("41\n")
    return d


def _count(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.vm
def test_data_survives_stop_rebuild_and_sigkill_and_a_second_vm_is_refused(
        vol_home: Path, app: Path):
    recipe = app / "counter.lua"
    recipe.write_text('image "counter" { program = "./counter", args = {"/data"},\n'
                      '  map = {["seed/*"] = "/data"}, volumes = {["/data"] = "counts"} }\n')
    assert _count(engitor("run", "-q", "counter.lua", cwd=app)) == "count=42"  # seeded: 41 + 1
    # A rebuilt image (other environment) mounts the same volume.
    assert _count(engitor("run", "-q", "-e", "REBUILT=1", "counter.lua", cwd=app)) == "count=43"

    held = subprocess.Popen([*_cli(), "run", "-q", "counter.lua", "--", "/data", "hold"],
                            cwd=app, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert held.stdout is not None
        assert held.stdout.readline().strip() == "count=44"
        line = _one_line(engitor("run", "-q", "counter.lua", cwd=app))
        assert "volume counts is in use by VM counter" in line
        # SIGKILL of QEMU itself: what the program fsynced is on the disk; the journal replays.
        qemu_pid = int(wait_for(  # type: ignore[call-overload]
            lambda: json.loads((vol_home / "run/counter/instance.json").read_text())["pid"],
            what="the VM's instance.json"))
        os.kill(qemu_pid, signal.SIGKILL)
        held.wait(60)
    finally:
        held.kill()
        held.wait()
    assert _count(engitor("run", "-q", "counter.lua", cwd=app)) == "count=45"


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "engitor"]


@pytest.mark.vm
def test_tmpfs_and_image_file_volumes(vol_home: Path, app: Path):
    assert _count(engitor("run", "-q", "-v", "tmpfs:/data", "./counter", cwd=app)) == "count=1"
    assert _count(engitor("run", "-q", "-v", "./disk.img:/data", "./counter", cwd=app)) \
        == "count=1"
    assert disks.is_ext(app / "disk.img")
    assert _count(engitor("run", "-q", "-v", "./disk.img:/data", "./counter", cwd=app)) \
        == "count=2"
