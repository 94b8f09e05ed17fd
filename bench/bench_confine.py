"""What confining QEMU costs: its start and a whole short boot, sandbox + own user on and off.

    python bench/bench_confine.py [--rounds 8] [--old-tree DIR] [--json out.json]

1. QEMU start: spawn -> QMP answers `query-status` (QEMU parsed its options, loaded kernel
   and initrd, installed its seccomp filter and changed user).
2. Boot to exit: spawn -> QEMU exits after tests/programs/exit3.c ran and powered off.
Both through engitor's own launch path (descriptors handed over, vm/confine.py), alternating
"confined" (-sandbox on..., running as engitor-vm when root) and "plain" (no sandbox, same
user as engitor) within each round, after one warm-up round.
3. With --old-tree (an export of the tree before this change): build time of the same image
   from an empty store (kernel and compile caches shared), old and new code alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import cpu, summary  # noqa: E402

from engitor import home  # noqa: E402
from engitor.image import pipeline  # noqa: E402
from engitor.recipe.model import Accel  # noqa: E402
from engitor.recipe.settings import make_image  # noqa: E402
from engitor.vm import confine, qemu, runner, sockets  # noqa: E402

BUILD_SNIPPET = """
import sys, time
from engitor.image import pipeline
from engitor.recipe.settings import make_image
image = make_image("bench", {"program": sys.argv[1], "accel": "tcg"})
t = time.perf_counter(); pipeline.build(image); print(time.perf_counter() - t)
"""


def spawn(stored, work: Path, confined: bool) -> tuple[subprocess.Popen[bytes], Path]:
    for old in work.iterdir():
        old.unlink()
    spec = qemu.VMSpec(kernel=stored.kernel, initrd=stored.initrd, cmdline=stored.cmdline,
                       console=work / "console.log", accel=Accel.TCG, qmp=work / "q.sock",
                       host_cmdline=runner.host_cmdline(), sandbox=confined)
    creds = confine.vm_credentials() if confined else None
    with confine.handoff(spec) as (given, fds):
        proc = subprocess.Popen(qemu.argv(given), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=fds, preexec_fn=confine.child_setup(
                                    creds, die_with_parent=True))
    return proc, spec.qmp  # type: ignore[return-value]


def qmp_ready(path: Path, proc: subprocess.Popen[bytes]) -> float:
    from qemu.qmp.legacy import QEMUMonitorProtocol

    mon = QEMUMonitorProtocol(str(path))
    mon.connect()
    mon.cmd("query-status")
    took = time.monotonic()
    mon.close()
    return took


def one(stored, work: Path, confined: bool) -> tuple[float, float]:
    t0 = time.monotonic()
    proc, qmp_path = spawn(stored, work, confined)
    try:
        ready = qmp_ready(qmp_path, proc) - t0
        proc.wait(timeout=120)
        return ready, time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()


def bench_qemu(rounds: int, program: Path) -> dict[str, dict[str, list[float]]]:
    stored = pipeline.build(make_image("exit3", {"program": str(program), "accel": "tcg"}))
    work = sockets.run_root() / f"bench-{os.getpid()}"
    sockets.private_dir(work)
    times: dict[str, dict[str, list[float]]] = {
        k: {"start": [], "boot_to_exit": []} for k in ("confined", "plain")}
    try:
        for i in range(rounds + 1):
            order = ("confined", "plain") if i % 2 == 0 else ("plain", "confined")
            for which in order:
                start, whole = one(stored, work, which == "confined")
                if i:  # round 0 warms caches
                    times[which]["start"].append(start)
                    times[which]["boot_to_exit"].append(whole)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return times


def build_once(tree: Path, program: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        h = Path(tmp) / "home"
        h.mkdir()
        (h / "kernels").symlink_to(home.home() / "kernels")
        (h / "cache").symlink_to(home.home() / "cache")
        out = subprocess.run([sys.executable, "-c", BUILD_SNIPPET, str(program)], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "ENGITOR_HOME": str(h), "PYTHONPATH": str(tree)})
        return float(out.stdout.strip().splitlines()[-1])


def bench_build(rounds: int, old_tree: Path, program: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(rounds + 1):
        for which in (("old", "new") if i % 2 == 0 else ("new", "old")):
            took = build_once(old_tree if which == "old" else ROOT, program)
            if i:
                times[which].append(took)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--old-tree", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "exit3"
        subprocess.run(["cc", "-O2", "-o", str(program), str(ROOT / "tests/programs/exit3.c")],
                       check=True)
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} {cpu()}, {os.cpu_count()} cores, "
              f"uid {os.geteuid()}, rounds {args.rounds}")
        result: dict[str, object] = {"qemu": bench_qemu(args.rounds, program)}
        for which, parts in result["qemu"].items():  # type: ignore[attr-defined]
            for part, samples in parts.items():
                print(f"{which:9} {part:13} {summary(samples)}")
        if args.old_tree:
            builds = bench_build(args.rounds, args.old_tree, program)
            result["build"] = builds
            for which, samples in builds.items():
                print(f"build {which:4} {summary(samples)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

