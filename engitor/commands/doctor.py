"""engitor doctor: is this host ready? Says what is missing and the exact command to fix it."""

from __future__ import annotations

import argparse
import shutil

from engitor.image import cc, hosttools, kernel
from engitor.proc import run
from engitor.recipe.model import Accel
from engitor.vm import accel, host, qemu


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check QEMU, acceleration, kernel cache and compiler")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    problems: list[str] = []

    def report(ok: bool, what: str, detail: str, fix: str | None = None) -> None:
        print(f"{'ok ' if ok else 'MISSING'} {what:<10} {detail}")
        if not ok and fix:
            problems.append(fix)

    qemu_bin = shutil.which(qemu.QEMU)
    if qemu_bin:
        version = (run([qemu_bin, "--version"]).stdout.splitlines() or ["(no version)"])[0]
        report(True, "qemu", version)
    else:
        report(False, "qemu", f"{qemu.QEMU} not found",
               "apt-get install qemu-system-x86")
    compilers = cc.compilers()
    if compilers:
        report(True, "compiler", f"{compilers[0].argv[0]} ({compilers[0].identity})")
    else:
        report(False, "compiler", "no C compiler for the guest init",
               "apt-get install musl-tools linux-libc-dev")
    for tool, package in (("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        found = shutil.which(tool)
        report(bool(found), tool, found or "not found", f"apt-get install {package}")
    kernels = kernel.cached()
    if kernels:
        report(True, "kernel", ", ".join(k.describe() for k in kernels))
    else:
        report(False, "kernel", "no kernel cached", "engitor kernel fetch")
    if qemu_bin and kernels and compilers:
        choice = accel.choose(Accel.AUTO, kernels[-1].vmlinuz, hosttools)
        report(True, "accel", choice.line())
    else:
        report(True, "accel", "unknown until qemu, a kernel and a compiler are present")
    khz = host.tsc_khz(hosttools) if compilers else None
    report(True, "tsc", f"{khz} kHz (passed to TCG guests as tsc_early_khz)" if khz
           else "not constant; guests calibrate it themselves")
    if problems:
        print("\nto fix:")
        for fix in dict.fromkeys(problems):
            print(f"  {fix}")
        return 1
    return 0
