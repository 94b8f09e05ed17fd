"""libvirt domains for engitor images, as data: `domain_xml(domain)` is pure and unit-tested.

Two ways to boot: `kernel` — QEMU's microvm with direct kernel boot, the image's own kernel,
initramfs and command line (what `engitor run` does, under libvirt's management); `disk` — q35
with UEFI firmware and the image exported as a qcow2 disk (what a cloud or KubeVirt host does).

Port forwards: libvirt 9.0 (Debian 12) rejects `<backend type='passt'/>` when it parses the
domain, so `<portForward>` is out; QEMU's user network with hostfwd is passed through
`<qemu:commandline>`. On q35 the NIC needs an explicit PCI address on pcie.0, else QEMU takes
slot 1 and libvirt's PCIe root port fails to start.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from engitor.recipe.model import MiB, Port

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
# QEMU runs as libvirt-qemu under qemu:///system: it cannot read /root, so the files it boots
# are copied here (libvirt's default image pool).
DEFAULT_POOL = Path("/var/lib/libvirt/images/engitor")
NIC_PCI_SLOT = "0x9"


class Boot(enum.Enum):
    KERNEL = "kernel"
    DISK = "disk"


@dataclass(frozen=True)
class Domain:
    name: str
    memory: int  # bytes
    cpus: int
    ports: tuple[Port, ...]
    console: Path  # serial console log
    boot: Boot = Boot.KERNEL
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = ""
    disk: Path | None = None  # qcow2, for Boot.DISK
    emulator: str = "/usr/bin/qemu-system-x86_64"
    extra: tuple[str, ...] = field(default=())  # more QEMU arguments


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _os(root: ET.Element, d: Domain) -> None:
    if d.boot is Boot.KERNEL:
        os_el = _sub(root, "os")
        _sub(os_el, "type", "hvm", arch="x86_64", machine="microvm")
        _sub(os_el, "kernel", str(d.kernel))
        _sub(os_el, "initrd", str(d.initrd))
        _sub(os_el, "cmdline", d.cmdline)
    else:
        os_el = _sub(root, "os", firmware="efi")
        _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
        # libvirt's automatic choice may be a Secure Boot OVMF with Microsoft's keys enrolled,
        # which refuses engitor's UKI unless it was signed (export --sign) and enrolled.
        fw = _sub(os_el, "firmware")
        _sub(fw, "feature", enabled="no", name="secure-boot")
        _sub(fw, "feature", enabled="no", name="enrolled-keys")
        _sub(os_el, "boot", dev="hd")


def _devices(root: ET.Element, d: Domain) -> None:
    dev = _sub(root, "devices")
    _sub(dev, "emulator", d.emulator)
    if d.boot is Boot.DISK:
        disk = _sub(dev, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="qcow2")
        _sub(disk, "source", file=str(d.disk))
        _sub(disk, "target", dev="vda", bus="virtio")
    # microvm has no USB bus and no balloon device; libvirt adds both unless told not to.
    _sub(dev, "controller", type="usb", model="none")
    _sub(dev, "memballoon", model="none")
    serial = _sub(dev, "serial", type="file")
    _sub(serial, "source", path=str(d.console))
    _sub(serial, "target", port="0")
    if d.boot is Boot.DISK:  # on microvm libvirt would pick virtio-rng-pci: see qemu_args
        rng = _sub(dev, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")


def hostfwd_netdev(ports: tuple[Port, ...]) -> str:
    forwards = [f"hostfwd={p.proto.value}:{p.bind.strip('[]')}:{p.host}-:{p.guest}"
                for p in ports]
    return ",".join(["user", "id=n0", *forwards])


def qemu_args(d: Domain) -> list[str]:
    if d.boot is Boot.KERNEL:  # virtio-mmio devices, as engitor's own runner attaches them
        devices = ["-device", "virtio-net-device,netdev=n0",
                   "-object", "rng-random,id=rng0,filename=/dev/urandom",
                   "-device", "virtio-rng-device,rng=rng0"]
    else:
        devices = ["-device", f"virtio-net-pci,netdev=n0,bus=pcie.0,addr={NIC_PCI_SLOT}"]
    return ["-netdev", hostfwd_netdev(d.ports), *devices, *d.extra]


def domain_xml(d: Domain) -> str:
    ET.register_namespace("qemu", QEMU_NS)
    root = ET.Element("domain", type="qemu")
    _sub(root, "name", d.name)
    _sub(root, "memory", str(d.memory // MiB), unit="MiB")
    _sub(root, "vcpu", str(d.cpus))
    _os(root, d)
    features = _sub(root, "features")
    _sub(features, "acpi")  # the power button: how a graceful shutdown reaches the init
    # TCG's `-cpu max` (the domain type is "qemu"), without ERMS as engitor's own TCG runs:
    # with it the guest copies memory with `rep movsb`, which TCG runs a byte an iteration.
    cpu = _sub(root, "cpu", mode="maximum")
    _sub(cpu, "feature", policy="disable", name="erms")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(root, event, "destroy")  # a one-app VM ends when its program does
    _devices(root, d)
    cmd = _sub(root, f"{{{QEMU_NS}}}commandline")
    for arg in qemu_args(d):
        _sub(cmd, f"{{{QEMU_NS}}}arg", value=arg)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
