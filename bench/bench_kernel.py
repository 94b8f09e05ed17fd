"""engitor's minimal kernel against Debian's cloud kernel, in one run, boots alternating.

    python bench/bench_kernel.py [--rounds 6] [--density 16] [--json out.json]
    python bench/bench_kernel.py --only memory,size      # the cheap parts
    python bench/bench_kernel.py --rebuild               # also a second full build: identical?
    python bench/bench_kernel.py --kernel trial          # another built kernel in its place

Same declarations, built once per kernel (Debian's initramfs carries the virtio modules, the
minimal kernel's has none): a static C program that prints and exits, and the C web server.
Booted with raw QEMU argv from engitor's own builders (qemu.argv, runner.kernel_tuning,
runner.host_cmdline), so engitor's start-up is not in the numbers. Variants:
  debian        Debian's bzImage, engitor's defaults
  minimal       the minimal kernel's bzImage, no tuning
  minimal-pvh   its vmlinux entered through PVH (no decompression)
  tuned-bzimage its bzImage, tuned the same (PVH or not: QEMU keeps a copy of what it loaded)
  tuned         PVH + microvm pic=off + lapic_timer_period= (the APIC timer's rate given, its
                100 ms calibration skipped: recipes/kernels/lapic-timer-period.patch); what
                `engitor run` does under TCG
1. run to exit (QEMU spawn -> QEMU exit) and port-ready (spawn -> first HTTP answer through
   the forward), each round running every variant once, the order rotating.
2. least memory: the static program run to exit at decreasing -m, each kernel.
3. density: N idle web-server VMs on the tuned minimal kernel, all spawned at once; time until
   every one answered, then each QEMU's host memory (RSS, PSS, private), at a few TCG tb-size
   values.
4. sizes: bzImage + initramfs of the static program.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_boot import free_port, stop, wait_ready  # noqa: E402
from benchlib import header, report  # noqa: E402

from engitor import store  # noqa: E402
from engitor.image import hosttools, kbuild, kernel, pipeline  # noqa: E402
from engitor.kernel_traits import KernelTraits  # noqa: E402
from engitor.recipe.model import Accel, MiB  # noqa: E402
from engitor.recipe.settings import make_image, parse_port  # noqa: E402
from engitor.vm import initrd as initrd_choice  # noqa: E402
from engitor.vm import qemu, runner  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    kernel: str      # "debian" or "minimal": which image
    pvh: bool
    tuned: bool


VARIANTS = (Variant("debian", "debian", False, False), Variant("minimal", "minimal", False, False),
            Variant("minimal-pvh", "minimal", True, False),
            Variant("tuned-bzimage", "minimal", False, True),
            Variant("tuned", "minimal", True, True))


def spec_for(stored: store.StoredImage, v: Variant, tmp: Path, *, memory: int = 128 * MiB,
             ports: tuple = (), tb_size: int | None = None) -> qemu.VMSpec:
    traits = stored.kernel_traits
    args, pic = runner.kernel_tuning(traits, 1, Accel.TCG) if v.tuned else ((), True)
    kern = stored.vmlinux if v.pvh and stored.vmlinux else stored.kernel
    # The initramfs the runner would hand QEMU for this memory (unpacked under TCG when it fits).
    initrd = initrd_choice.for_boot(stored, memory, Accel.TCG, lambda _: None)
    return qemu.VMSpec(kernel=kern, initrd=initrd, cmdline=stored.cmdline,
                       console=tmp / f"console-{time.monotonic_ns()}.log", accel=Accel.TCG,
                       memory=memory, ports=ports, pic=pic, tb_size=tb_size,
                       host_cmdline=args + runner.host_cmdline(hosttools))


def run_to_exit(spec: qemu.VMSpec, expect: str = "argc=", limit: float = 60) -> float | None:
    """Seconds from spawn to QEMU's exit, None if the program's output never came."""
    t0 = time.monotonic()
    proc = subprocess.Popen(qemu.argv(spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    took = time.monotonic() - t0
    ok = spec.console.exists() and expect in spec.console.read_text(errors="replace")
    spec.console.unlink(missing_ok=True)
    return took if ok else None


def port_ready(stored: store.StoredImage, v: Variant, tmp: Path) -> float:
    port = free_port()
    spec = spec_for(stored, v, tmp, ports=(parse_port(f"{port}:8080"),))
    t0 = time.monotonic()
    proc = subprocess.Popen(qemu.argv(spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_ready(f"http://127.0.0.1:{port}/healthz", proc) - t0
    finally:
        stop(proc)
        spec.console.unlink(missing_ok=True)


def images(tmp: Path, minimal: str = "minimal") -> dict[str, dict[str, store.StoredImage]]:
    static = tmp / "hello"
    subprocess.run(["cc", "-O2", "-static", "-o", str(static), str(ROOT / "tests/programs/exit3.c")],
                   check=True)
    server = tmp / "server"
    subprocess.run(["cc", "-O2", "-o", str(server), str(ROOT / "recipes/web/server.c")], check=True)
    out: dict[str, dict[str, store.StoredImage]] = {}
    for which, spec in (("debian", kernel.DEFAULT_KERNEL), ("minimal", minimal)):
        out[which] = {
            "static": pipeline.build(make_image("kbench-static", {"program": str(static),
                                                                  "kernel": spec})),
            "server": pipeline.build(make_image("kbench-server", {
                "program": str(server), "args": ["-port", "8080"], "kernel": spec})),
        }
    return out


def summary(samples: list[float]) -> dict:
    return {"median_s": round(statistics.median(samples), 3),
            "min_s": round(min(samples), 3), "max_s": round(max(samples), 3), "n": len(samples)}


def bench_boots(imgs: dict, rounds: int, tmp: Path) -> dict:
    exits: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    ready: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    failed: dict[str, int] = {v.name: 0 for v in VARIANTS}
    for i in range(rounds):
        order = VARIANTS[i % len(VARIANTS):] + VARIANTS[:i % len(VARIANTS)]
        for v in order:
            took = run_to_exit(spec_for(imgs[v.kernel]["static"], v, tmp))
            if took is None:
                failed[v.name] += 1
            else:
                exits[v.name].append(took)
            ready[v.name].append(port_ready(imgs[v.kernel]["server"], v, tmp))
        print(f"round {i + 1}: " + ", ".join(
            f"{v.name} {exits[v.name][-1] if exits[v.name] else float('nan'):.2f}/"
            f"{ready[v.name][-1]:.2f}" for v in VARIANTS), flush=True)
    base_exit = statistics.median(exits["debian"])
    base_ready = statistics.median(ready["debian"])
    return {
        "run_to_exit": {k: summary(s) | {"ratio": round(statistics.median(s) / base_exit, 3)}
                        for k, s in exits.items() if s},
        "port_ready": {k: summary(s) | {"ratio": round(statistics.median(s) / base_ready, 3)}
                       for k, s in ready.items()},
        "failed_boots": failed,
    }


def least_memory(stored: store.StoredImage, v: Variant, sizes: list[int], tmp: Path) -> dict:
    tried = {}
    least = None
    for mib in sizes:
        ok = run_to_exit(spec_for(stored, v, tmp, memory=mib * MiB), limit=40) is not None
        tried[mib] = ok
        if not ok:
            break
        least = mib
    return {"least_MiB": least, "tried": tried}


def host_memory(pid: int) -> dict[str, float]:
    """A QEMU's resident memory three ways (/proc/PID/smaps_rollup): RSS counts the QEMU binary
    and libraries in every VM, PSS shares them out among the processes that map them, private
    is what this VM alone holds (guest pages it touched, translation cache, heap)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) / 1024
    return {"rss": fields.get("Rss", 0.0), "pss": fields.get("Pss", 0.0),
            "private": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)}


def density(stored: store.StoredImage, n: int, memory_mib: int, tb_size: int | None,
            tmp: Path, v: Variant = VARIANTS[-1]) -> dict:
    procs, urls = [], []
    t0 = time.monotonic()
    for _ in range(n):
        port = free_port()
        spec = spec_for(stored, v, tmp, memory=memory_mib * MiB, tb_size=tb_size,
                        ports=(parse_port(f"{port}:8080"),))
        errs = (tmp / f"qemu-{port}.err").open("w")
        procs.append(subprocess.Popen(qemu.argv(spec), stdout=subprocess.DEVNULL, stderr=errs))
        urls.append(f"http://127.0.0.1:{port}/healthz")
    done, failed = [], []
    try:
        for url, p in zip(urls, procs, strict=True):
            try:
                done.append(wait_ready(url, p, limit=120))
            except RuntimeError as e:  # say why (a port another process took meanwhile?)
                port = url.split(":")[2].split("/")[0]
                why = (tmp / f"qemu-{port}.err").read_text().strip().splitlines()
                failed.append(f"{e}: {why[-1] if why else ''}")
        all_ready = max(done) - t0 if done else float("nan")
        time.sleep(3)  # idle
        mem = [host_memory(p.pid) for p in procs if p.poll() is None]
    finally:
        for p in procs:
            stop(p)
    return {"vms": n, "variant": v.name, "memory_MiB": memory_mib, "tb_size_MiB": tb_size,
            "serving": len(done),
            "failed": failed, "all_serving_s": round(all_ready, 2),
            **{f"{k}_MiB_median": round(statistics.median(m[k] for m in mem), 1) if mem else None
               for k in ("rss", "pss", "private")},
            "rss_MiB_max": round(max(m["rss"] for m in mem), 1) if mem else None}


def sizes(imgs: dict) -> dict:
    out = {}
    for which, imgset in imgs.items():
        s = imgset["static"]
        t: KernelTraits = s.kernel_traits
        out[which] = {"bzImage": s.kernel.stat().st_size, "initramfs": s.initrd.stat().st_size,
                      "total_MiB": round(s.size() / 2**20, 2), "init_size": t.init_size,
                      "vmlinux": t.vmlinux_size}
    return out


def rebuild() -> dict:
    """A forced second build of the cached minimal kernel: kbuild compares its bytes."""
    said: list[str] = []
    t = time.monotonic()
    kbuild.build("minimal", force=True, log=said.append)
    return {"build_s": round(time.monotonic() - t),
            "identical": any("identical to the cached build" in line for line in said)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--density", type=int, default=16)
    p.add_argument("--only", default="boots,memory,density,size")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--kernel", default="minimal",
                   help="the built kernel to compare with Debian's (engitor kernel list)")
    args = p.parse_args()
    parts = set(args.only.split(","))
    result = header()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        imgs = images(tmp, args.kernel)
        if "size" in parts:
            result["sizes"] = sizes(imgs)
        if "boots" in parts:
            result["boots"] = bench_boots(imgs, args.rounds, tmp)
        if "memory" in parts:
            print(json.dumps(result), flush=True)
            result["least_memory"] = {
                "tuned": least_memory(imgs["minimal"]["static"], VARIANTS[-1],
                                      [32, 28, 24, 20, 18, 16, 14, 12], tmp),
                "debian": least_memory(imgs["debian"]["static"], VARIANTS[0],
                                       [96, 88, 80, 76, 72, 64], tmp)}
        if "density" in parts:
            print(json.dumps(result), flush=True)
            pvh, bz = VARIANTS[-1], VARIANTS[-2]
            result["density"] = [density(imgs["minimal"]["server"], args.density, mem, tb, tmp, v)
                                 for mem, tb, v in ((32, None, pvh), (32, 16, pvh), (32, 16, bz),
                                                    (32, 8, bz))]
        if args.rebuild:
            result["rebuild"] = rebuild()
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
