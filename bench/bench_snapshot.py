"""Snapshot starts against boots, through engitor's own launcher, in one run.

    python bench/bench_snapshot.py [--rounds 6] [--density 16] [--json out.json]

Images (built once): a static C program that prints and exits, and the C web server, each on
Debian's kernel and on the minimal one. Every VM goes through `runner.launch`, as `engitor run`
starts it, under TCG; the save of each image is made before the rounds.
1. to exit: launch -> QEMU gone after the program's exit, start=boot and start=snapshot
   alternating (the order swapping each round);
2. port-ready: launch -> first HTTP answer through the port forward, the same way;
3. density: N web-server VMs of the minimal kernel (32 MiB) launched at once from N threads;
   the time until every one answered, then each QEMU's host memory (RSS, PSS, private) after
   3 s idle; boots first, then snapshot starts.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_boot import free_port, wait_ready  # noqa: E402
from bench_kernel import host_memory, summary  # noqa: E402
from benchlib import header, report  # noqa: E402

from engitor import store  # noqa: E402
from engitor.image import hosttools, kernel, pipeline  # noqa: E402
from engitor.recipe.model import Image, Start  # noqa: E402
from engitor.recipe.settings import make_image, parse_port  # noqa: E402
from engitor.vm import runner  # noqa: E402
from engitor.vm.instance import Instance  # noqa: E402

Built = tuple[store.StoredImage, Image]


def images(tmp: Path, minimal: str) -> dict[str, dict[str, Built]]:
    static, server = tmp / "hello", tmp / "server"
    subprocess.run(["cc", "-O2", "-static", "-o", str(static), str(ROOT / "tests/programs/exit3.c")],
                   check=True)
    subprocess.run(["cc", "-O2", "-o", str(server), str(ROOT / "recipes/web/server.c")], check=True)
    out: dict[str, dict[str, Built]] = {}
    for which, spec in (("debian", kernel.DEFAULT_KERNEL), ("minimal", minimal)):
        out[which] = {}
        for kind, settings in (("static", {"program": str(static)}),
                               ("server", {"program": str(server), "args": ["-port", "8080"]})):
            image = make_image(f"snapbench-{kind}", {**settings, "kernel": spec, "accel": "tcg",
                                                     "memory": "32M" if which == "minimal"
                                                     else "128M"})
            out[which][kind] = (pipeline.build(image), image)
    return out


def launch(built: Built, start: Start, name: str | None = None, port: int = 0) -> Instance:
    stored, image = built
    image = image.with_settings(start=start,
                                ports=(parse_port(f"{port}:8080"),) if port else ())
    return runner.launch(stored, image, tools=hosttools, name=name)


def to_exit(built: Built, start: Start) -> float:
    t0 = time.monotonic()
    inst = launch(built, start)
    outcome = runner.follow(inst, out=None)
    took = time.monotonic() - t0
    if outcome.exit_status != 3:
        raise RuntimeError(f"{start.value}: {outcome.reason} {outcome.message}\n"
                           + "\n".join(inst.console.lines[-40:]))
    inst.remove()
    return took


def port_ready(built: Built, start: Start) -> float:
    port = free_port()
    t0 = time.monotonic()
    inst = launch(built, start, port=port)
    try:
        assert inst.proc is not None
        return wait_ready(f"http://127.0.0.1:{port}/healthz", inst.proc) - t0
    finally:
        inst.kill()
        inst.remove()


def alternating(measure, built: Built, rounds: int) -> dict:
    samples: dict[str, list[float]] = {s.value: [] for s in Start}
    for i in range(rounds):
        for start in (Start.BOOT, Start.SNAPSHOT) if i % 2 == 0 else (Start.SNAPSHOT, Start.BOOT):
            samples[start.value].append(measure(built, start))
    out = {k: summary(v) for k, v in samples.items()}
    out["ratio"] = round(out["snapshot"]["median_s"] / out["boot"]["median_s"], 3)
    return out


def density(built: Built, n: int, start: Start) -> dict:
    ports = [free_port() for _ in range(n)]
    t0 = time.monotonic()
    # The pool lives until the VMs are killed: a VM's parent-death signal follows the thread
    # that started it, not the process.
    pool = cf.ThreadPoolExecutor(max_workers=n)
    insts = list(pool.map(lambda i: launch(built, start, f"dens{i}-{os.getpid()}", ports[i]),
                          range(n)))
    done, failed = [], []
    try:
        for p, inst in zip(ports, insts, strict=True):
            try:
                assert inst.proc is not None
                done.append(wait_ready(f"http://127.0.0.1:{p}/healthz", inst.proc, limit=120))
            except RuntimeError as err:  # say why: the console's last lines
                inst.poll_console(final=True)
                failed.append(f"{err}: {' | '.join(inst.console.lines[-6:])}")
        all_ready = max(done) - t0 if done else float("nan")
        time.sleep(3)  # idle
        mem = [host_memory(inst.meta.pid) for inst in insts if inst.alive()]
    finally:
        for inst in insts:
            inst.kill()
            inst.remove()
        pool.shutdown()
    return {"vms": n, "start": start.value, "serving": len(done), "failed": failed,
            "all_serving_s": round(all_ready, 2),
            **{f"{k}_MiB_median": round(statistics.median(m[k] for m in mem), 1) if mem else None
               for k in ("rss", "pss", "private")},
            "rss_MiB_max": round(max(m["rss"] for m in mem), 1) if mem else None}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--density", type=int, default=16)
    p.add_argument("--only", default="exit,ready,density")
    p.add_argument("--json", type=Path)
    p.add_argument("--kernel", default="minimal", help="the built kernel beside Debian's")
    args = p.parse_args()
    parts = set(args.only.split(","))
    result = header()
    with tempfile.TemporaryDirectory() as tmpdir:
        imgs = images(Path(tmpdir), args.kernel)
        for which in imgs:  # the saves, made once
            to_exit(imgs[which]["static"], Start.SNAPSHOT)
            port_ready(imgs[which]["server"], Start.SNAPSHOT)
        for which in imgs:
            if "exit" in parts:
                result[f"to_exit_{which}"] = alternating(to_exit, imgs[which]["static"], args.rounds)
            if "ready" in parts:
                result[f"port_ready_{which}"] = alternating(port_ready, imgs[which]["server"],
                                                            args.rounds)
        if "density" in parts:
            result["density"] = [density(imgs["minimal"]["server"], args.density, s)
                                 for s in (Start.BOOT, Start.SNAPSHOT)]
    result["load_after"] = os.getloadavg()[0]
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
