"""Facts about this host that VMs depend on, cached per host boot (kernel boot_id).

The TSC frequency (for the guest's tsc_early_khz=) and the accelerator probe result change only
when the host reboots or its QEMU changes, so they are measured once per boot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from engitor import home
from engitor.proc import run


class Tools(Protocol):
    """Image-stage parts the host probes use, passed down from above (see
    engitor/image/hosttools.py, which is one)."""

    PROBE_MARKER: bytes

    def compile_static(self, source: Path) -> Path: ...

    def probe_initrd(self) -> bytes: ...

TSC_SOURCE = Path(__file__).resolve().parent / "tsc.c"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _cache_file() -> Path:
    return home.subdir("cache") / "host.json"


def cached(key: str) -> Any:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data.get(key) if data.get("boot_id") == boot_id() else None


def remember(key: str, value: Any) -> None:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        data = {}
    if data.get("boot_id") != boot_id():
        data = {"boot_id": boot_id()}
    data[key] = value
    home.atomic_write(_cache_file(), json.dumps(data, indent=2, sort_keys=True))


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def tsc_khz(tools: Tools) -> int | None:
    """The host TSC frequency, or None when the TSC is not constant (then nothing is passed)."""
    value = cached("tsc_khz")
    if value is not None:
        return value or None
    flags = cpu_flags()
    khz = 0
    if "constant_tsc" in flags and "nonstop_tsc" in flags:
        proc = run([tools.compile_static(TSC_SOURCE)], timeout=10)
        if proc.returncode == 0 and proc.stdout.strip().isdigit():
            khz = int(proc.stdout.strip())
    remember("tsc_khz", khz)
    return khz or None
