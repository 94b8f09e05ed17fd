"""Names' logs and the store's locks.

Every move of a name (a build, `engitor tag`, `rollback`, `rmi`) appends one entry to
$ENGITOR_HOME/logs/NAME, as git's reflog does for a branch: when, the old id, the new id, why.
The file is JSON lines, rewritten whole through `home.atomic_write` under the names lock, so a
reader sees the log before or after a move, never half of one.

Two locks (flock, released by the kernel when a process dies, so none is ever stale):
  store.lock  builds hold it shared for their whole run; `prune` and `rmi` take it exclusive
              and refuse, rather than wait, while a build holds it (a build's staging folder
              and the image it is about to tag must not be collected under it).
  names.lock  exclusive around each tag write and its log entry; short, so waited for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError


@dataclass(frozen=True)
class Entry:
    time: float
    old: str | None
    new: str | None
    why: str

    def to_json(self) -> str:
        return json.dumps({"time": self.time, "old": self.old, "new": self.new, "why": self.why})


def _lock_file(name: str) -> int:
    path = home.home() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def building() -> contextlib.AbstractContextManager[None]:
    """Held (shared) by a build from its first step to its tag: many builds at once."""
    return home.locked(home.home() / "store.lock", shared=True)


@contextlib.contextmanager
def exclusive(verb: str) -> Iterator[None]:
    """The whole store for `verb` (prune, rmi); a running build makes it a one-line refusal."""
    fd = _lock_file("store.lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"cannot {verb} while a build is running (it holds the store lock)",
                            hint="try again when the build has finished") from None
        with names_locked():
            yield
    finally:
        os.close(fd)


_names_depth = 0  # flock is per open file: a second lock here by the holder would wait forever


@contextlib.contextmanager
def names_locked() -> Iterator[None]:
    global _names_depth
    if _names_depth:
        _names_depth += 1
        try:
            yield
        finally:
            _names_depth -= 1
        return
    with home.locked(home.home() / "names.lock"):
        _names_depth = 1
        try:
            yield
        finally:
            _names_depth = 0


def logs_dir() -> Path:
    return home.subdir("logs")


def read(name: str) -> list[Entry]:
    """The name's log, oldest first (lines that do not parse are skipped, not fatal)."""
    try:
        text = (logs_dir() / name).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            d = json.loads(line)
            out.append(Entry(float(d["time"]), d.get("old"), d.get("new"), str(d["why"])))
    return out


def append(name: str, entry: Entry) -> None:
    """Add one entry; the caller holds the names lock."""
    lines = [e.to_json() for e in read(name)] + [entry.to_json()]
    home.atomic_write(logs_dir() / name, "\n".join(lines) + "\n")


def record(name: str, old: str | None, new: str | None, why: str) -> None:
    append(name, Entry(time.time(), old, new, why))


def names() -> list[str]:
    return sorted(p.name for p in logs_dir().iterdir() if not p.name.startswith("."))


def referenced(since: float) -> set[str]:
    """Ids that some name pointed at after `since` (seconds since the epoch): the builds a
    `rollback` may still want. An entry is live until the move that replaced it is older."""
    out: set[str] = set()
    for name in names():
        entries = read(name)
        for i, e in enumerate(entries):
            replaced_at = entries[i + 1].time if i + 1 < len(entries) else time.time()
            if e.new and replaced_at >= since:
                out.add(e.new)
    return out
