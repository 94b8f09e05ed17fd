"""Volumes as declared: `-v SOURCE:/guest/path` and `volumes = {["/guest/path"] = SOURCE}`.

A source is one of three kinds: `tmpfs` (a RAM file system, empty at every boot), a named
volume (`pgdata`: an ext4 disk image engitor keeps in its home) or a disk-image file
(`./disk.img`, anything with a slash or starting with a dot). The image stage and the runner
share `mounts()`: the order (parents before children) and each disk's serial number, by which
the guest init finds the virtio-blk device to mount where.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TMPFS = "tmpfs"


class Kind(enum.Enum):
    TMPFS = "tmpfs"
    NAMED = "named"
    FILE = "file"


@dataclass(frozen=True)
class Mount:
    guest: str  # absolute guest path
    source: str  # as written: "tmpfs", a volume name or a file path
    kind: Kind
    serial: str = ""  # disks only: the virtio-blk serial the guest init looks for


def kind_of(source: str) -> Kind:
    if source == TMPFS:
        return Kind.TMPFS
    if "/" in source or source.startswith((".", "~")):
        return Kind.FILE
    return Kind.NAMED


def guest_path_problem(path: str) -> str | None:
    """Why `path` cannot be a mount point in the guest, or None."""
    if not path.startswith("/"):
        return "the guest path must be absolute (e.g. /var/lib/data)"
    parts = PurePosixPath(path).parts
    if ".." in parts:
        return "the guest path cannot contain '..'"
    if len(parts) < 2:
        return "a volume cannot be mounted over the guest's root"
    if parts[1] in ("proc", "sys", "dev", ".engitor"):
        return f"/{parts[1]} belongs to the guest's kernel and init"
    return None


def source_problem(source: str) -> str | None:
    """Why `source` names no volume, or None."""
    if not source:
        return "the volume source is empty (a name, a ./file.img or tmpfs)"
    if kind_of(source) is Kind.NAMED and not NAME_RE.match(source):
        return (f"{source!r} is not a volume name (letters, digits, '_', '.', '-'; "
                "a file path needs a slash: ./disk.img)")
    return None


def parse_flag(text: str) -> tuple[str, str]:
    """`-v SOURCE:/guest/path` -> (guest path, source); ValueError says what is wrong."""
    source, sep, guest = text.rpartition(":")
    if not sep:
        raise ValueError("expected SOURCE:/guest/path (a name, a ./file.img or tmpfs)")
    problem = guest_path_problem(guest) or source_problem(source)
    if problem:
        raise ValueError(problem)
    return normalize(guest), source


def normalize(path: str) -> str:
    return str(PurePosixPath(path))


def mounts(volumes: Mapping[str, str]) -> list[Mount]:
    """Mount order (a parent before what is mounted inside it) with the disks' serials."""
    out = []
    disks = 0
    for guest in sorted(volumes, key=lambda p: PurePosixPath(p).parts):
        source = volumes[guest]
        kind = kind_of(source)
        serial = ""
        if kind is not Kind.TMPFS:
            serial = f"engitor-vol{disks}"
            disks += 1
        out.append(Mount(normalize(guest), source, kind, serial))
    return out
