"""Choosing the accelerator: KVM only when it really runs a 64-bit guest, else TCG.

/dev/kvm existing proves little: on nested hosts (a PVM host, for one) it opens and runs real
mode, yet a normal 64-bit guest hangs forever or QEMU aborts setting MSRs. So `auto` boots a
probe — the real kernel with an initramfs whose init prints one line and powers off — under
KVM with a deadline, and caches the verdict for this host boot and QEMU binary.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engitor.proc import DEVNULL, PIPE, spawn, tail
from engitor.recipe.model import Accel
from engitor.units import MiB
from engitor.vm import confine, host, qemu

PROBE_DEADLINE = 3.0


@dataclass(frozen=True)
class Choice:
    accel: Accel
    reason: str

    def line(self) -> str:
        return f"accel {self.accel.value}: {self.reason}"


def probe_kvm(kernel: Path, tools: host.Tools,
              deadline: float = PROBE_DEADLINE) -> tuple[bool, str]:
    """Boot the probe under KVM; (works, why)."""
    with tempfile.TemporaryDirectory(prefix="engitor-probe-") as tmp:
        initrd = Path(tmp) / "initrd"
        initrd.write_bytes(tools.probe_initrd())
        console = Path(tmp) / "console"
        spec = qemu.VMSpec(kernel=kernel, initrd=initrd, console=console, accel=Accel.KVM,
                           memory=128 * MiB, cmdline="console=ttyS0 panic=-1 quiet",
                           name="engitor-kvm-probe")
        start = time.monotonic()
        # Confined as every VM is (vm/confine.py): sandboxed, and not root.
        setup = confine.child_setup(confine.vm_credentials(), die_with_parent=True)
        with confine.handoff(spec) as (given, fds):
            proc = spawn(qemu.argv(given, qemu.find_qemu()), stdout=DEVNULL, stderr=PIPE,
                         pass_fds=fds, preexec_fn=setup)
        try:
            while time.monotonic() - start < deadline:
                if console.exists() and tools.PROBE_MARKER in console.read_bytes():
                    return True, f"KVM booted a test guest in {time.monotonic() - start:.1f} s"
                if proc.poll() is not None:
                    _, err = proc.communicate()
                    why = tail(err, 1).removeprefix("qemu-system-x86_64: ")[-120:]
                    return False, "QEMU failed under KVM" + (f" ({why})" if why else "")
                time.sleep(0.05)
            return False, f"KVM is present but a test guest did not boot within {deadline:.0f} s"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def choose(requested: Accel, kernel: Path, tools: host.Tools) -> Choice:
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
        works, why = probe_kvm(kernel, tools)
        verdict = {"works": works, "why": why}
        host.remember(key, verdict)
        suffix = ""
    else:
        suffix = " (probed earlier this host boot)"
    accel = Accel.KVM if verdict["works"] else Accel.TCG
    return Choice(accel, verdict["why"] + suffix)
