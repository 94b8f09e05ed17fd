"""Export a stored image for other engines: `export(image, format, out)`.

The steps, each a module: guest.py (drivers, DHCP and consoles for PCI machines, as an initrd
overlay) -> uki.py (one EFI binary) -> secureboot.py (optional signing) -> disk.py (a GPT disk
UEFI and BIOS both boot) -> formats.py (qcow2, vhd, vmdk through qemu-img; GCE's tar.gz).
Whatever the format, one image exports to the same bytes every time. Nothing half-written is
left at `out`: everything is made in a temporary folder beside it and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engitor import cpio, store
from engitor.errors import UserError, did_you_mean
from engitor.export import disk, formats, guest, memory, secureboot, uki
from engitor.export.formats import Format
from engitor.export.secureboot import Signing

__all__ = ["Format", "Signing", "check_output", "export", "parse_format"]


def parse_format(name: str) -> Format:
    try:
        return Format(name.lower())
    except ValueError:
        raise UserError(f"unknown export format {name!r}",
                        hint=did_you_mean(name, Format.names())
                        or "formats: " + ", ".join(Format.names())) from None


def check_output(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"output {out} is a directory", hint="give a file path, e.g. -o disk.qcow2")
    if not out.parent.is_dir():
        raise UserError(f"output directory {out.parent} does not exist",
                        hint=f"create it first: mkdir -p {out.parent}")


@dataclass
class Progress:
    """One line per long step on stderr; `log` receives them."""

    log: Callable[[str], None]
    total: int
    done: int = 0

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.done += 1
        began = time.monotonic()
        self.log(f"[{self.done}/{self.total}] {what} ...")
        yield
        self.log(f"[{self.done}/{self.total}] {what}: {time.monotonic() - began:.1f} s")


def _steps(fmt: Format, signing: Signing | None) -> int:
    n = 1 + (signing is not None)  # UKI, signing
    if fmt.is_disk:
        n += 1 + (fmt is not Format.RAW)
    return n


def export(image: store.StoredImage, fmt: Format, out: Path, *, guest_memory: int | None = None,
           signing: Signing | None = None,
           log: Callable[[str], None] = lambda _: None) -> Path:
    """Write `image` as `fmt` to `out` (and, when signing, the OVMF vars beside it)."""
    check_output(out)
    manifest = image.manifest
    epoch = cpio.source_date_epoch()
    if signing:
        signing.check()
    progress = Progress(log, _steps(fmt, signing))
    with tempfile.TemporaryDirectory(prefix=".engitor-export-", dir=out.parent) as tmp:
        work = Path(tmp)
        initrd = work / "initrd"  # with the PCI and cloud drivers and DHCP (0.3 s)
        initrd.write_bytes(guest.initrd(image.initrd, manifest))
        if guest_memory is not None:
            memory.check(guest_memory, memory.need(
                kernel=image.kernel.stat().st_size, initrd=initrd.stat().st_size,
                initrd_unpacked=manifest.get("initrd", {}).get("uncompressed", 0)))
        cmdline = guest.cmdline(image.cmdline)
        efi = work / "uki.efi"
        with progress.step("building the UKI"):
            uki.build(kernel=image.kernel, initrd=initrd, cmdline=cmdline,
                      osrel=uki.os_release(manifest.get("name", "image"), image.id), out=efi)
        if signing:
            with progress.step("signing the UKI"):
                secureboot.sign(efi, signing, disk.fat_epoch(epoch))
                secureboot.enroll(signing, work / "vars.fd")
        result = _package(fmt, work, efi=efi, kernel=image.kernel, initrd=initrd,
                          cmdline=cmdline, image_id=image.id, epoch=epoch, progress=progress)
        if signing:
            os.replace(work / "vars.fd", secureboot.vars_path(out))
        os.replace(result, out)
    return out


def _package(fmt: Format, work: Path, *, efi: Path, kernel: Path, initrd: Path, cmdline: str,
             image_id: str, epoch: int, progress: Progress) -> Path:
    if fmt is Format.UKI:
        return efi
    raw = work / "disk.raw"
    with progress.step("building the GPT disk (ESP with the UKI and syslinux)"):
        disk.build(raw, uki=efi, kernel=kernel, initrd=initrd, cmdline=cmdline,
                   image_id=image_id, source_date_epoch=epoch)
    if fmt is Format.RAW:
        return raw
    packed = work / f"disk{fmt.suffix}"
    with progress.step(f"writing {fmt.value}"):
        if fmt is Format.GCE:
            formats.gce_tarball(raw, packed, mtime=epoch)
        else:
            formats.convert(raw, fmt, packed)
        # qemu-img draws an id at random (and VHD stamps the time): derived ones instead.
        if fmt is Format.VHD:
            formats.fix_vhd(packed, unique_id=disk.Identity.of(image_id).format_id, timestamp=epoch)
        elif fmt is Format.VMDK:
            formats.fix_vmdk(packed, cid=disk.Identity.of(image_id).format_id)
    return packed
