"""Measure the least guest memory an image boots in, to derive engitor.vm.limits' floor rule.

For each stored image given (by name or id), bisect `-m` (in MiB steps of --step) between --low
and --high: a boot counts as good when the init prints its start marker within --timeout s.
Debian's kernel dies silently in its decompressor when memory is short, so silence past the
timeout is a failure. Prints kernel size, initrd compressed and unpacked sizes, and the floor.

    python bench/memory_floor.py server redis-server pyapp
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from engitor import store
from engitor.image import hosttools
from engitor.recipe.model import Accel, MiB
from engitor.vm import qemu, runner
from engitor.vm.instance import MARKER


def boots(stored: store.StoredImage, mib: int, timeout: float) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        console = Path(tmp) / "console.log"
        spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                           console=console, memory=mib * MiB, accel=Accel.TCG,
                           host_cmdline=runner.host_cmdline(hosttools))
        proc = subprocess.Popen(qemu.argv(spec), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if console.exists() and f"{MARKER}start" in console.read_text(errors="replace"):
                    return True
                time.sleep(0.1)
            return console.exists() and f"{MARKER}start" in console.read_text(errors="replace")
        finally:
            proc.kill()
            proc.wait()


def floor(stored: store.StoredImage, low: int, high: int, step: int, timeout: float) -> int:
    """Smallest multiple of `step` in (low, high] that boots (high is assumed to)."""
    while high - low > step:
        mid = (low + high) // 2 // step * step
        if boots(stored, mid, timeout):
            high = mid
        else:
            low = mid
        print(f"    {mid} MiB: {'boots' if high == mid else 'fails'}", flush=True)
    return high


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--low", type=int, default=16)
    ap.add_argument("--high", type=int, default=256)
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=25)
    args = ap.parse_args()
    for ref in args.images:
        stored = store.resolve(ref)
        m = stored.manifest
        print(f"{ref}: kernel {m['kernel']['size'] / MiB:.1f} MiB, initrd "
              f"{m['initrd']['size'] / MiB:.1f} MiB compressed, "
              f"{m['initrd']['uncompressed'] / MiB:.1f} MiB unpacked", flush=True)
        least = floor(stored, args.low, args.high, args.step, args.timeout)
        print(f"  floor: {least} MiB", flush=True)


if __name__ == "__main__":
    main()
