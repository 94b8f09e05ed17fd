"""How much guest memory an exported image needs, so a too-small VM is caught at export.

Measured here (QEMU 7.2, TCG): OVMF with a 16 MiB UKI boots at 160 MiB and fails at 128 MiB;
the same image boots directly (microvm, SeaBIOS) at 80 MiB. UEFI's share is the firmware's own
memory plus the UKI it loads and the kernel and initrd the stub copies out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engitor.errors import UserError

MiB = 1024 * 1024
UEFI_FIRMWARE = 96 * MiB  # OVMF's own reservations, page tables and boot services data
KERNEL_RUNNING = 48 * MiB  # the kernel's own allocations and the program's first pages
UEFI_ADVICE = 256 * MiB  # what to give a UEFI VM (128 MiB fails under OVMF)


@dataclass(frozen=True)
class Need:
    uefi: int  # bytes of guest memory for a UEFI boot
    advice: int  # what to give: a round size at least `uefi`


def need(*, kernel: int, initrd: int, initrd_unpacked: int) -> Need:
    """Memory a UEFI boot needs: firmware, the UKI (kernel + initrd) loaded by it, the copies
    the stub and kernel make, the unpacked root (a RAM file system), the kernel's own."""
    uki = kernel + initrd
    total = UEFI_FIRMWARE + 2 * uki + initrd_unpacked + KERNEL_RUNNING
    advice = UEFI_ADVICE
    while advice < total:
        advice *= 2
    return Need(total, advice)


def check(memory: int, n: Need) -> None:
    if memory < n.uefi:
        raise UserError(f"the image needs about {n.uefi // MiB} MiB of guest memory to boot "
                        f"under UEFI; its memory is {memory // MiB} MiB",
                        hint=f"give the VM {n.advice // MiB} MiB: memory = "
                             f"'{n.advice // MiB}M' in the recipe, or export with "
                             f"-m {n.advice // MiB}M (and size cloud instances to match)")
