"""The export formats and what each one is made of.

Every disk format is the same raw GPT disk (disk.py) rewritten by qemu-img, or packed as GCE
imports it; `uki` is the EFI binary alone.
"""

from __future__ import annotations

import enum
import gzip
import tarfile
from pathlib import Path

from engitor.export import tools

MiB = 1024 * 1024


class Format(enum.Enum):
    UKI = "uki"
    RAW = "raw"
    QCOW2 = "qcow2"
    VHD = "vhd"
    VMDK = "vmdk"
    GCE = "gce"

    @property
    def is_disk(self) -> bool:
        return self is not Format.UKI

    @property
    def suffix(self) -> str:
        return {Format.UKI: ".efi", Format.GCE: ".tar.gz"}.get(self, f".{self.value}")

    def qemu_img_options(self) -> list[str] | None:
        """`qemu-img convert` output options, or None when the raw disk is not converted."""
        return {
            Format.QCOW2: ["-O", "qcow2"],
            # Azure takes fixed VHDs whose virtual size is a whole MiB; force_size keeps
            # qemu-img from rounding it to a CHS geometry.
            Format.VHD: ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
            Format.VMDK: ["-O", "vmdk", "-o", "subformat=streamOptimized"],
        }.get(self)

    @staticmethod
    def names() -> list[str]:
        return [f.value for f in Format]


def convert_argv(raw: Path, fmt: Format, out: Path) -> list[str]:
    options = fmt.qemu_img_options()
    assert options is not None, fmt
    return ["qemu-img", "convert", "-f", "raw", *options, str(raw), str(out)]


def convert(raw: Path, fmt: Format, out: Path) -> None:
    tools.need("qemu-img")
    tools.run(convert_argv(raw, fmt, out))


def gce_tarball(raw: Path, out: Path, mtime: int) -> None:
    """disk.raw in a gzipped tar, GNU oldgnu format as GCE's import requires; no owner names,
    fixed times, so the bytes repeat. (Sparse members would save space, but GCE reads only
    plain files.)"""
    info = tarfile.TarInfo("disk.raw")
    info.size = raw.stat().st_size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with out.open("wb") as f, \
            gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar, \
            raw.open("rb") as src:
        tar.addfile(info, src)
