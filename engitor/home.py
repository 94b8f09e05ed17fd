"""Where engitor keeps its state: $ENGITOR_HOME, default ~/.engitor.

Layout (every writer goes through `atomic_dir`/`atomic_write` so a killed process leaves no
half-written entry):
  kernels/   unpacked kernel packages, by package, version and sha256
  debs/      downloaded .deb files (apt's archive cache for runtime packages)
  cache/     derived artifacts keyed by content hash (guest init binaries, C header indexes, ...)
  images/    content-addressed images;  tags/  names pointing at images
  run/       running and finished instances
  tmp/       build staging and other scratch folders (swept when their process is gone)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engitor.errors import UserError

HOME_MODE = 0o700  # the store, runs and caches are the user's alone (whatever the umask)
_checked: set[Path] = set()  # homes already made private by this process


def home() -> Path:
    env = os.environ.get("ENGITOR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".engitor"


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def ensure_home() -> Path:
    """The home, created 0700 if missing; refused when another user owns it (their store and
    VMs are not ours to write into, and they could swap what we read)."""
    path = home()
    if path in _checked:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    private_dir(path, what="engitor home", not_dir_hint="set ENGITOR_HOME to a directory",
                others_hint="set ENGITOR_HOME to a directory of your own")
    _checked.add(path)
    return path


def private_dir(path: Path, *, what: str, not_dir_hint: str, others_hint: str) -> Path:
    """`path` created 0700, or checked to be a real directory (not a link) of ours that only
    we can use; a mode widened by the umask or an older engitor is tightened before any use."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=HOME_MODE)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {path} is not a directory", hint=not_dir_hint)
    if st.st_uid != os.geteuid():
        raise UserError(f"{what} {path} belongs to {owner_name(st.st_uid)}, not to "
                        f"{owner_name(os.geteuid())}", hint=others_hint)
    if stat.S_IMODE(st.st_mode) != HOME_MODE:
        os.chmod(path, HOME_MODE)
    return path


def subdir(name: str) -> Path:
    path = ensure_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write a file so readers see the old content or the new, never a part."""
    with atomic_file(path, mode) as f:
        f.write(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file opened for writing beside `path`, renamed onto it when the block ends well and
    removed when it does not: for content written in pieces (atomic_write for one buffer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; rename it into place on success.

    If `final` appeared meanwhile (a concurrent writer of the same content-addressed entry),
    ours is discarded: both are the same by construction.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep(final.parent)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{os.getpid()}.",
                                suffix=".tmp"))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a flock on `path` (a folder, or a file made when missing) for the block, waiting
    for it. The kernel releases it when the process dies, so none is ever stale."""
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@contextlib.contextmanager
def scratch(kind: str) -> Iterator[Path]:
    """A private temporary folder under HOME/tmp (not /tmp: on the home's disk, counted in its
    space, never shared with other users), removed at the end. One left by a killed process is
    swept when the next one is made, once its pid is gone."""
    parent = subdir("tmp")
    sweep_scratch(parent)
    # engitor-KIND-PID-…: the name `engitor prune` also reads a staging folder's builder from.
    path = Path(tempfile.mkdtemp(dir=parent, prefix=f"engitor-{kind}-{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_scratch(parent: Path) -> list[Path]:
    """Remove scratch folders whose process is gone (a build killed by SIGKILL, say)."""
    removed = []
    for path in parent.glob("engitor-*-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def sweep(parent: Path) -> list[Path]:
    """Remove temporaries left in `parent` by writers that were killed (their pid is gone)."""
    removed = []
    for tmp in parent.glob(".*.tmp"):
        parts = tmp.name.split(".")
        pid = next((int(p) for p in reversed(parts[:-2]) if p.isdigit()), None)
        if pid is None or pid_alive(pid):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
