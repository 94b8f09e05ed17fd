"""Unchanged rebuilds without reading anything: what the last build read, and its stat.

After a build, every host path it read is recorded with its stat — files, and the directories
whose listing decided something (library folders searched, `dirs` walked, folders globbed) —
under a key of the declared image and of the builder itself. A rebuild of the same declaration
first stats those paths; if none changed, it is the same image, found without parsing an ELF
header, hashing a file or writing anything (make's mtime check; ccache's direct mode).

Any doubt sends the build down the full path, which hashes contents: images with hooks (they
may do anything), a path that changed or vanished, a record written while an input was
changing (its mtime too close to the record's: the racy case git also guards against).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from functools import cache
from pathlib import Path

from engitor import __version__, home, store
from engitor.recipe.model import Image

# Inputs modified this recently when the record is made may still change within one mtime
# tick; such a record is not written, so the next build hashes contents again.
RACY_SECONDS = 2.0
BUILDER_SOURCES = ("image/*.py", "guest/*.[ch]", "data/headers/*.h", "packages/*.py", "paths.py",
                   "recipe/model.py", "recipe/settings.py", "recipe/volumes.py")
# Settings only the runner reads: a run on another port is the same image.
RUN_ONLY = frozenset({"ports", "cpus", "accel", "boot_timeout", "start"})


@cache
def builder_identity() -> str:
    """A digest of the code that turns a declaration into an image."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for pattern in BUILDER_SOURCES:
        for path in sorted(root.glob(pattern)):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def declaration_key(image: Image) -> str | None:
    """The key of a declared image, or None when its build cannot be predicted (hooks)."""
    if image.hooks:
        return None
    declared = {f.name: repr(getattr(image, f.name)) for f in dataclasses.fields(image)
                if f.compare and f.name not in RUN_ONLY}
    text = json.dumps([builder_identity(), declared, os.environ.get("SOURCE_DATE_EPOCH")],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]


def _record_path(key: str) -> str:
    return f"direct-{key}"


def lookup(key: str) -> store.StoredImage | None:
    try:
        record = json.loads((home.subdir("keys") / _record_path(key)).read_text())
    except (OSError, ValueError):
        return None
    for path, seen in record.get("inputs", {}).items():
        if fingerprint(path) != seen:
            return None
    return store.get(record.get("image", ""))


def remember(key: str, image: store.StoredImage, inputs: dict[str, list[int] | None]) -> None:
    """Record what the build read (fingerprints taken before reading), unless racy."""
    now_ns = time.time_ns()
    if any(fp and now_ns - fp[1] < RACY_SECONDS * 1e9 for fp in inputs.values()):
        return
    text = json.dumps({"image": image.id, "inputs": inputs}, sort_keys=True)
    path = home.subdir("keys") / _record_path(key)
    try:
        if path.read_text() == text:
            return  # an unchanged rebuild writes nothing
    except OSError:
        pass
    home.atomic_write(path, text)
