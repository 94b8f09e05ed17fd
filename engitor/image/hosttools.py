"""What vm/ needs from the image stage, handed down by the caller as one object.

vm/ imports nothing from image/ (it runs images; it does not make them), yet two host probes
need image-stage parts: the KVM probe boots a tiny initramfs holding the guest init, and the
TSC probe is a static C helper. Callers above both stages pass this module as the
`vm.host.Tools` protocol: `runner.launch(stored, image, tools=hosttools)`.
"""

from __future__ import annotations

from pathlib import Path

from engitor import cpio, protocol
from engitor.image import cc
from engitor.image import init as guest_init

# The line the probe guest's init prints when it came up, read by vm.accel.
PROBE_MARKER = protocol.PROBE_LINE


def compile_static(source: Path) -> Path:
    """A static host helper compiled from `source` (cached)."""
    return cc.compile_static(source)


def probe_initrd() -> bytes:
    """An initramfs whose init prints PROBE_MARKER and powers off."""
    config = guest_init.InitConfig(argv=(), probe=True, addr=None, gateway=None)
    entries = {
        "/init": cpio.Entry.file("/init", source=guest_init.binary(), mode=0o755),
        guest_init.CONFIG_PATH: cpio.Entry.file(guest_init.CONFIG_PATH, data=config.render()),
        "/dev/console": cpio.Entry.chardev("/dev/console", 5, 1),
    }
    return cpio.archive(entries)
