"""Where VMs' unix sockets live: a short, private run directory, not the home.

A unix socket path holds at most 107 bytes, so sockets under an ENGITOR_HOME of any length
would break every run; they go under $XDG_RUNTIME_DIR/engitor, else /run/engitor-UID, else
/tmp/engitor-UID, one folder a VM named by a hash of its instance folder. The run directory is
created 0700 and must be ours and private: in /tmp another user could have made it first to
read or replace our sockets, so anything else is refused. Sockets are bound by engitor itself
under umask 077 (0600 whatever the caller's umask) and handed to QEMU as open descriptors.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from engitor import home

SOCKET_MODE = 0o600


def candidates() -> list[Path]:
    uid = os.geteuid()
    out = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_absolute() and Path(xdg).is_dir():
        out.append(Path(xdg) / "engitor")
    if os.access("/run", os.W_OK):
        out.append(Path(f"/run/engitor-{uid}"))
    out.append(Path(f"/tmp/engitor-{uid}"))
    return out


def private_dir(path: Path) -> Path:
    """`path` created 0700, or checked to be a real directory of ours that only we can use."""
    return home.private_dir(path, what="run directory",
                            not_dir_hint="remove it; engitor makes its own",
                            others_hint="another user made it first; remove it, or set "
                                        "XDG_RUNTIME_DIR to a private directory")


def run_root() -> Path:
    for path in candidates()[:-1]:
        with contextlib.suppress(PermissionError):
            return private_dir(path)
    return private_dir(candidates()[-1])


def vm_dir(instance_dir: Path) -> Path:
    """The socket folder of the instance in `instance_dir` (short whatever the home's length)."""
    key = hashlib.sha256(str(instance_dir.absolute()).encode()).hexdigest()[:16]
    return run_root() / key


def remove_vm_dir(instance_dir: Path) -> None:
    shutil.rmtree(vm_dir(instance_dir), ignore_errors=True)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def listen(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0600, in a private folder."""
    private_dir(path.parent)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with umask(0o077):  # bind() creates the file with the process umask applied
            sock.bind(str(path))
        os.chmod(path, SOCKET_MODE)
        sock.listen(4)
    except BaseException:
        sock.close()
        raise
    return sock
