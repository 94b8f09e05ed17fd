"""What the benchmark scripts share: describing the machine, summarizing samples."""

from __future__ import annotations

import platform
import statistics
from pathlib import Path


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
