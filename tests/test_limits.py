"""What QEMU or the guest kernel would refuse is refused first, in one line (engitor/vm/limits.py):
too many CPUs and too little memory before the build, an initramfs too large for the memory
before the boot, privileged host ports that QEMU, not being root, cannot bind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import engitor

from engitor.image import kernel
from engitor.recipe.model import MiB
from engitor.vm import limits

# Measured with bench/memory_floor.py (BENCHMARKS.md): initramfs compressed and unpacked bytes,
# and the least memory (MiB, 4 MiB steps) in which the guest reached the program.
MEASURED = [(1136854, 2666888, 76), (7342050, 18063332, 96), (16229990, 48289400, 112)]


def one_line_refusal(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_kernel_footprint_from_the_setup_header(kernel_pkg):
    header = kernel_pkg.vmlinuz.read_bytes()[:0x300]
    init_size = int.from_bytes(header[0x260:0x264], "little")
    assert limits.kernel_footprint(header) == 16 * MiB + init_size
    assert limits.kernel_footprint(b"not a kernel") == \
        limits.DEFAULT_PREF_ADDRESS + limits.DEFAULT_INIT_SIZE


def test_the_floor_rule_is_never_below_a_measured_floor(kernel_pkg):
    for size, unpacked, least in MEASURED:
        floor = limits.image_floor(kernel_pkg.vmlinuz, size, unpacked)
        assert floor % (4 * MiB) == 0
        assert floor >= least * MiB
    assert [limits.image_floor(kernel_pkg.vmlinuz, s, u) // MiB for s, u, _ in MEASURED[:2]] \
        == [76, 96]


def test_too_little_memory_is_refused_before_the_build(fresh_home: Path, programs: Path):
    floor = limits.image_floor(kernel.pinned(kernel.DEFAULT_KERNEL).vmlinuz)  # type: ignore[union-attr]
    proc = engitor("run", "--memory", "48M", str(programs / "exit3"), timeout=120)
    one_line_refusal(proc, "48 MiB of memory is too little", f"at least {floor // MiB} MiB")
    assert not (fresh_home / "images").exists() or not os.listdir(fresh_home / "images")


def test_too_many_cpus_are_refused_before_the_build(fresh_home: Path, programs: Path):
    proc = engitor("run", "-d", "--smp", "1000", str(programs / "exit3"), timeout=120)
    one_line_refusal(proc, "1000 CPUs", "(288)")
    assert not (fresh_home / "images").exists() or not os.listdir(fresh_home / "images")


def test_an_initramfs_too_large_for_its_memory_is_refused_before_the_boot(
        fresh_home: Path, programs: Path, tmp_path: Path):
    (tmp_path / "blob").write_bytes(os.urandom(40 * MiB))  # incompressible: 40 MiB twice
    proc = engitor("run", "-q", "--memory", "128M", "--file", str(tmp_path / "blob"),
                   str(programs / "exit3"), cwd=tmp_path, timeout=300)
    one_line_refusal(proc, "128 MiB of memory is too little for image", "initramfs 41.", "at least 156 MiB")
    assert not list((fresh_home / "run").glob("*/console.log"))  # never booted


def test_a_privileged_port_is_refused_when_qemu_drops_root(fresh_home: Path, programs: Path):
    if os.geteuid() != 0:
        pytest.skip("engitor drops QEMU's privileges only when it runs as root")
    proc = engitor("run", "-p", "80:8080", str(programs / "exit3"), timeout=120)
    one_line_refusal(proc, "host port 80 is privileged", "engitor-vm")


def test_max_cpus_comes_from_qemu():
    from engitor.vm import qemu

    assert limits.max_cpus(qemu.find_qemu()) == 288  # QEMU 7.2's microvm
