"""QEMU confined: a seccomp sandbox always, and never root.

QEMU parses what the guest sends it (virtio rings, slirp packets): a bug there must not hand
out the host. So every VM runs under
`-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny` (no
fork/exec, so QMP `migrate "exec:…"` runs nothing), and when engitor runs as root QEMU runs as
the system user `engitor-vm` (ENGITOR_VM_USER names another).

Why engitor drops the privileges and not QEMU's own `-runas`: with elevateprivileges=deny,
QEMU's seccomp filter is in place before `-runas` calls setuid(), and QEMU 7.2 dies of SIGSYS
(measured here). libvirt does the same: change user in the child before exec. A second gain:
the parent-death signal is set after the change of user, so a foreground VM still dies with its
engitor (the kernel clears it on any uid change).

QEMU then opens nothing in the (0700) home by path: engitor opens the kernel, initrd and
console and binds the QMP socket, and QEMU gets them as inherited descriptors
(`/proc/self/fd/N` for the loaders, an fd set for the console, `fd=` for the socket).

The user is created the way Debian's maintainer scripts create daemon users:
`adduser --system --group --home /nonexistent --no-create-home`: a system uid, its own group,
no shell, no home; never `nobody`, which other daemons share (Debian policy 9.2.1). Its only
supplementary group is `kvm` (as Debian's libvirt-qemu user has), so KVM keeps working.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from engitor.errors import UserError
from engitor.proc import run
from engitor.vm import qemu, sockets

DEFAULT_USER = "engitor-vm"
PR_SET_PDEATHSIG = 1
PR_SET_THP_DISABLE = 41


@dataclass(frozen=True)
class Credentials:
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()  # supplementary: only kvm, to open /dev/kvm (root:kvm 0660)


def user_name() -> str:
    return os.environ.get("ENGITOR_VM_USER") or DEFAULT_USER


def vm_credentials() -> Credentials | None:
    """Whom QEMU runs as: None (unchanged) unless engitor is root."""
    if os.geteuid() != 0:
        return None
    name = user_name()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_user(name)
    if entry.pw_uid == 0:
        raise UserError(f"VM user {name} is root", hint="set ENGITOR_VM_USER to an unprivileged user")
    try:
        groups: tuple[int, ...] = (grp.getgrnam("kvm").gr_gid,)
    except KeyError:
        groups = ()
    return Credentials(name, entry.pw_uid, entry.pw_gid, groups)


def _create_user(name: str) -> pwd.struct_passwd:
    if name != DEFAULT_USER:
        raise UserError(f"VM user {name} (ENGITOR_VM_USER) does not exist",
                        hint=f"create it, or unset ENGITOR_VM_USER to use {DEFAULT_USER}")
    proc = run(["adduser", "--system", "--group", "--quiet", "--home", "/nonexistent",
                "--no-create-home", "--gecos", "engitor virtual machines", name],
               hint="apt-get install adduser")
    try:
        return pwd.getpwnam(name)  # also when a concurrent engitor created it first
    except KeyError:
        tail = (proc.stderr.strip().splitlines() or ["adduser failed"])[-1]
        raise UserError(f"cannot create the VM user {name}: {tail}",
                        hint="create it: adduser --system --group --no-create-home "
                             f"--home /nonexistent {name}") from None


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def child_setup(creds: Credentials | None, *, die_with_parent: bool,
                small_pages: bool = False) -> Callable[[], None]:
    """What runs in the forked child before exec: umask, user, then the parent-death signal
    (in that order: a uid change clears the parent-death signal).

    `small_pages` keeps QEMU off transparent huge pages (the setting survives exec). QEMU asks
    for them on guest RAM and the TCG translation cache, and a huge page is 2 MiB of host
    memory for any byte written into it: an idle small VM, restored from a snapshot, held
    74 MiB with them and 64 without (BENCHMARKS.md). Under KVM they spare the hardware's
    nested page walks and are worth their memory; under TCG every guest access goes through
    QEMU's software TLB anyway."""

    def setup() -> None:
        os.umask(0o077)
        if small_pages:
            _prctl(PR_SET_THP_DISABLE, 1)
        if creds is not None:
            os.setgroups(list(creds.groups))
            os.setgid(creds.gid)
            os.setuid(creds.uid)
        if die_with_parent:
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


@contextlib.contextmanager
def handoff(spec: qemu.VMSpec) -> Iterator[tuple[qemu.VMSpec, tuple[int, ...]]]:
    """`spec` rewritten to use descriptors engitor opened itself, and those descriptors (to
    pass to QEMU); they are closed in engitor when the block ends (QEMU keeps its copies)."""
    with contextlib.ExitStack() as stack:

        def opened(path: Path, flags: int, mode: int = 0o600) -> int:
            fd = os.open(path, flags | os.O_CLOEXEC, mode)
            stack.callback(os.close, fd)
            return fd

        kernel = opened(spec.kernel, os.O_RDONLY)
        initrd = opened(spec.initrd, os.O_RDONLY)
        console = opened(spec.console, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        fds = [kernel, initrd, console]
        qmp_fd = None
        if spec.qmp is not None:
            qmp_sock = stack.enter_context(sockets.listen(spec.qmp))
            qmp_fd = qmp_sock.fileno()
            fds.append(qmp_fd)
        # Volumes and the report channel the same way: QEMU, not root, could not open them.
        # Each disk twice: QEMU opens it read-write and, for its image lock, read-only, and an
        # fd set answers an open only with a descriptor of the same access mode.
        disks = tuple((opened(path, os.O_RDWR), opened(path, os.O_RDONLY))
                      for path, _ in spec.disks)
        channel = (opened(spec.channel, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                   if spec.channel is not None else None)
        fds += [fd for pair in disks for fd in pair]
        fds += [channel] if channel is not None else []
        yield replace(spec, kernel=Path(f"/proc/self/fd/{kernel}"),
                      initrd=Path(f"/proc/self/fd/{initrd}"), console_fd=console,
                      qmp_fd=qmp_fd, pidfile=None, disk_fds=disks,
                      channel_fd=channel), tuple(fds)
