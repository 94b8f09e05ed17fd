"""QEMU command lines as data: `argv(spec)` is a pure function, unit-tested without QEMU.

The machine is QEMU's `microvm`: no PCI, no firmware tables beyond ACPI, virtio-mmio devices
(described to the guest through ACPI, so no virtio_mmio.device= on the cmdline). The console is
the ISA serial port written to a file, which outlives the engitor process that started the VM.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engitor.errors import UserError
from engitor.recipe.model import Accel, MiB, Port

QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class VMSpec:
    kernel: Path
    initrd: Path
    cmdline: str
    console: Path  # file receiving the serial console
    memory: int = 256 * MiB
    cpus: int = 1
    accel: Accel = Accel.TCG  # resolved: never AUTO here
    ports: tuple[Port, ...] = ()
    qmp: Path | None = None  # unix socket for QMP control
    pidfile: Path | None = None
    name: str = "engitor"
    host_cmdline: tuple[str, ...] = field(default=())  # host-specific, e.g. tsc_early_khz=
    disks: tuple[tuple[Path, str], ...] = ()  # (raw ext4 image, serial the guest finds it by)
    channel: Path | None = None  # file receiving the init's reports (virtio-serial port)


# The port's name; the guest init finds its /dev/vportNpM through /sys/class/virtio-ports.
CHANNEL_NAME = "org.engitor.0"


def _opt(value: object) -> str:
    """A value inside a QEMU option list, where a comma is written twice."""
    return str(value).replace(",", ",,")


def devices(spec: VMSpec) -> list[str]:
    """Disks (virtio-blk) and the init's report channel (virtio-serial, plain virtio-mmio on
    microvm: no PCI, works under TCG, and Debian's kernel has the driver as a module)."""
    args: list[str] = []
    for i, (path, serial) in enumerate(spec.disks):
        args += ["-drive", f"file={_opt(path)},format=raw,if=none,id=disk{i}",
                 "-device", f"virtio-blk-device,drive=disk{i},serial={serial}"]
    if spec.channel:
        args += ["-device", "virtio-serial-device",
                 "-chardev", f"file,id=report0,path={_opt(spec.channel)}",
                 "-device", f"virtserialport,chardev=report0,name={CHANNEL_NAME}"]
    return args


def hostfwd(port: Port) -> str:
    bind = port.bind.strip("[]")
    return f"hostfwd={port.proto.value}:{bind}:{port.host}-:{port.guest}"


def machine(accel: Accel) -> list[str]:
    if accel is Accel.KVM:
        return ["-M", "microvm,accel=kvm,rtc=on", "-cpu", "host"]
    # `max` gives TCG every feature it emulates (RDRAND seeds the guest's RNG at once).
    return ["-M", "microvm,accel=tcg,rtc=on", "-cpu", "max"]


def argv(spec: VMSpec, qemu: str = QEMU) -> list[str]:
    cmdline = " ".join(filter(None, (spec.cmdline, *spec.host_cmdline)))
    netdev = ",".join(["user", "id=n0", *(hostfwd(p) for p in spec.ports)])
    args = [
        qemu,
        "-name", spec.name,
        *machine(spec.accel),
        "-m", f"{spec.memory // MiB}M",
        "-smp", str(spec.cpus),
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-kernel", str(spec.kernel),
        "-initrd", str(spec.initrd),
        "-append", cmdline,
        "-chardev", f"file,id=con0,path={spec.console}",
        "-serial", "chardev:con0",
        "-netdev", netdev,
        "-device", "virtio-net-device,netdev=n0",
        "-object", "rng-random,id=rng0,filename=/dev/urandom",
        "-device", "virtio-rng-device,rng=rng0",
        *devices(spec),
    ]
    if spec.qmp:
        args += ["-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    if spec.pidfile:
        args += ["-pidfile", str(spec.pidfile)]
    return args


def find_qemu() -> str:
    path = shutil.which(QEMU)
    if not path:
        raise UserError(f"{QEMU} is not installed",
                        hint="apt-get install qemu-system-x86 (or run 'make deps')")
    return path
