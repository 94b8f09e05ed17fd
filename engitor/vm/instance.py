"""A running (or finished) VM: its directory under run/, its QEMU process, its console, QMP.

Each instance owns run/NAME/ holding instance.json (what was started, by whom), console.log
(the serial console, written by QEMU itself so it survives engitor) and qemu.log; its QMP
socket lives in the short run directory (vm/sockets.py).
Foreground runs and shell-started VMs set QEMU's parent-death signal so they never outlive
their engitor process; detached ones (`run -d`) have no owner. `reap()` finds instances whose
owner is gone and cleans them up. Control goes over QMP: `pause`/`resume` (stop/cont),
`state()`, `stop()` (ACPI power button), `kill()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engitor import home, paths, protocol
from engitor.errors import UserError
from engitor.home import pid_alive
from engitor.proc import STDOUT, Popen, spawn
from engitor.recipe.model import Accel, Port
from engitor.vm import confine, qemu, ready, sockets

# qemu.qmp logs a refused connection (a VM that is going away) as an error; engitor reports
# what matters itself, and Python would print those records on stderr.
logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())

MARKER = protocol.MARKER
# Kernel lines that are part of every normal boot and power-off on microvm (it has no PCI bus
# at all); they would only confuse a program's output.
NOISE = ("PCI: Fatal: No config space access function found", "reboot: Power down",
         "ACPI: PM: Preparing to enter system sleep state S5")
ABANDONED_LAUNCH_SECONDS = 30  # a launch writes instance.json within milliseconds
QMP_TIMEOUT = 10.0  # seconds for one QMP command; a paused VM still answers at once


def run_dir() -> Path:
    return home.subdir("run")


@dataclass
class Status:
    """What the console says about the program's fate."""

    started: bool = False
    start_uptime: float | None = None
    stopping: bool = False
    code: int | None = None
    signal: int | None = None
    signame: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    panic: str | None = None
    daemon_left: int | None = None  # the program daemonized, leaving this many processes

    @property
    def finished(self) -> bool:
        return self.code is not None or self.signal is not None

    @property
    def graceful_stop(self) -> bool:
        """The program ended because of the stop request's SIGTERM: by the signal itself, or
        with 143 as the JVM and others exit then. A stop, not a crash."""
        term = signal.SIGTERM
        return self.stopping and (self.signal == term or self.code == 128 + term)

    def feed(self, line: str) -> bool:
        """Update from one console line; True when the line is ours (not the program's)."""
        if "Kernel panic - not syncing" in line:
            self.panic = line.strip()
        if "Initramfs unpacking failed" in line:
            # The kernel goes on without the files it could not write: say why the program
            # then fails (a missing library, say).
            self.errors.append("the guest's memory was too small to unpack its initramfs "
                               "(raise --memory)")
        at = line.find(MARKER)
        if at < 0:
            return any(n in line for n in NOISE)
        body = line[at + len(MARKER):].strip()
        kind, _, rest = body.partition(" ")
        fields = dict(re.findall(r"(\w+)=(\S+)", rest))
        if kind == "start":
            self.started = True
            with contextlib.suppress(ValueError, KeyError):
                self.start_uptime = float(fields["uptime"])
        elif kind == "exit":
            if "signal" in fields:
                self.signal, self.signame = int(fields["signal"]), fields.get("name")
            else:
                self.code = int(fields.get("code", "0"))
        elif kind == "stopping":
            self.stopping = True
        elif kind == "daemon":
            with contextlib.suppress(ValueError, KeyError):
                self.daemon_left = int(fields["left"])
        elif kind == "error":
            self.errors.append(rest)
        elif kind == "warning":
            self.warnings.append(rest)
        return True


class ProgramOutput:
    """The program's own lines among console lines tagged (line, ours): engitor's status lines
    and known noise go, and so does the blank line the init writes before each status line (so
    that it starts a fresh line even after unterminated output). Fed in pieces as the console
    grows; a blank line is held until the next line says whether it was the init's."""

    def __init__(self) -> None:
        self.blank = False

    def feed(self, lines: list[tuple[str, bool]], final: bool = False) -> list[str]:
        out = []
        for line, ours in lines:
            if ours:
                self.blank = False
                continue
            if self.blank:
                out.append("")
            self.blank = line == ""
            if not self.blank:
                out.append(line)
        if final and self.blank:
            out.append("")
            self.blank = False
        return out


def program_lines(lines: list[str]) -> list[str]:
    """A whole console's lines minus ours: what the program printed."""
    status = Status()
    return ProgramOutput().feed([(line, status.feed(line)) for line in lines], final=True)


class Console:
    """Incremental reader of a console file, line by line."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.lines: list[str] = []

    def read_new(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        *complete, self.partial = data.split(b"\n")
        new = [c.decode(errors="replace").rstrip("\r") for c in complete]
        self.lines += new
        return new

    def flush(self) -> list[str]:
        rest = self.read_new()
        if self.partial:
            last = self.partial.decode(errors="replace")
            self.partial = b""
            self.lines.append(last)
            rest.append(last)
        return rest


@dataclass
class Meta:
    name: str
    image: str
    image_name: str
    pid: int
    owner: int | None  # engitor process that must be alive for the VM to live; None: detached
    started: float
    accel: str
    ports: list[str]
    argv: list[str]
    stop_timeout: int = 10
    boot_timeout: int = 30
    # The owner's start time (clock ticks after boot): a pid reused by another process after
    # the owner died must not keep its VMs alive.
    owner_start: int | None = None
    volumes: list[str] = field(default_factory=list)  # "SOURCE=/host/file:/guest/path"
    restart: str = "no"  # run -d --restart policy (engitor/vm/supervisor.py)
    restarts: int = 0
    supervisor: int | None = None


class Instance:
    def __init__(self, directory: Path, meta: Meta, proc: Popen[bytes] | None = None):
        self.dir = directory
        self.meta = meta
        self.proc = proc
        self.console = Console(directory / "console.log")
        self.status = Status()
        self.reports = Console(directory / "report.log")
        self.listening = ready.Listening()

    # ---- paths and lookup -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def qmp_path(self) -> Path:
        return qmp_socket(self.dir)

    @staticmethod
    def load(name: str) -> Instance:
        directory = paths.in_store(run_dir(), name, "VM", "see 'engitor ps'")
        try:
            meta = Meta(**json.loads((directory / "instance.json").read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            raise UserError(f"no VM named {name!r}", hint="see 'engitor ps'") from None
        return Instance(directory, meta)

    @staticmethod
    def all() -> list[Instance]:
        out = []
        for d in sorted(run_dir().iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                with contextlib.suppress(UserError):
                    out.append(Instance.load(d.name))
        return out

    # ---- life -------------------------------------------------------------------------------
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_is_qemu(self.meta.pid)

    def poll_console(self, *, final: bool = False) -> list[tuple[str, bool]]:
        """New console lines, each with whether it is ours (a status line or known noise)."""
        for report in self.reports.read_new():
            self.listening.feed(report)
        new = self.console.flush() if final else self.console.read_new()
        return [(line, self.status.feed(line)) for line in new]

    @property
    def ports(self) -> list[Port]:
        # Imported here: the settings table costs `engitor ps` a tenth of its start-up.
        from engitor.recipe.settings import parse_ports

        out: list[Port] = []
        for spec in self.meta.ports:
            with contextlib.suppress(ValueError):
                out += parse_ports(spec)
        return out

    @property
    def ready(self) -> bool:
        """The program runs and listens on every forwarded TCP port (as the guest reports)."""
        return self.status.started and not self.status.finished and \
            ready.is_ready(self.listening, self.ports)

    def qmp(self, command: str, **arguments: Any) -> Any:
        with self.monitor() as mon:
            return mon.cmd(command, **arguments)

    @contextlib.contextmanager
    def monitor(self) -> Iterator[Any]:
        """A QMP connection for several commands (and descriptors sent along with them)."""
        # Imported here: it pulls in asyncio, which a plain `engitor run` never needs to pay.
        from qemu.qmp.legacy import QEMUMonitorProtocol

        mon = QEMUMonitorProtocol(str(self.qmp_path))
        mon.settimeout(QMP_TIMEOUT)
        try:
            mon.connect()
            yield mon
        finally:
            mon.close()

    def qemu_error(self) -> str:
        """QEMU's last words on stderr (qemu.log), minus its program-name prefix."""
        try:
            lines = (self.dir / "qemu.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        last = lines[-1].strip() if lines else ""
        return last.split(": ", 1)[1] if last.startswith("qemu-system") and ": " in last else last

    def owner_alive(self) -> bool:
        owner = self.meta.owner
        if owner is None:
            return True
        if not pid_alive(owner):
            return False
        return self.meta.owner_start is None or process_start(owner) == self.meta.owner_start

    def pause(self) -> None:
        """Freeze the vCPUs (QMP `stop`); the VM keeps its memory and devices."""
        self.qmp("stop")

    def resume(self) -> None:
        self.qmp("cont")

    def vm_status(self) -> str | None:
        """QEMU's run state ('running', 'paused', 'shutdown', …), None when it cannot be asked."""
        if not self.alive():
            return None
        try:
            return str(self.qmp("query-status")["status"])
        except Exception:
            return None

    def state(self) -> str:
        """One word for people: starting, ready, paused, stopping or exited. Ready means the
        program listens on every forwarded TCP port (with none forwarded: it was started)."""
        self.poll_console()
        if not self.alive():
            return "exited"
        if self.vm_status() == "paused":
            return "paused"
        if self.status.stopping or self.status.finished:
            return "stopping"
        return "ready" if self.ready else "starting"

    def exit_code(self) -> int | None:
        """The program's exit status as `engitor run` reports it (128+N for signal N), or None
        while it runs or when the console never said (the VM was killed). A graceful stop is
        0."""
        if self.status.graceful_stop:
            return 0
        if self.status.code is not None:
            return self.status.code
        if self.status.signal is not None:
            return 128 + self.status.signal
        return None

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.05)
        return not self.alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the program to stop (SIGTERM through the ACPI power button), then force."""
        grace = (self.meta.stop_timeout if timeout is None else timeout) + 3
        if self.alive():
            self.request_stop()
            if not self.wait_exit(grace):
                self.kill()

    def request_stop(self) -> None:
        """Press the ACPI power button (the init sends the program SIGTERM); returns at once."""
        with contextlib.suppress(Exception):
            self.qmp("system_powerdown")

    def kill(self) -> None:
        if not self.alive():
            return
        with contextlib.suppress(Exception):
            self.qmp("quit")
        if not self.wait_exit(2):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.meta.pid, signal.SIGKILL)
            self.wait_exit(2)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(UserError):
            sockets.remove_vm_dir(self.dir)


def qmp_socket(directory: Path) -> Path:
    """The QMP socket of the instance in `directory`: in the short run directory, not the home
    (vm/sockets.py)."""
    return sockets.vm_dir(directory) / "qmp.sock"


def process_start(pid: int) -> int | None:
    """When a process started (field 22 of /proc/PID/stat), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def pid_is_qemu(pid: int) -> bool:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return os.path.basename(exe).startswith("qemu-system")


def unique_name(base: str) -> str:
    reap()
    taken = {d.name for d in run_dir().iterdir()}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def check_ports_free(ports: tuple[Port, ...]) -> None:
    for port in ports:
        kind = socket.SOCK_STREAM if port.proto.value == "tcp" else socket.SOCK_DGRAM
        family = socket.AF_INET6 if ":" in port.bind else socket.AF_INET
        with socket.socket(family, kind) as s:
            if kind == socket.SOCK_STREAM:
                # As QEMU's forwarder binds: a port with connections in TIME_WAIT is free.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((port.bind.strip("[]"), port.host))
            except PermissionError:
                raise UserError(f"host port {port.host} needs privileges to bind",
                                hint=f"use a port above 1023: -p {port.host + 8000}:{port.guest}") from None
            except OSError:
                raise UserError(f"host port {port.host}/{port.proto.value} on {port.bind} is "
                                "already in use",
                                hint=f"pick another host port: -p OTHER:{port.guest}") from None


def start(spec: qemu.VMSpec, meta: Meta, directory: Path, *, detached: bool,
          keep_fds: tuple[int, ...] = ()) -> Instance:
    """Spawn QEMU for `spec` in `directory` (which holds the console and QMP socket);
    `keep_fds` are inherited by QEMU (the volume locks it holds for its life)."""
    binary = qemu.find_qemu()
    creds = confine.vm_credentials()
    # Owned VMs die with their owner (the parent-death signal): a crashed engitor never leaks
    # a VM. QEMU runs sandboxed, and not as root (vm/confine.py).
    setup = confine.child_setup(creds, die_with_parent=not detached,
                                small_pages=spec.accel is Accel.TCG)
    with confine.handoff(spec) as (given, fds), (directory / "qemu.log").open("wb") as log:
        proc = spawn(qemu.argv(given, binary), stdout=log, stderr=STDOUT, new_session=True,
                     pass_fds=(*fds, *keep_fds), preexec_fn=setup)
    meta.pid = proc.pid
    if meta.owner is not None and meta.owner_start is None:
        meta.owner_start = process_start(meta.owner)
    home.atomic_write(directory / "instance.json", json.dumps(asdict(meta), indent=2))
    return Instance(directory, meta, proc)


def reap() -> list[str]:
    """Clean up instances whose owner died (killing their QEMU if it outlived the owner);
    returns what was cleaned. An owned instance whose QEMU ended while its owner lives is the
    owner's to read (its exit code) and remove; detached ones stay until `engitor stop`."""
    cleaned = []
    for d in run_dir().iterdir():
        # A launch killed before it wrote instance.json (its QEMU, owned, died with it).
        if d.is_dir() and not (d / "instance.json").exists() and \
                time.time() - d.stat().st_mtime > ABANDONED_LAUNCH_SECONDS:
            shutil.rmtree(d, ignore_errors=True)
            cleaned.append(d.name)
    for inst in Instance.all():
        if inst.meta.owner is None or inst.owner_alive():
            continue
        if inst.alive():
            inst.kill()
        inst.remove()
        cleaned.append(inst.name)
    return cleaned


def row(inst: Instance) -> dict[str, Any]:
    """What `engitor ps` and the Lua `engitor.ps()` show of an instance."""
    state = inst.state()
    m = inst.meta
    return {"name": m.name, "image": m.image_name, "image_id": m.image[:12], "state": state,
            "code": inst.exit_code() if state == "exited" else None, "accel": m.accel,
            "ports": list(m.ports), "pid": m.pid, "owner": m.owner, "started": m.started,
            "restart": m.restart, "restarts": m.restarts}


def listing(*, show_all: bool = False) -> list[dict[str, Any]]:
    """The running instances (with `show_all`, also those that ended and were kept), after
    cleaning up those whose owner died."""
    reap()
    out = []
    for inst in Instance.all():
        r = row(inst)
        if r["state"] != "exited" or show_all:
            out.append(r)
    return out
