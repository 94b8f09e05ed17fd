"""QEMU command lines as data: `argv(spec)` is a pure function, unit-tested without QEMU.

The machine is QEMU's `microvm`: no PCI, no firmware tables beyond ACPI, virtio-mmio devices
(described to the guest through ACPI, so no virtio_mmio.device= on the cmdline). The console is
the ISA serial port written to a file, which outlives the engitor process that started the VM.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engitor import protocol
from engitor.errors import UserError
from engitor.recipe.model import DEFAULT_MEMORY, Accel, MiB, Port

QEMU = "qemu-system-x86_64"
# The rate of the local APIC timer QEMU emulates under TCG (hw/intc/apic.c counts in 1 ns bus
# cycles); the minimal kernel's own calibration measures 999.9 MHz (tests/test_kernel_boot.py).
TCG_APIC_TIMER_HZ = 1_000_000_000
# The CPU TCG emulates: every feature it has (RDRAND seeds the guest's RNG at once) but ERMS.
# With ERMS the guest's kernel copies and clears memory with `rep movsb`/`stosb`, and glibc its
# large copies, which TCG runs a byte an iteration; without it, `rep movsq` and vector loops, 8
# bytes and more. Measured (bench/bench_tcg_cpu.py, BENCHMARKS.md): Debian runtime images reach
# their program 17-36 % sooner (PHP 4.1 -> 2.6 s, Java 6.1 -> 4.2 s); a small program: no change.
TCG_CPU = "max,-erms"
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


@dataclass(frozen=True)
class VMSpec:
    kernel: Path
    initrd: Path
    cmdline: str
    console: Path  # file receiving the serial console
    memory: int = DEFAULT_MEMORY
    cpus: int = 1
    accel: Accel = Accel.TCG  # resolved: never AUTO here
    ports: tuple[Port, ...] = ()
    qmp: Path | None = None  # unix socket for QMP control
    pidfile: Path | None = None
    name: str = "engitor"
    host_cmdline: tuple[str, ...] = field(default=())  # host-specific, e.g. tsc_early_khz=
    sandbox: bool = True  # QEMU's seccomp filter (vm/confine.py says why)
    # Descriptors QEMU inherits instead of opening paths itself (vm/confine.py): the console
    # file (opened for writing) and the QMP socket (bound and listening).
    console_fd: int | None = None
    qmp_fd: int | None = None
    pic: bool = True  # the legacy 8259 PIC; a kernel routing interrupts through the IO-APIC needs none
    tb_size: int | None = None  # MiB of TCG translation cache (QEMU's default: up to 1 GiB)
    disks: tuple[tuple[Path, str], ...] = ()  # (raw ext4 image, serial the guest finds it by)
    channel: Path | None = None  # file receiving the init's reports (virtio-serial port)
    # The same, handed over as descriptors (vm/confine.py): a (read-write, read-only) pair per
    # disk, in order, and the channel's.
    disk_fds: tuple[tuple[int, int], ...] = ()
    channel_fd: int | None = None
    # A snapshot start (vm/snapshot.py): one end of a socket pair, the guest's hold port; and
    # the saved VM QEMU restores instead of booting, an open file.
    hold_fd: int | None = None
    incoming_fd: int | None = None


# The ports' names; the guest init finds its /dev/vportNpM through /sys/class/virtio-ports.
CHANNEL_NAME = protocol.defines()["REPORT_PORT"]
HOLD_NAME = protocol.defines()["HOLD_PORT"]
# QEMU fd sets (-add-fd): the console's is 1 (see console()), the channel's 2, disks' from 10.
CHANNEL_FDSET = 2
DISK_FDSET = 10


def _opt(value: object) -> str:
    """A value inside a QEMU option list, where a comma is written twice."""
    return str(value).replace(",", ",,")


def _fdset(fds: tuple[int, ...], fdset: int) -> tuple[list[str], str]:
    """QEMU arguments adding `fds` to fd set `fdset`, and the path QEMU then opens it by."""
    args = [a for fd in fds for a in ("-add-fd", f"fd={fd},set={fdset}")]
    return args, f"/dev/fdset/{fdset}"


def devices(spec: VMSpec) -> list[str]:
    """Disks (virtio-blk) and the init's report channel (virtio-serial, plain virtio-mmio on
    microvm: no PCI, works under TCG, and Debian's kernel has the driver as a module)."""
    args: list[str] = []
    for i, (path, serial) in enumerate(spec.disks):
        file = str(path)
        if i < len(spec.disk_fds):
            added, file = _fdset(spec.disk_fds[i], DISK_FDSET + i)
            args += added
        args += ["-drive", f"file={_opt(file)},format=raw,if=none,id=disk{i}",
                 "-device", f"virtio-blk-device,drive=disk{i},serial={serial}"]
    ports = bool(spec.channel) + (spec.hold_fd is not None)
    if ports:
        # As many ports as used (port 0 is kept for a console): the guest sets up queues for
        # every port the device offers, QEMU's default 31 cost 3.7 MiB of a 64 MiB guest.
        args += ["-device", f"virtio-serial-device,max_ports={ports + 1}"]
    if spec.channel:
        file = str(spec.channel)
        if spec.channel_fd is not None:
            added, file = _fdset((spec.channel_fd,), CHANNEL_FDSET)
            args += added
        args += ["-chardev", f"file,id=report0,path={_opt(file)}",
                 "-device", f"virtserialport,chardev=report0,name={CHANNEL_NAME}"]
    if spec.hold_fd is not None:
        # A connected socket: QEMU is the client of a pair whose other end engitor holds.
        args += ["-chardev", f"socket,id=hold0,fd={spec.hold_fd},server=off",
                 "-device", f"virtserialport,chardev=hold0,name={HOLD_NAME}"]
    return args


def hostfwd(port: Port) -> str:
    bind = port.bind.strip("[]")
    return f"hostfwd={port.proto.value}:{bind}:{port.host}-:{port.guest}"


def machine(accel: Accel, pic: bool = True, tb_size: int | None = None) -> list[str]:
    # pic=off: one device less to emulate and probe (measured faster, shared/KERNEL.md).
    options = "" if pic else ",pic=off"
    if accel is Accel.KVM:
        return ["-M", f"microvm,accel=kvm,rtc=on{options}", "-cpu", "host"]
    if tb_size:
        # The translation cache is most of an idle VM's host memory beside the guest's own.
        return ["-M", f"microvm,rtc=on{options}", "-accel", f"tcg,tb-size={tb_size}",
                "-cpu", TCG_CPU]
    return ["-M", f"microvm,accel=tcg,rtc=on{options}", "-cpu", TCG_CPU]


def argv(spec: VMSpec, qemu: str = QEMU) -> list[str]:
    cmdline = " ".join(filter(None, (spec.cmdline, *spec.host_cmdline)))
    netdev = ",".join(["user", "id=n0", *(hostfwd(p) for p in spec.ports)])
    args = [
        qemu,
        "-name", spec.name,
        *machine(spec.accel, spec.pic, spec.tb_size),
        "-m", f"{spec.memory // MiB}M",
        "-smp", str(spec.cpus),
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-kernel", str(spec.kernel),
        "-initrd", str(spec.initrd),
        "-append", cmdline,
        *console(spec),
        "-serial", "chardev:con0",
        "-netdev", netdev,
        "-device", "virtio-net-device,netdev=n0",
        "-object", "rng-random,id=rng0,filename=/dev/urandom",
        "-device", "virtio-rng-device,rng=rng0",
        *devices(spec),
    ]
    if spec.qmp_fd is not None:
        args += ["-chardev", f"socket,id=qmp0,fd={spec.qmp_fd},server=on,wait=off",
                 "-mon", "chardev=qmp0,mode=control"]
    elif spec.qmp:
        args += ["-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    if spec.pidfile:
        args += ["-pidfile", str(spec.pidfile)]
    if spec.incoming_fd is not None:
        args += ["-incoming", f"fd:{spec.incoming_fd}"]
    if spec.sandbox:
        args += ["-sandbox", SANDBOX]
    return args


def console(spec: VMSpec) -> list[str]:
    if spec.console_fd is None:
        return ["-chardev", f"file,id=con0,path={spec.console}"]
    # An fd set: QEMU's chardev opens /dev/fdset/N by duplicating the descriptor given.
    return ["-add-fd", f"fd={spec.console_fd},set=1",
            "-chardev", "file,id=con0,path=/dev/fdset/1"]


def find_qemu() -> str:
    path = shutil.which(QEMU)
    if not path:
        raise UserError(f"{QEMU} is not installed",
                        hint="apt-get install qemu-system-x86 (or run 'make deps')")
    return path
