"""Foundation benchmarks: boot to port-ready, image size, build times.

    python bench/bench_boot.py [--rounds 10] [--json out.json]

1. Boot -> port-ready of `engitor run PROGRAM -p …` (the whole CLI: start-up, cached build,
   accelerator choice, QEMU) against raw `qemu-system-x86_64 -kernel … -initrd …` with the same
   kernel, initrd and command line, alternating the two in one run. Ready = the first HTTP
   answer from the C web server through the forwarded port; a new connection attempt starts
   every 50 ms so readiness is not quantized by one attempt's timeout.
2. The redis-server image broken down: kernel, modules, init, program + libraries, the rest.
3. Build time of the redis image: cold (empty store, kernel cached) and unchanged rebuild,
   in-process (pipeline.build) and through the CLI (`engitor build`, process wall time).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import as_installed, report  # noqa: E402

from engitor import home  # noqa: E402
from engitor.image import hosttools, pipeline  # noqa: E402
from engitor.recipe.model import Accel  # noqa: E402
from engitor.recipe.settings import make_image  # noqa: E402
from engitor.vm import qemu, runner  # noqa: E402

CONVENTIONAL_VM_MEDIAN_S = 19.3  # ARCHITECTURE.md: Debian minbase + systemd on ext4, same server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _attempt(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            r.read()
        return time.monotonic()
    except OSError:
        return None


def wait_ready(url: str, proc: subprocess.Popen, limit: float = 60) -> float:
    """Monotonic time of the first successful answer."""
    start = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=64) as pool:
        pending: set[cf.Future] = set()
        while time.monotonic() - start < limit:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before serving")
            pending.add(pool.submit(_attempt, url))
            done, pending = cf.wait(pending, timeout=0.05)
            hits = [f.result() for f in done if f.result() is not None]
            if hits:
                for f in pending:
                    f.cancel()
                return min(hits)
    raise RuntimeError("never became ready")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def boot_engitor(server: Path, port: int) -> tuple[float, float]:
    """(boot to port-ready, engitor's own time before QEMU starts) in seconds."""
    wall0, t0 = time.time(), time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "engitor", "run", "-q", "--accel", "tcg",
                             str(server), "-p", f"{port}:8080", "--", "-port", "8080"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/healthz", proc) - t0
        # instance.json's `started` is taken just before QEMU is spawned
        metas = (json.loads(p.read_text()) for p in (home.home() / "run").glob("*/instance.json"))
        meta = next(m for m in metas if m["owner"] == proc.pid)
        return ready, meta["started"] - wall0
    finally:
        stop(proc)


def boot_raw(stored, port: int, tmp: Path) -> float:
    from engitor.recipe.settings import parse_port

    spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                       console=tmp / "console.log", accel=Accel.TCG,
                       ports=(parse_port(f"{port}:8080"),), host_cmdline=runner.host_cmdline(hosttools))
    t0 = time.monotonic()
    proc = subprocess.Popen(qemu.argv(spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_ready(f"http://127.0.0.1:{port}/healthz", proc) - t0
    finally:
        stop(proc)


def bench_boot(rounds: int, tmp: Path) -> dict:
    server = tmp / "server"
    subprocess.run(["cc", "-O2", "-o", str(server), str(ROOT / "recipes/web/server.c")],
                   check=True)
    image = make_image("server", {"program": str(server), "args": ["-port", "8080"],
                                  "accel": "tcg"})
    stored = pipeline.build(image)
    engitor_s, raw_s, prespawn_s = [], [], []
    for i in range(rounds):
        # alternate which goes first so drift in machine load hits both alike
        order = (("engitor", "raw") if i % 2 == 0 else ("raw", "engitor"))
        for which in order:
            port = free_port()
            if which == "engitor":
                ready, prespawn = boot_engitor(server, port)
                engitor_s.append(ready)
                prespawn_s.append(prespawn)
            else:
                raw_s.append(boot_raw(stored, port, tmp))
        print(f"round {i + 1}: engitor {engitor_s[-1]:.2f} s, raw qemu {raw_s[-1]:.2f} s",
              flush=True)
    e, r = statistics.median(engitor_s), statistics.median(raw_s)
    # Each round's pair ran back to back under the same load: the median of their differences
    # is the steadier estimate of what engitor adds.
    paired = statistics.median(a - b for a, b in zip(engitor_s, raw_s, strict=True))
    return {"engitor_run_s": sorted(round(x, 3) for x in engitor_s),
            "raw_qemu_s": sorted(round(x, 3) for x in raw_s),
            "engitor_median_s": round(e, 3), "raw_median_s": round(r, 3),
            "overhead_ratio": round(e / r, 3),
            "paired_overhead_median_s": round(paired, 3),
            "paired_overhead_ratio": round((r + paired) / r, 3),
            "engitor_before_qemu_median_s": round(statistics.median(prespawn_s), 3),
            "conventional_vm_median_s": CONVENTIONAL_VM_MEDIAN_S,
            "speedup_vs_conventional": round(CONVENTIONAL_VM_MEDIAN_S / e, 2)}


def bench_redis_build(tmp: Path) -> dict:
    redis = shutil.which("redis-server")
    if not redis:
        return {"skipped": "redis-server not installed"}
    real_home = home.home()
    fresh = tmp / "home"
    fresh.mkdir()
    (fresh / "kernels").symlink_to(real_home / "kernels")
    (fresh / "cache").symlink_to(real_home / "cache")
    env = {**os.environ, "ENGITOR_HOME": str(fresh)}
    os.environ["ENGITOR_HOME"] = str(fresh)
    try:
        image = make_image("redis", {"program": redis})
        t = time.perf_counter()
        stored = pipeline.build(image)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(5):
            t = time.perf_counter()
            pipeline.build(image)
            warm.append(time.perf_counter() - t)
        cli_warm = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "engitor", "build", "-q", redis], env=env,
                           check=True, capture_output=True)
            cli_warm.append(time.perf_counter() - t)
        m = stored.manifest
        shutil.rmtree(fresh / "images")
        shutil.rmtree(fresh / "keys")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "engitor", "build", "-q", redis], env=env,
                       check=True, capture_output=True)
        cli_cold = time.perf_counter() - t
        sizes = m["sizes"]
        kernel = m["kernel"]["size"]
        app = sizes.get("program", 0) + sizes.get("libraries", 0)
        rest = sum(v for k, v in sizes.items() if k not in ("program", "libraries"))
        return {
            "cold_build_s": round(cold, 3), "unchanged_rebuild_s": round(min(warm), 3),
            "cli_cold_build_s": round(cli_cold, 3), "cli_unchanged_rebuild_s": round(min(cli_warm), 3),
            "sizes_bytes": {"kernel": kernel, **sizes},
            "initrd_compressed": m["initrd"]["size"], "initrd_uncompressed": m["initrd"]["uncompressed"],
            "app_and_libraries_MiB": round(app / 2**20, 2),
            "beyond_kernel_app_libs_MiB": round(rest / 2**20, 3),
        }
    finally:
        os.environ.pop("ENGITOR_HOME", None)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {os.cpu_count()} cpus",
            "qemu": subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0],
            "load_before": os.getloadavg()[0],
            "boot": bench_boot(args.rounds, Path(tmp)),
            "redis_build": bench_redis_build(Path(tmp)),
        }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
