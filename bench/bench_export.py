"""Export benchmarks: time and size of each export format; boot to ready under OVMF, SeaBIOS
and microvm's direct kernel boot, in one run.

    python bench/bench_export.py [--rounds 3] [--boots 3] [--json out.json]

The image is the C web server (recipes/web/server.c). Exports go through the export API
(in-process, the image already built), the formats alternating within each round. Boots
alternate too: OVMF and SeaBIOS boot the raw disk on q35 (virtio-pci disk and NIC, QEMU's user
network on 10.0.3.0/24, the guest's address from DHCP); microvm boots the same image's kernel
and initrd directly, as `engitor run` does (static address). Ready = the first HTTP answer
through the forwarded port, timed from QEMU's start; a new attempt every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu  # noqa: E402

from engitor import export  # noqa: E402
from engitor.export import boot  # noqa: E402
from engitor.export.formats import Format  # noqa: E402
from engitor.image import hosttools, pipeline  # noqa: E402
from engitor.recipe.model import Accel, Port  # noqa: E402
from engitor.recipe.settings import make_image  # noqa: E402
from engitor.vm import qemu, runner  # noqa: E402

MiB = 1 << 20


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_after(argv: list[str], port: int, limit: float = 300) -> float:
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - began < limit:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/etc/hostname", timeout=0.5).read()
                return time.monotonic() - began
            except OSError:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise RuntimeError(f"QEMU ended early: {argv}")
        raise RuntimeError("no answer")
    finally:
        proc.kill()
        proc.wait()


def build_image(tmp: Path):  # type: ignore[no-untyped-def]
    subprocess.run(["cc", "-O2", "-o", str(tmp / "server"), str(ROOT / "recipes/web/server.c")],
                   check=True)
    declared = make_image("bench-export", {"program": str(tmp / "server"),
                                           "args": ["-port", "8080", "-root", "/"]},
                          base_dir=tmp)
    return declared, pipeline.build(declared)


def bench_exports(stored, tmp: Path, rounds: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    times: dict[Format, list[float]] = {f: [] for f in Format}
    sizes: dict[Format, tuple[int, int]] = {}
    for _ in range(rounds):
        for fmt in Format:
            out = tmp / f"disk{fmt.suffix}"
            out.unlink(missing_ok=True)
            t = time.perf_counter()
            export.export(stored, fmt, out)
            times[fmt].append(time.perf_counter() - t)
            sizes[fmt] = (out.stat().st_size, out.stat().st_blocks * 512)
    return {f.value: {"median_s": statistics.median(times[f]), "min_s": min(times[f]),
                      "max_s": max(times[f]), "bytes": sizes[f][0], "allocated": sizes[f][1]}
            for f in Format}


def boot_argvs(declared, stored, tmp: Path) -> dict[str, tuple[list[str], int]]:  # type: ignore[no-untyped-def]
    raw = tmp / "disk.raw"
    out: dict[str, tuple[list[str], int]] = {}
    for name, fw in (("OVMF (q35, raw disk)", boot.Firmware.UEFI),
                     ("SeaBIOS (q35, raw disk)", boot.Firmware.BIOS)):
        port = free_port()
        spec = boot.PCBoot(fw, tmp / f"{fw.value}.log", disk=raw, host_port=port, guest_port=8080)
        out[name] = (boot.argv(spec), port)
    port = free_port()
    spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                       console=tmp / "microvm.log", memory=declared.memory, accel=Accel.TCG,
                       ports=(Port(port, 8080),), host_cmdline=runner.host_cmdline(hosttools))
    out["microvm (direct kernel boot)"] = (qemu.argv(spec), port)
    return out


def bench_boots(argvs: dict[str, tuple[list[str], int]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {k: [] for k in argvs}
    for i in range(rounds):
        order = list(argvs) if i % 2 == 0 else list(reversed(argvs))
        for name in order:
            argv, port = argvs[name]
            samples[name].append(ready_after(argv, port))
    return samples


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="exports of each format")
    ap.add_argument("--boots", type=int, default=3, help="boots under each firmware")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="engitor-bench-export-") as d:
        tmp = Path(d)
        declared, stored = build_image(tmp)
        exports = bench_exports(stored, tmp, args.rounds)
        print(f"# export ({args.rounds} rounds, image {stored.short}: kernel "
              f"{stored.kernel.stat().st_size / MiB:.1f} MiB, initrd "
              f"{stored.initrd.stat().st_size / MiB:.1f} MiB)")
        print("| format | median | min-max | file size | allocated |\n| --- | --- | --- | --- | --- |")
        for name, r in exports.items():
            print(f"| {name} | {r['median_s']:.2f} s | {r['min_s']:.2f}-{r['max_s']:.2f} s | "
                  f"{r['bytes'] / MiB:.1f} MiB | {r['allocated'] / MiB:.1f} MiB |")
        export.export(stored, Format.RAW, tmp / "disk.raw")
        boots = bench_boots(boot_argvs(declared, stored, tmp), args.boots)
    print(f"\n# boot to HTTP ready ({args.boots} boots each, alternating)")
    print("| boot | median | min-max | vs microvm |\n| --- | --- | --- | --- |")
    base = statistics.median(boots["microvm (direct kernel boot)"])
    for name, s in boots.items():
        print(f"| {name} | {statistics.median(s):.2f} s | {min(s):.2f}-{max(s):.2f} s "
              f"| {statistics.median(s) / base:.2f}x |")
    print(f"\nmachine: {cpu()}, {platform.release()}, load {Path('/proc/loadavg').read_text().split()[:3]}")
    if args.json:
        args.json.write_text(json.dumps({"exports": exports, "boots": boots}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
