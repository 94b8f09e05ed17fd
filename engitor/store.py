"""Content-addressed images under $ENGITOR_HOME/images.

An image is a directory named by its id (sha256 of kernel, initrd and cmdline) holding
`kernel` (a hard link into the kernel cache), `initrd`, `cmdline` and `manifest.json`. Names
are tags (tags/NAME holds an id); input keys (keys/KEY holds an id) make an unchanged rebuild a
lookup that writes nothing. Every write is a rename into place: a killed build leaves no
half image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engitor import faults, home, paths, reflog
from engitor.errors import UserError, did_you_mean
from engitor.kernel_traits import KernelTraits

# 2: the manifest holds Debian packages, users and run settings (image/record.py); 3: #!
# scripts are told from ELF programs. An image stored with an older manifest is not reused by
# key, and gets the new manifest when rebuilt.
MANIFEST_FORMAT = 3


@dataclass(frozen=True)
class StoredImage:
    id: str
    path: Path

    @property
    def kernel(self) -> Path:
        return self.path / "kernel"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd"

    @property
    def vmlinux(self) -> Path | None:
        """The uncompressed kernel, kept when it boots through PVH (faster than the bzImage)."""
        path = self.path / "vmlinux"
        return path if path.is_file() else None

    @property
    def snapshots(self) -> Path:
        """Saved VMs of snapshot starts (vm/snapshot.py), one a set of run settings: caches,
        made again when missing."""
        return self.path / "snapshots"

    @property
    def kernel_traits(self) -> KernelTraits:
        return KernelTraits.from_json(self.manifest.get("kernel", {}).get("traits"))

    @property
    def cmdline(self) -> str:
        return (self.path / "cmdline").read_text().strip()

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def short(self) -> str:
        return self.id[:12]

    def size(self) -> int:
        return sum(p.stat().st_size for p in (self.kernel, self.initrd))


def images_dir() -> Path:
    return home.subdir("images")


def image_id(kernel_sha: str, initrd_sha: str, cmdline: str) -> str:
    return hashlib.sha256(f"{kernel_sha}\n{initrd_sha}\n{cmdline}\n".encode()).hexdigest()


def get(image_id: str) -> StoredImage | None:
    path = paths.in_store(images_dir(), image_id, "image")
    return StoredImage(image_id, path) if (path / "manifest.json").is_file() else None


def _link(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def put(*, kernel: Path, kernel_sha: str, initrd: bytes, cmdline: str,
        manifest: dict[str, Any], vmlinux: Path | None = None) -> tuple[StoredImage, bool]:
    """Store an image; returns it and whether it was new."""
    initrd_sha = hashlib.sha256(initrd).hexdigest()
    iid = image_id(kernel_sha, initrd_sha, cmdline)
    existing = get(iid)
    if existing and existing.manifest.get("format", 1) < manifest.get("format", 1):
        old = existing.manifest
        home.atomic_write(existing.path / "manifest.json", json.dumps(
            {**old, **manifest, "id": iid, "created": old.get("created"),
             "initrd": old.get("initrd")}, indent=2) + "\n")
    if existing:
        return existing, False
    final = images_dir() / iid
    # The kernel files are hard links (no space) unless on another file system; the initrd and
    # the manifest are written here.
    needed = len(initrd) + 2**20
    for part in (kernel, vmlinux):
        if part is not None and part.stat().st_dev != images_dir().stat().st_dev:
            needed += part.stat().st_size
    faults.check_space(images_dir(), needed, f"storing image {iid[:12]} in")
    with faults.writing(f"storing image {iid[:12]} in", images_dir(), needed), \
            home.atomic_dir(final) as tmp:
        _link(kernel, tmp / "kernel")
        if vmlinux is not None:
            _link(vmlinux, tmp / "vmlinux")
        (tmp / "initrd").write_bytes(initrd)
        (tmp / "cmdline").write_text(cmdline + "\n")
        manifest = {"id": iid, "created": time.time(), **manifest,
                    "initrd": {**manifest.get("initrd", {}), "sha256": initrd_sha,
                               "size": len(initrd)}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return StoredImage(iid, final), True


def _pointer(kind: str, key: str) -> Path:
    # Names come from users (`engitor images --rm NAME`): one plain name inside the folder.
    return paths.in_store(home.subdir(kind), key, "image" if kind == "tags" else kind)


def read_pointer(kind: str, key: str) -> str | None:
    try:
        return _pointer(kind, key).read_text().strip() or None
    except (FileNotFoundError, IsADirectoryError):
        return None


def write_pointer(kind: str, key: str, value: str) -> None:
    """Point kind/key at value, writing nothing when it already does."""
    if read_pointer(kind, key) != value:
        home.atomic_write(_pointer(kind, key), value + "\n")


def by_key(input_key: str) -> StoredImage | None:
    iid = read_pointer("keys", input_key)
    found = get(iid) if iid else None
    if found and found.manifest.get("format", 1) < MANIFEST_FORMAT:
        return None
    return found


def tag(name: str, image: StoredImage, why: str = "build") -> None:
    """Point `name` at `image`; a move is logged in the name's log (reflog.py)."""
    with reflog.names_locked():
        old = read_pointer("tags", name)
        if old != image.id:
            home.atomic_write(_pointer("tags", name), image.id + "\n")
            reflog.record(name, old, image.id, why)


def untag(name: str, why: str = "rmi") -> None:
    with reflog.names_locked():
        old = read_pointer("tags", name)
        if old is not None:
            _pointer("tags", name).unlink(missing_ok=True)
            reflog.record(name, old, None, why)


def tags() -> dict[str, str]:
    out = {}
    for p in sorted(home.subdir("tags").iterdir()):
        if not p.name.startswith("."):
            out[p.name] = p.read_text().strip()
    return out


def resolve(ref: str) -> StoredImage:
    """An image by tag, full id or unique id prefix."""
    iid = read_pointer("tags", ref)
    if iid and get(iid):
        return get(iid)  # type: ignore[return-value]
    hexa = bool(ref) and all(c in "0123456789abcdef" for c in ref)
    candidates = [p.name for p in images_dir().iterdir()
                  if hexa and p.name.startswith(ref) and not p.name.startswith(".")]
    if len(candidates) == 1 and len(ref) >= 4 and get(candidates[0]):
        return get(candidates[0])  # type: ignore[return-value]
    if len(candidates) > 1:
        raise UserError(f"image id prefix {ref!r} is ambiguous ({len(candidates)} images)",
                        hint="give more characters")
    if candidates:
        raise UserError(f"image id prefix {ref!r} is too short", hint="give at least 4 characters")
    raise UserError(f"no image named {ref!r}",
                    hint=did_you_mean(ref, tags()) or "see 'engitor images'")


def all_images() -> list[StoredImage]:
    """Every image, unordered, reading no manifest (prune walks a large store with it)."""
    return [StoredImage(p.name, p) for p in images_dir().iterdir()
            if not p.name.startswith(".") and (p / "manifest.json").is_file()]


def listing() -> list[tuple[list[str], StoredImage]]:
    names: dict[str, list[str]] = {}
    for name, iid in tags().items():
        names.setdefault(iid, []).append(name)
    out = []
    for p in images_dir().iterdir():
        img = get(p.name) if not p.name.startswith(".") else None
        if img:
            out.append((sorted(names.get(img.id, [])), img))
    out.sort(key=lambda item: -item[1].manifest.get("created", 0))
    return out


def remove(image: StoredImage) -> None:
    for name, iid in tags().items():
        if iid == image.id:
            untag(name)
    shutil.rmtree(image.path)
