"""The export formats and what each one is made of.

Every disk format is the same raw GPT disk (disk.py) rewritten by qemu-img, or packed as GCE
imports it; `uki` is the EFI binary alone.
"""

from __future__ import annotations

import enum
import gzip
import re
import struct
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


VHD_EPOCH = 946684800  # VHD times count seconds from 2000-01-01 UTC


def vhd_footer_fixed(footer: bytes, *, unique_id: bytes, timestamp: int) -> bytes:
    """qemu-img's VHD footer with its two varying fields set: the creation time (now, in
    qemu-img) and the unique id (random); the checksum recomputed (one's complement of the
    byte sum, checksum field taken as zero), as the VHD specification defines it."""
    if footer[:8] != b"conectix":
        raise ValueError("not a VHD footer")
    out = bytearray(footer)
    out[24:28] = max(timestamp - VHD_EPOCH, 0).to_bytes(4, "big")
    out[68:84] = unique_id[:16]
    out[64:68] = b"\0\0\0\0"
    out[64:68] = (~sum(out) & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(out)


def fix_vhd(path: Path, *, unique_id: bytes, timestamp: int) -> None:
    with path.open("r+b") as f:
        f.seek(-512, 2)
        footer = f.read(512)
        f.seek(-512, 2)
        f.write(vhd_footer_fixed(footer, unique_id=unique_id, timestamp=timestamp))


VMDK_CID = re.compile(rb"\nCID=[0-9a-f]{1,8}\n")


def fix_vmdk(path: Path, *, cid: bytes) -> None:
    """Set the descriptor's content id, which qemu-img draws at random (and prints without
    leading zeros), to `cid` (4 bytes). The descriptor is text in a fixed run of sectors named
    by the header, padded with NULs: it is rewritten in place, re-padded to the same size."""
    with path.open("r+b") as f:
        header = f.read(512)
        if header[:4] != b"KDMV":
            raise ValueError(f"{path}: not a VMDK sparse extent")
        offset, size = struct.unpack_from("<QQ", header, 28)
        f.seek(offset * 512)
        area = f.read(size * 512)
        text = area.rstrip(b"\0")
        fixed, n = VMDK_CID.subn(b"\nCID=" + cid[:4].hex().encode() + b"\n", text, count=1)
        if n != 1 or len(fixed) > len(area):
            raise ValueError(f"{path}: no CID in the VMDK descriptor")
        f.seek(offset * 512)
        f.write(fixed.ljust(len(area), b"\0"))


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
