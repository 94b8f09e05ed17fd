"""Boot the same image many times in a row; every boot must reach the program and serve.

    python bench/boot_stress.py [-n 30] [--memory 128M] [--no-tsc]

Each boot goes through engitor's own runner (the watchdog included): start, wait until the
C web server answers over the forwarded port, ask it to exit, check the exit code. A boot
that never reaches the program is a hang (the watchdog reports it after --timeout seconds).
--no-tsc boots without tsc_early_khz= to show the failure it prevents. Prints one line per
boot and a JSON summary; exits 1 if any boot hung or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engitor.image import hosttools, pipeline  # noqa: E402
from engitor.recipe.settings import make_image  # noqa: E402
from engitor.vm import runner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_boot import free_port, wait_ready  # noqa: E402


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


class _Instance:
    """What bench_boot.wait_ready polls: is the VM still there."""

    def __init__(self, inst):
        self.inst = inst
        self.returncode = None

    def poll(self):
        self.inst.poll_console()
        gone = not self.inst.alive() or (not self.inst.status.started and
                                         time.monotonic() - self.began > self.inst.meta.boot_timeout)
        return 1 if gone else None


def one_boot(image, stored) -> dict:
    port = free_port()
    img = image.with_settings(ports=runner_ports(port))
    began = time.monotonic()
    inst = runner.launch(stored, img, tools=hosttools)
    ready = None
    try:
        watched = _Instance(inst)
        watched.began = began
        try:
            ready = wait_ready(f"http://127.0.0.1:{port}/healthz", watched,
                               limit=img.boot_timeout + 30) - began
        except RuntimeError:
            ready = None
        if ready is not None:
            get(f"http://127.0.0.1:{port}/exit?code=0")
        outcome = runner.follow(inst, out=None)
    finally:
        inst.kill()
        inst.remove()
    return {"ready": ready, "reason": outcome.reason, "code": outcome.exit_status,
            "guest_start": inst.status.start_uptime}


def runner_ports(port: int):
    from engitor.recipe.settings import parse_port

    return (parse_port(f"{port}:8080"),)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=30)
    p.add_argument("--memory", default="128M")
    p.add_argument("--timeout", type=int, default=30, help="watchdog seconds")
    p.add_argument("--no-tsc", action="store_true", help="boot without tsc_early_khz=")
    args = p.parse_args()
    if args.no_tsc:
        os.environ["ENGITOR_TSC_KHZ"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        server = Path(tmp) / "server"
        subprocess.run(["cc", "-O2", "-o", str(server), str(ROOT / "recipes/web/server.c")],
                       check=True)
        image = make_image("stress", {"program": str(server), "args": ["-port", "8080"],
                                      "memory": args.memory, "boot_timeout": args.timeout,
                                      "accel": "tcg"})
        stored = pipeline.build(image)
        results = []
        for i in range(args.n):
            r = one_boot(image, stored)
            results.append(r)
            print(f"boot {i + 1:>3}: {r['reason']:<8} ready={r['ready'] and round(r['ready'], 2)} "
                  f"guest_start={r['guest_start']}", flush=True)
    ok = [r for r in results if r["ready"] is not None and r["code"] == 0]
    times = [r["ready"] for r in ok]
    summary = {"boots": len(results), "ok": len(ok), "hangs": sum(r["reason"] == "watchdog"
                                                                     for r in results),
               "tsc_early_khz": not args.no_tsc, "memory": args.memory,
               "ready_median_s": round(statistics.median(times), 3) if times else None,
               "ready_min_s": round(min(times), 3) if times else None,
               "ready_max_s": round(max(times), 3) if times else None}
    print(json.dumps(summary))
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
