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
from engitor.recipe.model import DEFAULT_MEMORY, Accel, MiB, Port

QEMU = "qemu-system-x86_64"
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


def hostfwd(port: Port) -> str:
    bind = port.bind.strip("[]")
    return f"hostfwd={port.proto.value}:{bind}:{port.host}-:{port.guest}"


def machine(accel: Accel, pic: bool = True, tb_size: int | None = None) -> list[str]:
    # pic=off: one device less to emulate and probe (measured faster, shared/KERNEL.md).
    options = "" if pic else ",pic=off"
    if accel is Accel.KVM:
        return ["-M", f"microvm,accel=kvm,rtc=on{options}", "-cpu", "host"]
    # `max` gives TCG every feature it emulates (RDRAND seeds the guest's RNG at once).
    if tb_size:
        # The translation cache is most of an idle VM's host memory beside the guest's own.
        return ["-M", f"microvm,rtc=on{options}", "-accel", f"tcg,tb-size={tb_size}",
                "-cpu", "max"]
    return ["-M", f"microvm,accel=tcg,rtc=on{options}", "-cpu", "max"]


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
    ]
    if spec.qmp_fd is not None:
        args += ["-chardev", f"socket,id=qmp0,fd={spec.qmp_fd},server=on,wait=off",
                 "-mon", "chardev=qmp0,mode=control"]
    elif spec.qmp:
        args += ["-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    if spec.pidfile:
        args += ["-pidfile", str(spec.pidfile)]
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
