"""Snapshot starts (engitor/vm/snapshot.py, engitor/guest/hold.c): the first run of an image
with `--start snapshot` boots and saves the VM where the init is about to start the program;
later runs restore that save instead of booting, each with the host's clock, its own
entropy and its volumes as they are. Real QEMU on both kernels; the argv and the save's key are pure functions."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest
from support import engitor, free_port, http_get, spawn, wait_for

from engitor import store
from engitor.recipe.model import Accel, MiB
from engitor.recipe.settings import parse_ports
from engitor.vm import qemu, snapshot

SAVED = "saved the VM at the program's start"
RESTORED = "restored the VM saved at the program's start"


def _spec(tmp_path: Path, **changes: object) -> qemu.VMSpec:
    for name in ("vmlinux", "initrd.cpio"):
        if not (tmp_path / name).exists():
            (tmp_path / name).write_bytes(b"x")
    spec = qemu.VMSpec(kernel=tmp_path / "vmlinux", initrd=tmp_path / "initrd.cpio",
                       cmdline="quiet", console=tmp_path / "a" / "console.log", memory=32 * MiB,
                       accel=Accel.TCG, channel=tmp_path / "a" / "report.log",
                       qmp=tmp_path / "a" / "qmp.sock", name="web",
                       ports=tuple(parse_ports("8080")))
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def test_the_hold_port_and_the_incoming_save_in_the_qemu_argv(tmp_path: Path):
    argv = qemu.argv(snapshot.with_hold(_spec(tmp_path, hold_fd=7, incoming_fd=9)))
    assert argv[argv.index("-append") + 1].endswith(" engitor.hold")
    assert "socket,id=hold0,fd=7,server=off" in argv
    assert f"virtserialport,chardev=hold0,name={qemu.HOLD_NAME}" in argv
    assert "virtio-serial-device,max_ports=3" in argv  # one bus: the report channel and it
    assert argv[argv.index("-incoming") + 1] == "fd:9"
    assert "-incoming" not in qemu.argv(_spec(tmp_path))


def test_a_save_fits_what_the_guest_sees_not_the_host_side(tmp_path: Path):
    binary = qemu.find_qemu()
    one = snapshot.key(_spec(tmp_path), binary)
    other_run = _spec(tmp_path, console=tmp_path / "b" / "console.log", name="web-2",
                      channel=tmp_path / "b" / "report.log", qmp=None,
                      ports=tuple(parse_ports("9090:8080")), hold_fd=3, incoming_fd=4)
    assert snapshot.key(other_run, binary) == one
    assert snapshot.key(_spec(tmp_path, memory=64 * MiB), binary) != one
    assert snapshot.key(_spec(tmp_path, cpus=2), binary) != one
    assert snapshot.key(_spec(tmp_path, cmdline="quiet engitor.hold"), binary) != one
    (tmp_path / "vmlinux").write_bytes(b"another kernel")
    assert snapshot.key(_spec(tmp_path), binary) != one


def _run(kernel_name: str, program: Path, cwd: Path, *flags: str):
    began = time.time()
    proc = engitor("run", "--kernel", kernel_name, "--start", "snapshot", *flags, str(program),
                   cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    fields = dict(re.findall(r"(\w+)=(\S+)", proc.stdout))
    return proc, began, float(fields["realtime"]), fields["random"], time.time()


@pytest.mark.vm
@pytest.mark.timeout(1800)
def test_later_runs_restore_the_save_with_the_hosts_clock_and_their_own_entropy(
        kernel_name: str, programs: Path, tmp_path: Path):
    runs = [_run(kernel_name, programs / "fresh", tmp_path) for _ in range(3)]
    assert SAVED in runs[0][0].stderr
    assert all(RESTORED in r[0].stderr for r in runs[1:])
    for _, began, realtime, _, ended in runs:  # not the save's clock: the host's at the go
        assert began - 1 <= realtime <= ended + 1
    assert len({r[3] for r in runs}) == 3, "restored VMs drew the same random bytes"
    image_id = re.search(r"image fresh ([0-9a-f]{12})", runs[0][0].stderr)
    assert image_id, runs[0][0].stderr
    saves = list(store.resolve(image_id.group(1)).snapshots.glob("*.vmstate"))
    assert len(saves) == 1
    # Other settings, another save: more memory boots and saves again.
    proc = _run(kernel_name, programs / "fresh", tmp_path, "-m", "320M")[0]
    assert SAVED in proc.stderr


@pytest.mark.vm
@pytest.mark.timeout(1800)
def test_exit_codes_and_a_server_through_a_restored_vm(minimal_kernel, programs: Path,
                                                      tmp_path: Path):
    flags = ("--kernel", "minimal", "--start", "snapshot", "-n", "snap", "-e", "GREETING=hi")
    for expect in (SAVED, RESTORED):
        proc = engitor("run", *flags, str(programs / "exit3"), "--", "one", cwd=tmp_path)
        assert proc.returncode == 3 and expect in proc.stderr, proc.stderr
        assert proc.stdout.splitlines() == ["argc=2 host=snap greeting=hi cwd=/", "arg[1]=one"]
    port = free_port()
    for expect in (SAVED, RESTORED):
        proc = spawn("run", *flags, str(programs / "server"), "-p", f"{port}:8080", "--",
                     "-port", "8080", "-name", "s", cwd=tmp_path)
        try:
            wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz"), what="the server")
            # Ctrl-C: the ACPI power button, the init's SIGTERM, the server's clean exit
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert expect in err and "s: serving" in out


@pytest.mark.vm
@pytest.mark.timeout(1800)
def test_a_save_that_does_not_restore_is_replaced(minimal_kernel, programs: Path,
                                                  tmp_path: Path):
    flags = ("-n", "cut")  # an image of its own: no other test's saves beside its one
    first = _run("minimal", programs / "fresh", tmp_path, *flags)[0]
    image_id = re.search(r"image cut ([0-9a-f]{12})", first.stderr)
    assert image_id and SAVED in first.stderr, first.stderr
    saves = list(store.resolve(image_id.group(1)).snapshots.glob("*.vmstate"))
    assert len(saves) == 1
    with saves[0].open("r+b") as f:  # cut short, as a full disk would leave it
        f.truncate(saves[0].stat().st_size // 2)
    proc = _run("minimal", programs / "fresh", tmp_path, *flags)[0]
    assert "the saved VM did not resume" in proc.stderr and SAVED in proc.stderr
    assert RESTORED in _run("minimal", programs / "fresh", tmp_path, *flags)[0].stderr


@pytest.mark.vm
@pytest.mark.timeout(1800)
def test_volumes_hold_what_runs_from_one_save_wrote(kernel_name: str, programs: Path,
                                                    tmp_path: Path):
    """The save is made before the volumes are mounted, but after the guest kernel probed the
    disk: each restore must see the disk as it is now (the count goes on), and another volume
    of the same size uses the same save with its own data."""
    tag = uuid.uuid4().hex[:6]
    first, second, small = f"snapa-{tag}", f"snapb-{tag}", f"snapc-{tag}"

    def count(volume: str) -> tuple[str, str]:
        proc = engitor("run", "--kernel", kernel_name, "--start", "snapshot", "-n", f"snapv-{tag}",
                       "-v", f"{volume}:/data", str(programs / "counter"), "--", "/data",
                       cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1], proc.stderr

    try:
        out, err = count(first)
        assert out == "count=1" and SAVED in err and RESTORED in err
        for expected in ("count=2", "count=3"):
            out, err = count(first)
            assert out == expected and RESTORED in err and SAVED not in err
        out, err = count(second)
        assert out == "count=1" and RESTORED in err and SAVED not in err
        assert count(first)[0] == "count=4"
        # A disk of another size: another save.
        engitor("volume", "create", small, "--size", "64M", check=True)
        out, err = count(small)
        assert out == "count=1" and SAVED in err
    finally:
        for volume in (first, second, small):
            engitor("volume", "rm", volume)


def test_prune_removes_saves_no_run_restored_lately(fresh_home: Path, programs: Path,
                                                     tmp_path: Path):
    out = engitor("build", str(programs / "exit3"), cwd=tmp_path, check=True).stdout
    image = store.resolve(out.split()[0])
    assert image is not None
    old, recent = image.snapshots / "a.vmstate", image.snapshots / "b.vmstate"
    image.snapshots.mkdir()
    for save in (old, recent):
        save.write_bytes(b"QEVM")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    out = engitor("prune", check=True).stdout
    assert f"removed snapshot {old}" in out and str(recent) not in out
    assert recent.exists() and not old.exists() and store.get(image.id) is not None
