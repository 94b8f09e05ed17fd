"""What the benchmark scripts share: describing the machine, summarizing samples."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(samples: list[float]) -> str:
    """Median in ms with the 10th-90th percentile range."""
    q = statistics.quantiles(samples, n=10)
    return f"{statistics.median(samples) * 1000:.1f} ms ({q[0] * 1000:.1f}-{q[-1] * 1000:.1f})"


def time_cases(cases: dict[str, Callable[[], object]], repeat: int,
               stages: Callable[[], dict[str, float]]) -> tuple[dict[str, list[float]],
                                                             dict[str, list[float]]]:
    """Time each case `repeat` times, the cases alternating within each round so drift in the
    machine's load hits all alike, after 3 warm-up rounds (imports, caches, page faults); each
    round also records `stages()` (stage name -> seconds). Returns (times, stage times)."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    parts: dict[str, list[float]] = {}
    for _ in range(3):
        for fn in cases.values():
            fn()
    for _ in range(repeat):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        for stage, took in stages().items():
            parts.setdefault(stage, []).append(took)
    return times, parts


def as_installed() -> None:
    """Measure engitor's start-up as users have it: with bytecode caches. pip compiles them when
    it installs a package; an environment that turns writing them off (PYTHONDONTWRITEBYTECODE,
    set on some CI machines) would make every command compile engitor from source."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "engitor")], check=True)


def header() -> dict:
    """What every result starts with: when, on what, and how busy the machine was."""
    return {"date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.node()} {os.cpu_count()} cpus",
            "load_before": os.getloadavg()[0]}


def report(result: dict, path: Path | None) -> None:
    """The result as indented JSON on stdout, and in `path` (--json) when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
