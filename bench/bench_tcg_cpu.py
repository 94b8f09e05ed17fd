"""The CPU TCG emulates: QEMU's `-cpu max` against engitor's (qemu.TCG_CPU, max without ERMS),
boots alternating; time from QEMU's spawn to the init's start line for the program.

    python bench/bench_tcg_cpu.py IMAGE [IMAGE...] [--rounds 3] [--memory 1024] [--json out.json]
    python bench/bench_tcg_cpu.py java --cpu max --cpu max,-erms --cpu max,-erms,-avx2

IMAGE is a name, id or prefix from `engitor images`; each boots with the initramfs engitor would
hand QEMU for that memory (unpacked by the host under TCG when it fits: engitor/vm/initrd.py).
ERMS tells the guest that `rep movsb` is the fast way to copy; TCG runs it a byte an iteration,
so a large image, whose kernel copies every file of its initramfs into memory, shows it most.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_initrd import to_start  # noqa: E402
from benchlib import report  # noqa: E402

from engitor import store  # noqa: E402
from engitor.recipe.model import Accel, MiB  # noqa: E402
from engitor.vm import initrd, qemu  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("images", nargs="+")
    p.add_argument("--cpu", action="append", help="a -cpu value (repeat); default: max and "
                   f"engitor's {qemu.TCG_CPU}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--memory", type=int, default=1024, help="MiB")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    cpus = args.cpu or ["max", qemu.TCG_CPU]
    memory = args.memory * MiB
    result: dict = {"memory_MiB": args.memory, "images": {}}
    with tempfile.TemporaryDirectory() as t:
        for name in args.images:
            stored = store.resolve(name)
            chosen = initrd.for_boot(stored, memory, Accel.TCG, print)
            times: dict[str, list[float]] = {c: [] for c in cpus}
            for r in range(args.rounds):
                for cpu in cpus[r % len(cpus):] + cpus[:r % len(cpus)]:
                    took = to_start(stored, chosen, memory, Path(t), cpu=cpu)
                    if took is not None:
                        times[cpu].append(took)
                print(f"{name} round {r + 1}: " +
                      ", ".join(f"{c} {v[-1]:.2f}" for c, v in times.items() if v), flush=True)
            result["images"][name] = {
                "kernel": stored.manifest.get("kernel", {}).get("package"),
                "initrd_MiB": round(chosen.stat().st_size / MiB, 1),
                **{c: {"median_s": round(statistics.median(v), 2), "n": len(v)}
                   for c, v in times.items() if v}}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
