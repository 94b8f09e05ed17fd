"""Which initramfs file QEMU loads: the stored zstd one, or the same archive unpacked.

Under TCG the guest kernel's zstd decompressor runs emulated, at a few tens of MiB a second,
while the host unpacks the same stream at ~300 MiB/s. Measured (bench/bench_initrd.py,
BENCHMARKS.md): a Java image (76 MiB compressed, 231 unpacked) reached its program in 6.3 s
instead of 11.2 s on Debian's kernel and 4.9 s instead of 16.5 s on the minimal one (plus 0.8 s
of host unpacking, once per image); a static program on the minimal kernel 0.90 -> 0.80 s.
So a TCG boot gets the unpacked archive, made once beside the image in the store (shared by
every VM of it; removed with it) — when the guest has the memory (`unpacked_floor`). Under KVM
the guest decompresses at native speed and the smaller file wins, so it keeps the compressed
one. The copy is not signed itself: `engitor verify` (and `run --verify`) check it is the
signed initrd unpacked (engitor/catalog/sign.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from engitor import faults, home, store
from engitor.cpio import COMPRESSION, unpack_stream
from engitor.recipe.model import Accel, MiB
from engitor.vm import limits

UNPACKED_NAME = "initrd.cpio"


def for_boot(stored: store.StoredImage, memory: int, accel: Accel,
             log: Callable[[str], None]) -> Path:
    """The initramfs to hand QEMU for a boot with `memory` bytes (see the module docstring)."""
    info = stored.manifest.get("initrd", {})
    unpacked = int(info.get("uncompressed", 0))
    if accel is not Accel.TCG or info.get("compression") != COMPRESSION or not unpacked:
        return stored.initrd
    if memory < unpacked_floor(stored.kernel, unpacked):
        return stored.initrd  # the guest unpacks it, in less memory
    target = stored.path / UNPACKED_NAME
    if target.is_file() and target.stat().st_size == unpacked:
        return target
    try:
        _unpack(stored, target, unpacked)
    except OSError as err:  # a full or read-only home: the compressed file boots as well
        log(f"cannot unpack the initramfs in {stored.path} ({err.strerror or err}); "
            "the guest unpacks it instead")
        return stored.initrd
    return target


def unpacked_floor(kernel: Path, unpacked: int) -> int:
    """The least memory in which a guest unpacks an initramfs handed over unpacked: the kernel's
    footprint, the archive, and twice its files. The initramfs root is a tmpfs limited to half
    the memory the kernel counts, and the archive it unpacks from is not counted until freed.
    Measured on Debian's kernel with a PHP image (85.3 MiB unpacked): "Initramfs unpacking
    failed: write error" at 300 MiB, booted at 312; this rule asks for 328."""
    return limits.image_floor(kernel, unpacked, 2 * unpacked)


def _unpack(stored: store.StoredImage, target: Path, size: int) -> None:
    free = faults.free_bytes(stored.path)
    if free is not None and free < size + 64 * MiB:
        raise OSError(28, os.strerror(28))  # ENOSPC before writing, not halfway through it
    with home.locked(stored.path):  # VMs of one image started at once unpack it once
        if target.is_file() and target.stat().st_size == size:
            return
        home.sweep(stored.path)
        with home.atomic_file(target) as out, stored.initrd.open("rb") as src:
            unpack_stream(src, out)

