"""What `engitor prune` may remove, and removing it.

Kept, always: the images running VMs were booted from (the caller says which), and what a
build is using (prune runs under the store's exclusive lock, so no build runs meanwhile).
Kept unless `all_`: images a name points to; images a name pointed to within `keep` seconds
(its log, as git keeps reflog entries before gc expires them: rollback needs them); kernels
those images use or the kernel names pin; unpacked packages and merged roots the runtimes'
last resolutions use; saved VMs of snapshot starts restored within `keep`. Always collected:
downloaded .debs (their unpacked trees stay), dead staging folders, and the input-key records
of removed images.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engitor import home, reflog, store

DEFAULT_KEEP = 14 * 86400  # seconds a replaced build stays reachable from its name's log


@dataclass
class Plan:
    images: list[store.StoredImage] = field(default_factory=list)
    paths: list[tuple[str, Path]] = field(default_factory=list)  # (what, path) of caches
    untag: list[str] = field(default_factory=list)  # names whose image goes (all_ only)
    bytes: int = 0


def _entries(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return []


def freed_bytes(paths: list[Path]) -> int:
    """Bytes the file system gets back: a file counts once its last hard link is among them
    (an image's kernel is a link into the kernel cache)."""
    seen: dict[tuple[int, int], list[int]] = {}
    for top in paths:
        walk = [top] if not top.is_dir() or top.is_symlink() else [
            Path(d) / f for d, _, fs in os.walk(top) for f in fs]
        for p in walk:
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            entry = seen.setdefault((st.st_dev, st.st_ino), [st.st_nlink, st.st_size, 0])
            entry[2] += 1
    return sum(size for nlink, size, count in seen.values() if count >= nlink)


def _shared(cache: str) -> bool:
    """A cache folder that is a link into another home is that home's to prune."""
    return (home.home() / cache).is_symlink()


STALE_STAGING = 86400  # a staging folder with no pid in its name is dead after a day


def staging_dead(path: Path, now: float) -> bool:
    """Whether the build that made a staging folder has ended. The temporary folder is shared
    by every home on the machine, so the store lock says nothing about it: the folder's name
    carries its builder's pid (engitor-stage-PID-…); older names go by age."""
    parts = path.name.split("-")  # mkdtemp's random suffix has no "-": 4 parts carry a pid
    pid = int(parts[2]) if len(parts) >= 4 and parts[2].isdigit() else None
    if pid is not None:
        return not home.pid_alive(pid)
    try:
        return now - path.stat().st_mtime > STALE_STAGING
    except FileNotFoundError:
        return False


def staging_dirs() -> list[Path]:
    """Dead build staging folders: in the temporary folder, or under the home."""
    out = sorted(Path(tempfile.gettempdir()).glob("engitor-stage-*"))
    out += _entries(home.home() / "staging")
    out += sorted(home.home().glob("*/engitor-stage-*"))
    now = time.time()
    return [p for p in out if p.is_dir() and not p.is_symlink() and staging_dead(p, now)]


def _image_plan(plan: Plan, *, running: set[str], all_: bool, keep: float) -> set[str]:
    tags = store.tags()
    kept = set(running)
    if not all_:
        kept |= set(tags.values()) | reflog.referenced(time.time() - keep)
    every = store.all_images()
    plan.images = sorted((i for i in every if i.id not in kept), key=lambda i: i.id)
    gone = {i.id for i in plan.images}
    plan.untag = sorted(n for n, iid in tags.items() if iid in gone)
    return {i.id for i in every} - gone


def _kernel_plan(plan: Plan, kept_images: set[str], all_: bool) -> None:
    from engitor.image import kernel

    if _shared("kernels"):
        return
    used = set()
    for iid in kept_images:
        image = store.get(iid)
        if image:
            used.add(image.manifest.get("kernel", {}).get("sha256"))
    if not all_:
        try:
            pins = json.loads(kernel.names_file().read_text())
        except (OSError, ValueError):
            pins = {}
        pinned = set(pins.values()) if isinstance(pins, dict) else set()
    else:
        pinned = set()
    for k in kernel.cached():
        if k.sha256 not in used and k.root.name not in pinned:
            plan.paths.append(("kernel", k.root))


def _package_plan(plan: Plan, all_: bool) -> None:
    packages = home.home() / "packages"
    if _shared("packages") or _shared("debs"):
        return
    wanted: set[str] = set()
    if not all_:
        for res in _entries(packages / "resolved"):
            try:
                data = json.loads(res.read_text())
            except (OSError, ValueError):
                continue
            for p in data.get("packages", []):
                ident = f"{p['package']}_{p['version'].replace(':', '%3a')}_{p['arch']}"
                wanted.add(ident + ("+host" if p.get("source") == "host" else ""))
    for entry in _entries(packages / "unpacked"):
        if entry.name not in wanted:
            plan.paths.append(("package", entry))
    for entry in _entries(packages / "roots"):
        try:
            used = json.loads((entry / "root.json").read_text()).get("packages", [])
        except (OSError, ValueError):
            used = []
        if all_ or not used or not all(u in wanted or u + "+host" in wanted for u in used):
            plan.paths.append(("runtime root", entry))
    for deb in sorted((home.home() / "debs").glob("*.deb")):
        plan.paths.append((".deb", deb))


def _snapshot_plan(plan: Plan, kept_images: set[str], all_: bool, keep: float) -> None:
    """Saved VMs of snapshot starts (made again when missing) of the images that stay: every
    one with `all_`, else those no run restored within `keep` (a restore reads the file, and
    the access time is kept to the day at least)."""
    cutoff = time.time() - keep
    for iid in sorted(kept_images):
        image = store.get(iid)
        for save in sorted(image.snapshots.glob("*.vmstate")) if image else ():
            with contextlib.suppress(FileNotFoundError):
                st = save.stat()
                if all_ or max(st.st_atime, st.st_mtime) < cutoff:
                    plan.paths.append(("snapshot", save))


def make_plan(*, running: set[str], all_: bool = False, keep: float = DEFAULT_KEEP) -> Plan:
    plan = Plan()
    kept = _image_plan(plan, running=running, all_=all_, keep=keep)
    _kernel_plan(plan, kept, all_)
    _snapshot_plan(plan, kept, all_, keep)
    _package_plan(plan, all_)
    plan.paths += [("staging", p) for p in staging_dirs()]
    plan.bytes = freed_bytes([i.path for i in plan.images] + [p for _, p in plan.paths])
    return plan


def execute(plan: Plan) -> None:
    """Remove what the plan names; the caller holds the store's exclusive lock."""
    gone = {i.id for i in plan.images}
    for name in plan.untag:
        store.untag(name, why="prune")
    for image in plan.images:
        shutil.rmtree(image.path, ignore_errors=True)
    for _, path in plan.paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for pointer in _entries(home.home() / "keys"):
        target = _pointer_target(pointer)
        if target in gone:
            pointer.unlink(missing_ok=True)


def _pointer_target(pointer: Path) -> str | None:
    """The image an input-key pointer or an unchanged-rebuild record names."""
    try:
        text = pointer.read_text().strip()
    except OSError:
        return None
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("image"))
        except ValueError:
            return None
    return text
