"""Snapshot starts: a VM restored where its init is about to start the program, not booted.

Under TCG most of a small VM's start is QEMU translating boot code that runs once (a profile:
~65 % of its CPU; BENCHMARKS.md). With `start = "snapshot"` the runner gives the guest a hold
port (a virtio-serial port whose host end is one of a socket pair engitor keeps) and
`engitor.hold` on the kernel command line. The init, before it mounts volumes and starts the
program, zeroes its free memory (so the save carries no stale pages), writes "hold" there and
waits (engitor/guest/hold.c). The first run saves the VM at that point — QEMU's migration into
a file handed over as a descriptor, the sandbox letting QEMU exec nothing — ends that QEMU and
goes on from the save, as every later run does: QEMU started with `-incoming` from that file.
The host then sends "go" with its wall clock and 32 fresh random bytes, and the guest sets its
clock and reseeds its kernel's RNG before anything random is drawn for the program. What the
kernel drew during the boot (its hash-table and TCP secrets) is the save's in every VM
restored from it, as with any cloned VM.

A save fits one set of QEMU arguments as the guest sees them: its name hashes those (host-side
paths, ports and descriptors left out), the kernel and initramfs files, and the QEMU binary.
Saves live beside the image in the store (snapshots/KEY.vmstate) and are removed with it. Disk
volumes: when the init holds, the guest kernel has probed each disk, its size and its first
blocks, and the VM may later be restored with another disk (another volume, or the same one
written since). Each disk's size is part of the key instead of its path, and the init drops
what the kernel cached of a disk before it mounts it (engitor/guest/volumes.c).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engitor import home, protocol
from engitor.vm import qemu
from engitor.vm.instance import Instance

FORMAT = 1  # bump when what a save holds changes meaning
HOLD_ARG = protocol.defines()["HOLD_ARG"]
RESUME_TIMEOUT = 30.0  # seconds from QEMU's start (or the save) to the guest's "resumed"
SAVE_TIMEOUT = 120.0
MIGRATE_FD = "engitor-snapshot"
MAX_BANDWIDTH = 1 << 36  # bytes/s: no throttle (QEMU's default is 128 MiB/s)


class Unfit(Exception):
    """QEMU could not resume the saved VM (a QEMU or host that changed under the same key)."""


@dataclass
class Hold:
    """The host end of a hold port, and the save it restores from or writes."""

    ours: socket.socket
    state: Path
    restoring: bool


def key(spec: qemu.VMSpec, binary: str) -> str:
    """What a save must match: QEMU's arguments minus what only the host sees (disks by their
    size, not their path), the files it loads (by size and time: they live in the
    content-addressed store) and the QEMU binary."""
    disks = tuple((Path(f"disk-{path.stat().st_size}"), serial) for path, serial in spec.disks)
    shape = replace(spec, console=Path("console"), ports=(), qmp=None, pidfile=None,
                    name="engitor", channel=Path("report") if spec.channel else None,
                    console_fd=None, qmp_fd=None, channel_fd=None, disks=disks, disk_fds=(),
                    hold_fd=0, incoming_fd=None)
    files = [(str(p), st.st_size, st.st_mtime_ns)
             for p in (spec.kernel, spec.initrd, Path(binary).resolve()) for st in [p.stat()]]
    material = json.dumps([FORMAT, qemu.argv(shape, "qemu"), files])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def state_path(saves: Path, spec: qemu.VMSpec, binary: str) -> Path:
    """Where the save for `spec` lives among an image's saves (StoredImage.snapshots)."""
    return saves / f"{key(spec, binary)}.vmstate"


def with_hold(spec: qemu.VMSpec) -> qemu.VMSpec:
    """`spec` asking the init to hold (the kernel argument; the port comes with `prepared`)."""
    return replace(spec, host_cmdline=(*spec.host_cmdline, HOLD_ARG))


@contextlib.contextmanager
def prepared(spec: qemu.VMSpec, state: Path) -> Iterator[tuple[qemu.VMSpec, Hold, tuple[int, ...]]]:
    """`spec` with the hold port and, when `state` exists, the save to restore; the Hold; and
    the descriptors QEMU inherits (closed in engitor when the block ends)."""
    ours, theirs = socket.socketpair()
    restoring = state.is_file()
    with contextlib.ExitStack() as stack:
        stack.callback(theirs.close)
        fds = [theirs.fileno()]
        incoming = None
        if restoring:
            incoming = os.open(state, os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, incoming)
            fds.append(incoming)
        try:
            yield (replace(spec, hold_fd=theirs.fileno(), incoming_fd=incoming),
                   Hold(ours, state, restoring), tuple(fds))
        except BaseException:
            ours.close()
            raise


def release(inst: Instance, hold: Hold, log: Callable[[str], None]) -> bool:
    """A restored VM: let it go on at once (Unfit when it does not resume); False. A booted
    one: wait until it holds and save it; True when saved (QEMU then quits: the run goes on
    from the save, as every later one does), else it goes on as booted; False."""
    began = time.monotonic()
    lines = _Lines(hold.ours)
    try:
        if hold.restoring:
            _go(hold.ours)
            if not lines.expect("resumed", inst, RESUME_TIMEOUT):
                raise Unfit(inst.qemu_error() or "the guest did not resume")
            log(f"restored the VM saved at the program's start ({time.monotonic() - began:.2f} s)")
            return False
        if not lines.expect("hold", inst, inst.meta.boot_timeout):
            return False  # the guest ended or never held: the console says why, as in any boot
        if _save(inst, hold.state, log):
            return True
        _go(hold.ours)
        lines.expect("resumed", inst, RESUME_TIMEOUT)
        return False
    finally:
        hold.ours.close()


def _go(sock: socket.socket) -> None:
    now = time.time_ns()
    sock.sendall(f"go {now // 10**9} {now % 10**9} {secrets.token_hex(32)}\n".encode())


class _Lines:
    """Lines the init writes on the hold port."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def expect(self, word: str, inst: Instance, timeout: float) -> bool:
        """Wait for the line `word`; False when QEMU ends, the port closes or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line, sep, rest = self.buffer.partition(b"\n")
            if sep:
                self.buffer = rest
                if line.decode(errors="replace") == word:
                    return True
                continue
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if readable:
                try:
                    chunk = self.sock.recv(4096)
                except ConnectionError:  # QEMU died with the port open
                    chunk = b""
                if not chunk:
                    return False
                self.buffer += chunk
            elif not inst.alive():
                return False
        return False


def _save(inst: Instance, state: Path, log: Callable[[str], None]) -> bool:
    """Migrate the held VM into `state`, then end this QEMU. The save is the state of every VM
    started from it; this one ran the boot, and its host memory holds every page the boot
    touched (the init zeroed the free ones just before: hold.c). A save that fails is said,
    and the VM goes on (False)."""
    began = time.monotonic()
    try:
        with inst.monitor() as mon, home.atomic_file(state, 0o600) as out:
            mon.cmd("migrate-set-parameters", **{"max-bandwidth": MAX_BANDWIDTH})
            mon.send_fd_scm(out.fileno())
            mon.cmd("getfd", fdname=MIGRATE_FD)
            mon.cmd("migrate", uri=f"fd:{MIGRATE_FD}")
            status = _migrated(mon)
            if status.get("status") != "completed":
                mon.cmd("cont")  # a failed migration may leave the VM paused
                raise OSError(status.get("error-desc") or f"migration {status.get('status')}")
    except Exception as err:  # QMP's and the file's errors alike: the run matters more
        log(f"could not save the VM for snapshot starts ({err}); this run goes on as booted")
        return False
    inst.kill()
    size = state.stat().st_size / 2**20
    log(f"saved the VM at the program's start ({size:.0f} MiB, "
        f"{time.monotonic() - began:.2f} s)")
    return True


def _migrated(mon: Any) -> dict[str, Any]:
    deadline = time.monotonic() + SAVE_TIMEOUT
    while True:
        status: dict[str, Any] = mon.cmd("query-migrate")
        if status.get("status") in ("completed", "failed", "cancelled") or \
                time.monotonic() > deadline:
            return status
        time.sleep(0.01)
