"""What a kernel can do and how big it is: read from the kernel's own config and files when an
image is built, recorded in the image's manifest, asked by the runner when it boots one.

Debian's cloud kernel and engitor's minimal one differ in every field: one loads virtio from
modules and boots only as a compressed bzImage, the other has everything built in, no module
loader, and an uncompressed vmlinux QEMU can enter directly (PVH). Shared by the image stage
(which computes it) and the VM stage (which reads it), so it imports neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class KernelTraits:
    # The defaults describe Debian's cloud kernel: what images built before traits were
    # recorded ran on.
    modules: bool = True   # CONFIG_MODULES: drivers may need loading from the initramfs
    smp: bool = True       # CONFIG_SMP: more than one CPU is used
    max_cpus: int = 0      # CONFIG_NR_CPUS (0: not known)
    io_apic: bool = True   # CONFIG_X86_IO_APIC: interrupts need no 8259 PIC
    pvh: bool = False      # a vmlinux with the Xen PVH entry note is kept beside the bzImage
    size: int = 0          # bytes of the bzImage file QEMU loads
    init_size: int = 0     # bytes of memory the kernel needs to decompress and start (boot header)
    vmlinux_size: int = 0  # bytes of the PVH vmlinux, when there is one
    hz: int = 0            # CONFIG_HZ: jiffies a second (0: not known)
    # CONFIG_X86_LAPIC_TIMER_PERIOD (recipes/kernels/lapic-timer-period.patch): the kernel takes
    # its local APIC timer's count per jiffy from the command line instead of measuring it.
    lapic_timer_period: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> KernelTraits:
        """Tolerant of fields it does not know (a newer engitor wrote them) or lacks."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    @property
    def loaded_size(self) -> int:
        """The bytes QEMU copies into guest memory for the kernel (memory floors count it)."""
        return self.vmlinux_size if self.pvh and self.vmlinux_size else self.size

    def usable_cpus(self, requested: int) -> int:
        if not self.smp:
            return 1
        return min(requested, self.max_cpus) if self.max_cpus else requested
