"""Choosing the accelerator: KVM only when it really runs a 64-bit guest, else TCG.

/dev/kvm existing proves little: on nested hosts (a PVM host, for one) it opens and runs real
mode, yet a normal 64-bit guest hangs forever or QEMU aborts setting MSRs. So `auto` boots a
probe — the real kernel with an initramfs whose init prints one line and powers off — under
KVM with a deadline, and caches the verdict for this host boot and QEMU binary.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engitor.image import cpio
from engitor.image import init as guest_init
from engitor.recipe.model import Accel
from engitor.vm import confine, host, qemu

PROBE_DEADLINE = 3.0
PROBE_MARKER = b"@@engitor:probe ok"


@dataclass(frozen=True)
class Choice:
    accel: Accel
    reason: str

    def line(self) -> str:
        return f"accel {self.accel.value}: {self.reason}"


def probe_initrd() -> bytes:
    config = guest_init.InitConfig(argv=(), probe=True, addr=None, gateway=None)
    entries = {
        "/init": cpio.Entry.file("/init", source=guest_init.binary(), mode=0o755),
        guest_init.CONFIG_PATH: cpio.Entry.file(guest_init.CONFIG_PATH, data=config.render()),
        "/dev/console": cpio.Entry.chardev("/dev/console", 5, 1),
    }
    return cpio.archive(entries)


def probe_kvm(kernel: Path, deadline: float = PROBE_DEADLINE) -> tuple[bool, str]:
    """Boot the probe under KVM; (works, why)."""
    with tempfile.TemporaryDirectory(prefix="engitor-probe-") as tmp:
        initrd = Path(tmp) / "initrd"
        initrd.write_bytes(probe_initrd())
        console = Path(tmp) / "console"
        spec = qemu.VMSpec(kernel=kernel, initrd=initrd, console=console, accel=Accel.KVM,
                           memory=128 * 1024 * 1024, cmdline="console=ttyS0 panic=-1 quiet",
                           name="engitor-kvm-probe")
        start = time.monotonic()
        # Confined as every VM is (vm/confine.py): sandboxed, and not root.
        setup = confine.child_setup(confine.vm_credentials(), die_with_parent=True)
        with confine.handoff(spec) as (given, fds):
            proc = subprocess.Popen(qemu.argv(given, qemu.find_qemu()), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    pass_fds=fds, preexec_fn=setup)
        try:
            while time.monotonic() - start < deadline:
                if console.exists() and PROBE_MARKER in console.read_bytes():
                    return True, f"KVM booted a test guest in {time.monotonic() - start:.1f} s"
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace").strip().splitlines()  # type: ignore[union-attr]
                    why = err[-1].removeprefix("qemu-system-x86_64: ")[-120:] if err else ""
                    return False, "QEMU failed under KVM" + (f" ({why})" if why else "")
                time.sleep(0.05)
            return False, f"KVM is present but a test guest did not boot within {deadline:.0f} s"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def choose(requested: Accel, kernel: Path) -> Choice:
    if requested is Accel.TCG:
        return Choice(Accel.TCG, "requested")
    if requested is Accel.KVM:
        return Choice(Accel.KVM, "requested")
    if not os.path.exists("/dev/kvm"):
        return Choice(Accel.TCG, "no /dev/kvm on this host")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Choice(Accel.TCG, "/dev/kvm is not accessible (add yourself to group kvm)")
    qemu_bin = qemu.find_qemu()
    key = f"kvm_probe:{os.stat(qemu_bin).st_mtime_ns}"
    verdict = host.cached(key)
    if verdict is None:
        works, why = probe_kvm(kernel)
        verdict = {"works": works, "why": why}
        host.remember(key, verdict)
        suffix = ""
    else:
        suffix = " (probed earlier this host boot)"
    accel = Accel.KVM if verdict["works"] else Accel.TCG
    return Choice(accel, verdict["why"] + suffix)
