"""Volumes and readiness: what a daemon's user sees.

    python bench/bench_daemons.py [--rounds 3] [--mib 256] [--json out.json]

1. Volume write throughput: `dd if=/dev/zero of=FILE bs=1M count=N conv=fsync` (Debian's dd)
   inside the guest onto a named ext4 volume (virtio-blk, a sparse file in the engitor home),
   beside the same dd on the host into a file in the same host directory. dd's own figure
   (bytes / its elapsed time, fsync included) is taken, so boot time does not count.
2. Time from `engitor run` to ready for the C web server (-p H:8080), three ways in one run:
   the host side of the forward accepting a TCP connection (what a naive health check sees:
   QEMU accepts while the guest boots), engitor's "ready" line (the guest's report that the
   program listens), and the first real HTTP answer through the forward.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu, report  # noqa: E402

from engitor import home  # noqa: E402

DD_RE = re.compile(r"(\d+) bytes .* copied, ([\d.]+) s")


def dd_rate(stderr: str) -> float:
    """MiB/s from dd's summary line."""
    m = DD_RE.search(stderr)
    if not m:
        raise RuntimeError(f"no dd summary in: {stderr[-500:]}")
    return int(m.group(1)) / float(m.group(2)) / 2**20


def dd_args(target: str, mib: int, direct: bool = False) -> list[str]:
    return [f"of={target}", "if=/dev/zero", "bs=1M", f"count={mib}",
            "oflag=direct" if direct else "conv=fsync"]


def guest_write(mib: int, volume: str, tmp: Path, direct: bool = False) -> float:
    proc = subprocess.run([sys.executable, "-m", "engitor", "run", "-q", "--accel", "tcg",
                           "-m", "1G", "-v", f"{volume}:/data", "/usr/bin/dd", "--",
                           *dd_args("/data/zero", mib, direct)],
                          capture_output=True, text=True, cwd=tmp, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return dd_rate(proc.stdout + proc.stderr)


def host_write(mib: int, directory: Path) -> float:
    target = directory / "bench-host-zero"
    try:
        proc = subprocess.run(["dd", *dd_args(str(target), mib)], capture_output=True, text=True,
                              check=True)
        return dd_rate(proc.stderr)
    finally:
        target.unlink(missing_ok=True)


def bench_volume(rounds: int, mib: int, tmp: Path) -> dict:
    """The volume with fsync (page cache, then flush) and with O_DIRECT (no guest page cache),
    a tmpfs in the guest (no disk at all: what TCG's copying alone allows; the guest has 1 GiB,
    so the tmpfs's half of it holds the file) and the host."""
    volume = f"bench-{int(time.time())}"
    cases = {
        "guest_volume_fsync": lambda: guest_write(mib, volume, tmp),
        "guest_volume_direct": lambda: guest_write(mib, volume, tmp, direct=True),
        "guest_tmpfs": lambda: guest_write(mib, "tmpfs", tmp),
        "host_fsync": lambda: host_write(mib, home.subdir("volumes")),
    }
    rates: dict[str, list[float]] = {k: [] for k in cases}
    try:
        for i in range(rounds):
            for name, fn in cases.items():
                rates[name].append(fn())
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} MiB/s"
                                                 for k, v in rates.items()), flush=True)
    finally:
        subprocess.run([sys.executable, "-m", "engitor", "volume", "rm", volume],
                       capture_output=True, check=False)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    return {"mib": mib, "rates": rates, "medians": medians,
            "ratio_volume_to_host": medians["guest_volume_fsync"] / medians["host_fsync"]}


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _http_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.read().startswith(b"ok")
    except OSError:
        return False


def one_ready(server: Path, tmp: Path) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "--accel", "tcg",
                             "-p", f"{port}:8080", str(server), "--", "-port", "8080"],
                            cwd=tmp, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[str, float] = {}

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if " ready in " in line and "listening on" in line:
                seen.setdefault("guest_reported", time.monotonic() - t0)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        while "http" not in seen and time.monotonic() - t0 < 180:
            if "tcp" not in seen and _tcp_accepts(port):
                seen["tcp"] = time.monotonic() - t0
            if _http_answers(port):
                seen["http"] = time.monotonic() - t0
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while "guest_reported" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(60)
    return seen


def bench_ready(rounds: int, tmp: Path) -> dict:
    server = tmp / "server"
    subprocess.run(["cc", "-O2", "-o", str(server), str(ROOT / "recipes/web/server.c")],
                   check=True)
    samples = []
    for i in range(rounds):
        samples.append(one_ready(server, tmp))
        print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in samples[-1].items()),
              flush=True)
    out: dict = {"samples": samples}
    for key in ("tcp", "guest_reported", "http"):
        values = [s[key] for s in samples if key in s]
        out[key + "_median"] = statistics.median(values) if values else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not shutil.which("dd"):
        sys.exit("dd not found")
    result = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu()}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        result["volume"] = bench_volume(args.rounds, args.mib, tmp)
        result["ready"] = bench_ready(args.rounds, tmp)
    report(result, args.json)


if __name__ == "__main__":
    main()
