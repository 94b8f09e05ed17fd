"""What SMP costs the minimal kernel: the same static program run to its exit, alternating, on

    minimal        the one-CPU kernel (recipes/kernels/minimal.lua), 1 CPU
    smp            the same fragment with CONFIG_SMP=y and NR_CPUS=8, 1 CPU
    smp-2cpu       that kernel with 2 CPUs (-smp 2)

    engitor kernel build --config SMP_FRAGMENT --name minimal-smp    # first
    python bench/bench_kernel_smp.py [--smp-kernel minimal-smp] [--rounds 12] [--json out.json]

Booted as bench_kernel.py boots (raw QEMU argv from engitor's builders, PVH, microvm pic=off,
TCG), so only the kernels differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_kernel import VARIANTS, run_to_exit, spec_for, summary  # noqa: E402
from benchlib import report  # noqa: E402

from engitor.image import pipeline  # noqa: E402
from engitor.recipe.settings import make_image  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smp-kernel", default="minimal-smp")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    tuned = VARIANTS[-1]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        static = tmp / "hello"
        subprocess.run(["cc", "-O2", "-static", "-o", str(static),
                        str(ROOT / "tests/programs/exit3.c")], check=True)
        images = {k: pipeline.build(make_image(f"smp-bench-{k}", {"program": str(static),
                                                                 "kernel": k}))
                  for k in ("minimal", args.smp_kernel)}
        cases = {"minimal": (images["minimal"], 1), "smp": (images[args.smp_kernel], 1),
                 "smp-2cpu": (images[args.smp_kernel], 2)}
        times: dict[str, list[float]] = {k: [] for k in cases}
        for i in range(args.rounds):
            names = list(cases)
            for name in names[i % 3:] + names[:i % 3]:
                stored, cpus = cases[name]
                spec = dataclasses.replace(spec_for(stored, tuned, tmp), cpus=cpus)
                took = run_to_exit(spec)
                if took is not None:
                    times[name].append(took)
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items()
                                                 if v), flush=True)
    base = statistics.median(times["minimal"])
    result = {"date": time.strftime("%Y-%m-%d %H:%M"),
              "run_to_exit": {k: summary(v) | {"ratio": round(statistics.median(v) / base, 3)}
                              for k, v in times.items() if v}}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
