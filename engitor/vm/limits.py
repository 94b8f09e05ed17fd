"""What QEMU and the guest kernel will refuse, found before the build and before the boot.

QEMU rejects too many CPUs only once it starts, and a guest with too little memory fails
without a word (Debian's kernel dies in its decompressor), so these are checked up front:
CPUs against the machine type's maximum (asked of QEMU once per host boot), memory against
`memory_floor()`, host ports against what is free and what QEMU's user may bind.

The memory floor, measured with bench/memory_floor.py (BENCHMARKS.md): the bzImage decompresses
itself at its preferred load address and needs `init_size` bytes from there (both in its setup
header; 16 + 51.5 MiB for Debian's 6.1 cloud kernel; below that it dies in the decompressor
without a word), and the initramfs is held twice while the kernel unpacks it (compressed, and
unpacked into tmpfs pages, with the kernel's own ~50 MiB reserved). Least memory that reached
the program, bisected in 4 MiB steps (each failure checked twice): 76 MiB for a 1.1 MiB
initramfs (2.5 unpacked), 96 MiB for 7.0 (17.2), 112 MiB for 15.5 (46.1). The rule
footprint + compressed + unpacked + 4 MiB, rounded up to 4 MiB, gives exactly 76 and 96; for
the large one it says 136: an upper bound (past ~20 MiB unpacked the kernel needed less than
the rule says; why was not measured).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from engitor.errors import UserError
from engitor.proc import run
from engitor.recipe.model import Image, MiB, Port
from engitor.vm import confine, host
from engitor.vm.instance import check_ports_free

MACHINE = "microvm"
FLOOR_MARGIN = 4 * MiB  # the kernel's own data (page tables, slabs, the init) past unpacking
FLOOR_STEP = 4 * MiB
# Linux boot protocol (Documentation/arch/x86/boot.rst): setup header fields of a bzImage.
HDRS_OFFSET, PREF_ADDRESS_OFFSET, INIT_SIZE_OFFSET = 0x202, 0x258, 0x260
# When a kernel has no 2.10+ header: Debian's 6.1 cloud kernel's values.
DEFAULT_PREF_ADDRESS, DEFAULT_INIT_SIZE = 16 * MiB, 52 * MiB


def kernel_footprint(header: bytes) -> int:
    """Bytes of guest memory a bzImage needs to decompress itself: its preferred load address
    plus its init_size (boot protocol 2.10+), from the first bytes of the file."""
    if len(header) >= INIT_SIZE_OFFSET + 4 and header[HDRS_OFFSET:HDRS_OFFSET + 4] == b"HdrS":
        pref = struct.unpack_from("<Q", header, PREF_ADDRESS_OFFSET)[0]
        init = struct.unpack_from("<I", header, INIT_SIZE_OFFSET)[0]
        if pref and init:
            return int(pref + init)
    return DEFAULT_PREF_ADDRESS + DEFAULT_INIT_SIZE


def memory_floor(kernel_footprint: int, initrd_size: int = 0, initrd_unpacked: int = 0) -> int:
    """The least guest memory (bytes, a multiple of 4 MiB) in which an image reaches its init:
    the kernel's decompression footprint, the initramfs compressed and unpacked, a margin."""
    need = kernel_footprint + initrd_size + initrd_unpacked + FLOOR_MARGIN
    return -(-need // FLOOR_STEP) * FLOOR_STEP


def image_floor(kernel: Path, initrd_size: int = 0, initrd_unpacked: int = 0) -> int:
    with kernel.open("rb") as f:
        header = f.read(INIT_SIZE_OFFSET + 4)
    return memory_floor(kernel_footprint(header), initrd_size, initrd_unpacked)


def check_memory(memory: int, floor: int, what: str) -> None:
    if memory < floor:
        raise UserError(f"{memory // MiB} MiB of memory is too little for {what}: it needs at "
                        f"least {floor // MiB} MiB",
                        hint=f"give --memory {floor // MiB}M or more")


def max_cpus(qemu: str, machine: str = MACHINE) -> int | None:
    """The machine type's CPU limit as QEMU reports it (QMP query-machines), cached per boot."""
    key = f"max_cpus:{qemu}:{os.stat(qemu).st_mtime_ns}:{machine}"
    value = host.cached(key)
    if value is None:
        value = _query_max_cpus(qemu, machine) or 0
        host.remember(key, value)
    return value or None


def _query_max_cpus(qemu: str, machine: str) -> int | None:
    commands = "".join(json.dumps({"execute": c}) + "\n"
                       for c in ("qmp_capabilities", "query-machines", "quit"))
    try:
        proc = run([qemu, "-M", "none", "-nodefaults", "-display", "none", "-qmp", "stdio"],
                   input=commands, timeout=30)
    except (OSError, UserError):
        return None
    for line in proc.stdout.splitlines():
        try:
            reply = json.loads(line).get("return")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(reply, list):
            for m in reply:
                if m.get("name") == machine and isinstance(m.get("cpu-max"), int):
                    return int(m["cpu-max"])
    return None


def check_cpus(cpus: int, qemu: str) -> None:
    most = max_cpus(qemu)
    if most is not None and cpus > most:
        raise UserError(f"{cpus} CPUs is more than QEMU's {MACHINE} machine supports ({most})",
                        hint=f"give --smp {min(os.cpu_count() or 1, most)} or fewer than {most + 1}")


def unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def check_ports_bindable(ports: tuple[Port, ...], as_user: str | None) -> None:
    """QEMU binds forwarded ports itself; not being root, it cannot bind privileged ones."""
    lowest = unprivileged_port_start()
    for port in ports:
        if port.host < lowest:
            who = f"QEMU (running as {as_user})" if as_user else "QEMU"
            raise UserError(f"host port {port.host} is privileged: {who} cannot bind it",
                            hint=f"use a port from {lowest} up: -p {port.host + 8000}:{port.guest}")


def before_build(image: Image, qemu: str, kernel: Path | None) -> None:
    """Everything QEMU would refuse that is known from the declaration alone (`kernel`: its
    vmlinuz when already unpacked, for the memory the kernel alone needs)."""
    check_cpus(image.cpus, qemu)
    if kernel is not None:
        check_memory(image.memory, image_floor(kernel), f"kernel {kernel.name}")
    check_ports_free(image.ports)
    creds = confine.vm_credentials()
    check_ports_bindable(image.ports, creds.user if creds else None)


def before_boot(image: Image, kernel: Path, manifest: dict[str, Any], qemu: str) -> None:
    """What only the built image tells (the memory its kernel and initramfs need), and the
    rest again for the verbs that boot without `before_build` (the Lua vm API)."""
    check_cpus(image.cpus, qemu)
    creds = confine.vm_credentials()
    check_ports_bindable(image.ports, creds.user if creds else None)
    initrd = manifest.get("initrd", {})
    size, unpacked = int(initrd.get("size", 0)), int(initrd.get("uncompressed", 0))
    check_memory(image.memory, image_floor(kernel, size, unpacked),
                 f"image {image.name} (initramfs {size / MiB:.1f} MiB, "
                 f"{unpacked / MiB:.1f} MiB unpacked)")
