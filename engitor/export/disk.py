"""A GPT disk that both UEFI and BIOS firmware boot: one FAT32 EFI system partition holding the
UKI as \\EFI\\BOOT\\BOOTX64.EFI (the removable-media path every UEFI firmware tries) and, for
BIOS, syslinux with the kernel and initrd; syslinux's gptmbr.bin in the first 440 bytes finds
the partition marked legacy-BIOS-bootable.

Nothing is mounted: mkfs.vfat and mtools write the file system inside a plain file, sgdisk the
partition table. Same image in, same bytes out: GUIDs and the volume serial come from the image
id, mkfs.vfat --invariant, every file time is SOURCE_DATE_EPOCH (in UTC).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engitor.export import tools

MiB = 1024 * 1024
SECTOR = 512
ESP_START = 1 * MiB  # the customary first partition offset (sector 2048)
GPT_BACKUP = 1 * MiB  # room for the backup GPT at the end, keeping the size a whole MiB
ESP_MIN = 64 * MiB  # FAT32 needs 65,525 clusters at least; 64 MiB leaves room for that
ESP_SLACK = 4 * MiB
FAT_EPOCH_MIN = 315532800 + 86400  # FAT dates start in 1980; a day on, no zone wraps before it
BIOS_BOOTABLE = 2  # GPT attribute bit 2: legacy BIOS bootable, what gptmbr.bin looks for
SYSLINUX_DIR = "/syslinux"


@dataclass(frozen=True)
class Identity:
    """Everything random-looking in the disk, derived from the image id."""

    disk_guid: str
    esp_guid: str
    volume_serial: str  # 8 hex digits, mkfs.vfat -i
    format_id: bytes  # the VHD footer's unique id, the VMDK descriptor's CID

    @staticmethod
    def of(image_id: str) -> Identity:
        def derived(what: str) -> bytes:
            return hashlib.sha256(f"engitor {what} {image_id}".encode()).digest()

        return Identity(str(uuid.UUID(bytes=derived("disk")[:16], version=4)),
                        str(uuid.UUID(bytes=derived("esp")[:16], version=4)),
                        derived("fat").hex()[:8].upper(), derived("vhd")[:16])


def fat_epoch(source_date_epoch: int) -> int:
    return max(source_date_epoch, FAT_EPOCH_MIN)


def esp_size(payload: int) -> int:
    """FAT32 partition size for `payload` bytes of files, a whole number of MiB."""
    need = payload + payload // 16 + ESP_SLACK  # FAT tables, directories, cluster rounding
    return max(ESP_MIN, -(-need // MiB) * MiB)


def syslinux_cfg(cmdline: str) -> str:
    return ("DEFAULT engitor\nPROMPT 0\nTIMEOUT 0\nLABEL engitor\n"
            f"  LINUX {SYSLINUX_DIR}/vmlinuz\n  INITRD {SYSLINUX_DIR}/initrd\n  APPEND {cmdline}\n")


def sgdisk_argv(disk: Path, ident: Identity, esp_bytes: int) -> list[str]:
    first = ESP_START // SECTOR
    last = first + esp_bytes // SECTOR - 1
    return ["sgdisk", "--clear", f"--disk-guid={ident.disk_guid}",
            f"--new=1:{first}:{last}", "--typecode=1:EF00", "--change-name=1:EFI System",
            f"--partition-guid=1:{ident.esp_guid}", f"--attributes=1:set:{BIOS_BOOTABLE}",
            str(disk)]


def _mtools_env(epoch: int) -> dict[str, str]:
    # MTOOLS_SKIP_CHECK: the image is a plain file with no partition geometry to verify.
    return {"SOURCE_DATE_EPOCH": str(epoch), "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"}


def make_esp(path: Path, files: dict[str, Path], ident: Identity, epoch: int,
             cmdline: str) -> None:
    """The FAT32 ESP in `path`: `files` maps FAT paths (/EFI/BOOT/BOOTX64.EFI) to host files."""
    payload = sum(p.stat().st_size for p in files.values())
    with path.open("wb") as f:
        f.truncate(esp_size(payload))
    tools.run(["mkfs.vfat", "-F", "32", "--invariant", "-i", ident.volume_serial, "-n", "ENGITOR",
               path], env=_mtools_env(epoch))
    env = _mtools_env(epoch)
    with tempfile.TemporaryDirectory(prefix="engitor-esp-") as tmp:
        cfg = Path(tmp) / "syslinux.cfg"
        cfg.write_text(syslinux_cfg(cmdline))
        all_files = {**files, f"{SYSLINUX_DIR}/syslinux.cfg": cfg}
        dirs = sorted({str(Path(p).parent) for p in all_files} - {"/"})
        tools.run(["mmd", "-i", path, *(f"::{d}" for d in _with_parents(dirs))], env=env)
        for i, (fat_path, host) in enumerate(sorted(all_files.items())):
            # A private copy stamped with the epoch (mcopy -m keeps the source's time): the
            # image store's files keep their own times.
            copy = Path(tmp) / f"{i}"
            shutil.copyfile(host, copy)
            os.utime(copy, (epoch, epoch))
            tools.run(["mcopy", "-m", "-i", path, copy, f"::{fat_path}"], env=env)
    tools.run(["syslinux", "--install", "--directory", SYSLINUX_DIR, path], env=env)


def _with_parents(dirs: list[str]) -> list[str]:
    out: list[str] = []
    for d in dirs:
        parts = Path(d).parts[1:]
        for i in range(1, len(parts) + 1):
            p = "/" + "/".join(parts[:i])
            if p not in out:
                out.append(p)
    return out


def make_disk(out: Path, *, esp: Path, ident: Identity) -> None:
    """The GPT disk in `out`: protective MBR with gptmbr.bin, the ESP at 1 MiB."""
    mbr = tools.need_file(tools.GPTMBR).read_bytes()[:440]
    esp_bytes = esp.stat().st_size
    with out.open("wb") as f:
        f.truncate(ESP_START + esp_bytes + GPT_BACKUP)
    tools.run(sgdisk_argv(out, ident, esp_bytes))
    with out.open("r+b") as f:
        f.write(mbr)
        _copy_sparse(esp, f, ESP_START)


def _copy_sparse(src: Path, dst: BinaryIO, offset: int, chunk: int = MiB) -> None:
    """Copy `src` into `dst` at `offset`, skipping all-zero chunks so the disk stays sparse."""
    zero = bytes(chunk)
    with src.open("rb") as f:
        at = offset
        while block := f.read(chunk):
            if block != zero[:len(block)]:
                dst.seek(at)
                dst.write(block)
            at += len(block)


def build(out: Path, *, uki: Path, kernel: Path, initrd: Path, cmdline: str, image_id: str,
          source_date_epoch: int) -> Path:
    tools.need("mkfs.vfat", "mmd", "mcopy", "syslinux", "sgdisk")
    ident = Identity.of(image_id)
    epoch = fat_epoch(source_date_epoch)
    with tempfile.TemporaryDirectory(prefix="engitor-disk-") as tmp:
        esp = Path(tmp) / "esp.img"
        files = {"/EFI/BOOT/BOOTX64.EFI": uki, f"{SYSLINUX_DIR}/vmlinuz": kernel,
                 f"{SYSLINUX_DIR}/initrd": initrd}
        make_esp(esp, files, ident, epoch, cmdline)
        make_disk(out, esp=esp, ident=ident)
    return out
