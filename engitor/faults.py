"""A full disk, a quota or a refused write, told in one line: what, where, how much space.

Writers wrap their work in `writing(what, where, needed)`; tools that write (dpkg-deb, apt)
have their stderr read by `tool_errno`, so a full disk is one line, not a thousand lines of
tar; and the CLI turns any such OSError that escaped into the same one line (`explain`).
Nothing is retried: a second try on a full disk fails the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from engitor.errors import UserError

SPACE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
ACCESS = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
          errno.EROFS: "read-only file system"}
# How the tools (tar inside dpkg-deb, apt, cp) spell these errors on stderr.
TOOL_WORDS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
              "Read-only file system": errno.EROFS, "Permission denied": errno.EACCES}
HINT_SPACE = "free some space (engitor images --rm NAME drops images), or point ENGITOR_HOME " \
             "at a larger file system"


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def space(path: Path) -> tuple[int, int] | None:
    """(free, total) bytes for an unprivileged writer on the file system holding `path`."""
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            st = os.statvfs(candidate)
            return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return None


def free_bytes(path: Path) -> int | None:
    found = space(path)
    return found[0] if found else None


def explain(err: OSError, *, what: str = "writing", where: Path | None = None,
            needed: int | None = None) -> UserError | None:
    """`err` as one line for people, or None when it is not a disk or permission fault."""
    if err.errno in SPACE:
        # The file system that filled is where we write (an error's filename may be a source).
        path = where or (Path(err.filename) if err.filename else None)
        place = f" {path}" if path else ""
        amounts = []
        if needed:
            amounts.append(f"needs {mib(needed)}")
        room = space(path) if path else None
        if room is not None:
            amounts.append(f"{mib(room[0])} free of {mib(room[1])}")
        detail = f" ({', '.join(amounts)})" if amounts else ""
        return UserError(f"{SPACE[err.errno]}: {what}{place}{detail}", hint=HINT_SPACE)
    if err.errno in ACCESS:
        path = Path(err.filename) if err.filename else where
        place = f" {path}" if path else ""
        return UserError(f"{ACCESS[err.errno]}: {what}{place}",
                         hint="check the owner and mode of that folder, or set ENGITOR_HOME")
    return None


def tool_errno(stderr: str) -> int | None:
    """The disk or permission fault a tool's stderr reports, if any."""
    for words, code in TOOL_WORDS.items():
        if words in stderr:
            return code
    return None


def tool_failure(stderr: str, *, what: str, where: Path, needed: int | None = None
                 ) -> UserError | None:
    code = tool_errno(stderr)
    if code is None:
        return None
    return explain(OSError(code, os.strerror(code)), what=what, where=where, needed=needed)


def check_space(where: Path, needed: int, what: str) -> None:
    """Refuse before writing `needed` bytes under `where` when they cannot fit."""
    free = free_bytes(where)
    if free is not None and free < needed:
        raise explain(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), what=what,
                      where=where, needed=needed) or UserError("no space left")


@contextlib.contextmanager
def writing(what: str, where: Path, needed: int | None = None) -> Iterator[None]:
    """Turn a disk or permission fault inside the block into one line naming `what`."""
    try:
        yield
    except OSError as err:
        told = explain(err, what=what, where=where, needed=needed)
        if told is None:
            raise
        raise told from None
