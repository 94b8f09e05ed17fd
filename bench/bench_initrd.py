"""A stored image booted with its initramfs compressed (the guest unpacks zstd) and unpacked
(the host did, engitor/vm/initrd.py), alternating; time from QEMU's spawn to the init's start
line for the program, under TCG.

    python bench/bench_initrd.py IMAGE [--rounds 3] [--memory 1024] [--json out.json]

IMAGE is a name, id or prefix from `engitor images` (a large one shows the difference best:
a Java or postgres image). Also reports how long the host takes to unpack it, once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import report  # noqa: E402

from engitor import cpio, store  # noqa: E402
from engitor.image import hosttools  # noqa: E402
from engitor.recipe.model import Accel, MiB  # noqa: E402
from engitor.vm import qemu, runner  # noqa: E402


def to_start(stored: store.StoredImage, initrd: Path, memory: int, tmp: Path,
             limit: float = 300, cpu: str | None = None) -> float | None:
    """Seconds from spawn to the init's start line; None if it never came. `cpu` replaces
    engitor's `-cpu` value."""
    console = tmp / f"console-{time.monotonic_ns()}.log"
    traits = stored.kernel_traits
    args, pic = runner.kernel_tuning(traits, 1, Accel.TCG)
    spec = qemu.VMSpec(kernel=stored.vmlinux if traits.pvh and stored.vmlinux else stored.kernel,
                       initrd=initrd, cmdline=stored.cmdline, console=console, accel=Accel.TCG,
                       memory=memory, pic=pic, tb_size=runner.tcg_tb_size(memory),
                       host_cmdline=args + runner.host_cmdline(hosttools))
    argv = qemu.argv(spec)
    if cpu:
        argv[argv.index("-cpu") + 1] = cpu
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < limit and proc.poll() is None:
            if console.exists() and b"@@engitor:start" in console.read_bytes():
                return time.monotonic() - t0
            time.sleep(0.02)
        return None
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("image")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memory", type=int, default=1024, help="MiB")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    stored = store.resolve(args.image)
    memory = args.memory * MiB
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        unpacked = tmp / "initrd.cpio"
        began = time.monotonic()
        with stored.initrd.open("rb") as src, unpacked.open("wb") as out:
            cpio.unpack_stream(src, out)
        host_s = time.monotonic() - began
        unpacked_size = unpacked.stat().st_size
        times: dict[str, list[float]] = {"compressed": [], "unpacked": []}
        pairs = [("compressed", stored.initrd), ("unpacked", unpacked)]
        for r in range(args.rounds):
            for kind, path in pairs if r % 2 == 0 else pairs[::-1]:
                took = to_start(stored, path, memory, tmp)
                if took is not None:
                    times[kind].append(took)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items() if v),
                  flush=True)
    result = {"image": stored.manifest.get("name"),
              "kernel": stored.manifest.get("kernel", {}).get("package"),
              "compressed_MiB": round(stored.initrd.stat().st_size / MiB, 1),
              "unpacked_MiB": round(unpacked_size / MiB, 1),
              "host_unpack_s": round(host_s, 2), "memory_MiB": args.memory,
              **{k: {"median_s": round(statistics.median(v), 2), "n": len(v)}
                 for k, v in times.items() if v}}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
