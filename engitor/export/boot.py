"""QEMU command lines that boot an export the way a PCI cloud machine would: q35, UEFI (OVMF)
or BIOS (SeaBIOS), a virtio-pci disk and NIC, and QEMU's user network handing out addresses by
DHCP. Pure data, for trying an export by hand, the tests and the benchmarks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from engitor.vm.qemu import TCG_CPU

OVMF = Path("/usr/share/ovmf/OVMF.fd")
OVMF_CODE_SECBOOT = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
# A network QEMU's default 10.0.2.15 is not in: only a DHCP guest is reachable there.
DHCP_NET = "10.0.3.0/24"


class Firmware(enum.Enum):
    BIOS = "bios"  # SeaBIOS, QEMU's default
    UEFI = "uefi"  # OVMF
    SECURE = "secure"  # OVMF with Secure Boot, SMM and a variable store

    def machine(self) -> str:
        return "q35,accel=tcg,smm=on" if self is Firmware.SECURE else "q35,accel=tcg"


@dataclass(frozen=True)
class PCBoot:
    firmware: Firmware
    console: Path
    disk: Path | None = None  # a disk image (raw, qcow2, vhd, vmdk)
    disk_format: str = "raw"
    efi_dir: Path | None = None  # or a folder QEMU presents as a FAT disk (a UKI's ESP)
    vars: Path | None = None  # OVMF variable store (Secure Boot)
    memory_mib: int = 256
    host_port: int = 0
    guest_port: int = 0
    net: str = DHCP_NET


def firmware_args(b: PCBoot) -> list[str]:
    if b.firmware is Firmware.BIOS:
        return []
    if b.firmware is Firmware.UEFI:
        return ["-bios", str(OVMF)]
    assert b.vars is not None, "Secure Boot needs a variable store"
    return ["-global", "driver=cfi.pflash01,property=secure,value=on",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE_SECBOOT}",
            "-drive", f"if=pflash,format=raw,unit=1,file={b.vars}"]


def disk_args(b: PCBoot) -> list[str]:
    if b.efi_dir is not None:
        return ["-drive", f"file=fat:{b.efi_dir},format=raw,if=virtio,readonly=on"]
    assert b.disk is not None
    # snapshot: a boot must not change the export it tries.
    return ["-drive", f"file={b.disk},format={b.disk_format},if=virtio,snapshot=on"]


def argv(b: PCBoot, qemu: str = "qemu-system-x86_64") -> list[str]:
    netdev = f"user,id=n0,net={b.net}"
    if b.host_port:
        netdev += f",hostfwd=tcp:127.0.0.1:{b.host_port}-:{b.guest_port}"
    return [
        qemu, "-M", b.firmware.machine(), "-cpu", TCG_CPU, "-m", f"{b.memory_mib}M",
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        *firmware_args(b),
        *disk_args(b),
        # romfile= : no iPXE option ROM, so firmware does not try a network boot.
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=",
        "-chardev", f"file,id=con0,path={b.console}", "-serial", "chardev:con0",
    ]
