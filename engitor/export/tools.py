"""The host programs the exporters run, and the one way they run them.

Each tool is named with the Debian package that provides it, so a missing one is one line with
the apt-get command, before anything is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from engitor.errors import UserError

PACKAGES = {
    "objcopy": "binutils", "sgdisk": "gdisk", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
    "mmd": "mtools", "syslinux": "syslinux", "qemu-img": "qemu-utils", "sbsign": "sbsigntool", "faketime": "faketime",
    "virt-fw-vars": "virt-firmware (pip install virt-firmware)",
}
# Files from Debian packages, with the package that ships each.
STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
GPTMBR = Path("/usr/lib/syslinux/mbr/gptmbr.bin")
FILES = {STUB: "systemd-boot-efi", GPTMBR: "syslinux-common"}


def need(*tools: str) -> None:
    """Refuse early, naming the package, when a tool or file is missing."""
    for tool in tools:
        if not shutil.which(tool):
            package = PACKAGES.get(tool, tool)
            hint = (package if package.startswith("virt-firmware")
                    else f"apt-get install {package}")
            raise UserError(f"{tool} is not installed; exporting needs it", hint=hint)


def need_file(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path} is missing; exporting needs it",
                        hint=f"apt-get install {FILES.get(path, 'the package that ships it')}")
    return path


def run(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a tool to completion; a failure is one error naming it with its stderr's tail."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**os.environ, **(env or {})}, check=False)
    except FileNotFoundError:
        need(args[0])
        raise
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise UserError(f"{Path(args[0]).name} failed (exit {proc.returncode}): {tail}",
                        hint=f"command: {' '.join(args)}")
    return proc.stdout
