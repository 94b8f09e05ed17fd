"""The C bridge's cache: a parsed header set, keyed by what can change its meaning.

Key: the request (headers, include dirs, defines, flags), the compiler's identity (resolved path,
size, mtime) and this format's version. The entry records every file the preprocessor read with
a digest of its contents; an entry is used only while all of them still hash the same and no
requested header would now be found earlier in the search path. Like git's index, a file whose
stat (mtime, size) is what it was when hashed, and was not modified just before the entry was
written, is not hashed again. A warm include is a few small reads and stats: no compiler, no
parser.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from engitor.home import atomic_write, subdir

FORMAT = 11
_RACY_NS = 2_000_000_000


def root() -> Path:
    path = subdir("cache") / "ffi"
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.blake2b(f.read(), digest_size=16).hexdigest()
    except OSError:
        return None


def key(parts: dict) -> str:
    blob = json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def load_toolchain(identity: str) -> dict | None:
    path = root() / f"cc-{key({'cc': identity})}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store_toolchain(identity: str, data: dict) -> None:
    atomic_write(root() / f"cc-{key({'cc': identity})}.json", json.dumps(data))


def valid(k: str) -> list[str] | None:
    """The files entry `k` was made from, if it exists and none of them changed; else None."""
    try:
        manifest = json.loads((root() / f"{k}.deps").read_text())
    except (OSError, ValueError):
        return None
    racy = manifest.get("written", 0) - _RACY_NS
    for dep, want, mtime, size in manifest.get("deps", ()):
        try:
            st = os.stat(dep)
        except OSError:
            return None
        # unchanged stat proves unchanged contents, unless the file was modified so close to
        # when the entry was written that a later edit could keep both (git's "racy clean")
        if st.st_mtime_ns == mtime and st.st_size == size and mtime < racy:
            continue
        if digest(dep) != want:
            return None
    for found, earlier in manifest.get("shadows", ()):
        # a requested header that would now be found in an earlier directory
        if any(os.path.exists(os.path.join(d, found)) for d in earlier):
            return None
    return [d for d, *_ in manifest.get("deps", ())] + [
        os.path.join(d, found) for found, earlier in manifest.get("shadows", ()) for d in earlier]


def signature(paths: list[str]) -> tuple[tuple[int, int, int] | None, ...]:
    """What stat says about files (missing ones included): a change of contents changes it."""
    out: list[tuple[int, int, int] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def read(k: str, kind: str) -> str:
    return (root() / f"{k}.{kind}").read_text()


def store(k: str, deps: list[str], shadows: list[tuple[str, list[str]]],
          files: dict[str, str]) -> None:
    """Write the entry's files, then its manifest: no manifest, no entry."""
    for kind, text in files.items():
        atomic_write(root() / f"{k}.{kind}", text)
    entries = []
    for d in deps:
        st = os.stat(d)
        entries.append([d, digest(d), st.st_mtime_ns, st.st_size])
    manifest = {"deps": entries, "shadows": shadows, "written": time.time_ns()}
    atomic_write(root() / f"{k}.deps", json.dumps(manifest))
