"""What an image holds: its file index, executables, packages, users, run settings, sizes.

Images built since manifest format 2 carry the index in their manifest (path, mode, size,
sha256, and which files are executables); older ones are read from their zstd cpio once per
call (`from_initrd`), which costs a decompression.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from typing import Any

from engitor import cpio, store
from engitor.image import record

MiB = 2**20
SHELLS = ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/bin/dash", "/usr/bin/dash",
          "/bin/busybox", "/usr/bin/busybox")


@dataclass(frozen=True)
class File:
    path: str
    mode: int  # permission bits
    size: int
    sha256: str | None = None  # regular files
    symlink: str | None = None  # symlinks: the target
    kind: str = ""  # what put it there: program, libraries, package, files, init, modules, etc
    exec: str | None = None  # program | library (record.exec_kind)

    def same(self, other: File) -> bool:
        return (self.sha256, self.symlink, self.mode) == (other.sha256, other.symlink, other.mode)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "mode": f"{self.mode:o}", "size": self.size}
        for key in ("sha256", "symlink", "exec"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.kind:
            out["kind"] = self.kind
        return out


def from_manifest(entries: list[dict[str, Any]]) -> list[File]:
    out = []
    for f in entries:
        if "symlink" in f:
            out.append(File(f["path"], 0o777, len(f["symlink"]), symlink=f["symlink"]))
        else:
            out.append(File(f["path"], int(f["mode"], 8), int(f["size"]), f["sha256"],
                            kind=f.get("kind", ""), exec=f.get("exec")))
    return out


def from_initrd(image: store.StoredImage) -> list[File]:
    """The index of an image whose manifest has none: its initramfs, decompressed and parsed."""
    import zstandard

    raw = zstandard.ZstdDecompressor().decompressobj().decompress(image.initrd.read_bytes())
    out = []
    for path, mode, data in cpio.read_archive(raw):
        if stat.S_ISREG(mode):
            perm = stat.S_IMODE(mode)
            out.append(File(path, perm, len(data), hashlib.sha256(data).hexdigest(),
                            exec=record.exec_kind(data[:record.HEAD], perm, path)))
        elif stat.S_ISLNK(mode):
            out.append(File(path, 0o777, len(data), symlink=data.decode()))
    return out


def files(image: store.StoredImage, manifest: dict[str, Any] | None = None) -> list[File]:
    m = manifest if manifest is not None else image.manifest
    if m.get("format", 1) >= 2 and "files" in m:
        return from_manifest(m["files"])
    return from_initrd(image)


def memory_floor_estimate(kernel_size: int, initrd_size: int, uncompressed: int) -> int:
    """The least guest memory that boots the image, estimated from its sizes alone.

    The kernel's image unpacks to about four times vmlinuz (text, data, bss, early page
    tables); the compressed initramfs and the tmpfs it unpacks into are both in memory while
    init starts; 16 MiB covers the kernel's own allocations and the program's first pages.
    Rounded up to 16 MiB. Calibrated on this project's measurement: a 14 MB vmlinuz with a
    1 MB initramfs boots at 80 MB and not below (ARCHITECTURE.md), and this gives 80 MiB.
    """
    need = 4 * kernel_size + initrd_size + uncompressed + 16 * MiB
    return -(-need // (16 * MiB)) * 16 * MiB


def memory_floor(m: dict[str, Any]) -> tuple[int, str]:
    """(bytes, 'recorded' | 'estimated')."""
    recorded = m.get("memory_floor")
    if isinstance(recorded, int):
        return recorded, "recorded"
    initrd = m.get("initrd", {})
    return memory_floor_estimate(int(m.get("kernel", {}).get("size", 0)),
                                 int(initrd.get("size", 0)),
                                 int(initrd.get("uncompressed", 0))), "estimated"


def names_of(image: store.StoredImage) -> list[str]:
    return sorted(n for n, iid in store.tags().items() if iid == image.id)


def describe(image: store.StoredImage) -> dict[str, Any]:
    """Everything `engitor inspect` shows, as plain data."""
    m = image.manifest
    index = files(image, m)
    programs = [f.path for f in index if f.exec == "program"]
    floor, how = memory_floor(m)
    run = m.get("run", {})
    return {
        "id": image.id, "names": names_of(image), "created": m.get("created"),
        "program": m.get("program"), "argv": m.get("argv", []),
        "kernel": m.get("kernel", {}), "cmdline": image.cmdline,
        "memory_floor": floor, "memory_floor_source": how,
        "size": image.size(), "initrd": m.get("initrd", {}),
        "executables": programs, "libraries": sum(1 for f in index if f.exec == "library"),
        "scripts": [f.path for f in index if f.exec == "script"],
        "shell": [f.path for f in index if f.path in SHELLS],
        "packages": m.get("packages"), "users": m.get("users"),
        "ports": run.get("ports"), "volumes": run.get("volumes"), "memory": run.get("memory"),
        "files": [f.to_json() for f in index],
    }
