"""Exported images booted for real (TCG): raw, qcow2, vhd and vmdk under q35 with OVMF and with
SeaBIOS, the UKI under OVMF, Secure Boot enforcing; every format twice, byte for byte.

The guest serves HTTP through virtio-net-pci on QEMU's user network moved to 10.0.3.0/24:
engitor's fixed 10.0.2.15 is not reachable there, so an answer proves the DHCP client (and the
modalias-driven virtio_pci/virtio_net loading that precedes it).

Boots cost 7-25 s each under TCG, so each firmware boots raw and one converted format (OVMF vhd,
SeaBIOS qcow2); every converted format is checked to convert back to the raw disk's exact bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import engitor, free_port, http_get, wait_for

from engitor import export, store
from engitor.export import boot, pe
from engitor.export.formats import Format
from engitor.image import pipeline
from engitor.recipe.settings import make_image

pytestmark = pytest.mark.vm
BOOT_TIMEOUT = 180  # TCG on a shared machine; OVMF alone takes 5-10 s before the kernel


@pytest.fixture(scope="module")
def image(programs: Path, tmp_path_factory: pytest.TempPathFactory) -> store.StoredImage:
    """The example web server serving the guest's whole root (so /etc/resolv.conf shows)."""
    base = tmp_path_factory.mktemp("export-image")
    declared = make_image("exported", {"program": str(programs / "server"),
                                       "args": ["-port", "8080", "-root", "/", "-name", "exp"]},
                          base_dir=base)
    return pipeline.build(declared)


@pytest.fixture(scope="module")
def exported(image: store.StoredImage, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[Format, Path]:
    """Every format, exported from the one image."""
    out = tmp_path_factory.mktemp("exports")
    return {fmt: export.export(image, fmt, out / f"disk{fmt.suffix}", guest_memory=256 << 20)
            for fmt in Format}


@contextlib.contextmanager
def booted(spec: boot.PCBoot) -> Iterator[int]:
    """Boot `spec` in QEMU; yields once the guest answers HTTP on the forwarded port."""
    proc = subprocess.Popen(boot.argv(spec), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answers() -> str:
            if proc.poll() is not None:
                raise AssertionError(f"QEMU ended: {proc.stderr.read().decode()[-500:]}"
                                     f"\n{spec.console.read_text(errors='replace')[-2000:]}")
            return http_get(f"http://127.0.0.1:{spec.host_port}/etc/hostname")

        try:
            wait_for(answers, timeout=BOOT_TIMEOUT, what=f"{spec.firmware.value} boot")
        except AssertionError:
            raise AssertionError(spec.console.read_text(errors="replace")[-2000:]) from None
        yield spec.host_port
    finally:
        proc.kill()
        proc.wait()


def pc(firmware: boot.Firmware, console: Path, **kw) -> boot.PCBoot:
    return boot.PCBoot(firmware, console, host_port=free_port(), guest_port=8080, **kw)


def serves_with_dhcp(port: int, console: Path) -> None:
    assert "nameserver 10.0.3.3" in http_get(f"http://127.0.0.1:{port}/etc/resolv.conf")
    log = console.read_text(errors="replace")
    assert "@@engitor:dhcp bound addr=10.0.3.15/24 gateway=10.0.3.2" in log
    assert "@@engitor:warning" not in log


def test_every_format_has_its_shape(exported: dict[Format, Path]):
    raw = exported[Format.RAW].read_bytes()
    assert len(raw) % (1 << 20) == 0 and raw[510:512] == b"\x55\xaa"
    assert raw[512:520] == b"EFI PART"  # GPT header
    assert exported[Format.QCOW2].read_bytes()[:4] == b"QFI\xfb"
    vhd = exported[Format.VHD].read_bytes()
    assert len(vhd) == len(raw) + 512 and vhd[-512:-504] == b"conectix"
    assert vhd[:len(raw)] == raw  # a fixed VHD is the raw disk and a footer
    vmdk = exported[Format.VMDK].read_bytes()
    assert vmdk[:4] == b"KDMV" and b'createType="streamOptimized"' in vmdk[:64 << 10]
    with tarfile.open(exported[Format.GCE]) as tar:
        assert tar.getnames() == ["disk.raw"]
        assert tar.extractfile("disk.raw").read() == raw  # type: ignore[union-attr]
    efi = exported[Format.UKI].read_bytes()
    sections = {sec.name: sec for sec in pe.layout(efi).sections}
    added = [sections[n] for n in (".osrel", ".cmdline", ".linux", ".initrd")]
    assert [sec.vaddr for sec in added] == sorted(sec.vaddr for sec in added)
    assert added[0].vaddr > sections[".sdmagic"].vaddr  # past the stub's own sections
    cmdline = efi[added[1].raw_offset:added[1].raw_offset + added[1].vsize]
    assert cmdline.startswith(b"console=tty0 console=ttyS0 ")  # both consoles; ttyS0 last wins
    assert struct.unpack_from("<I", efi, pe.layout(efi).coff_at + 4)[0] == 0  # PE timestamp


@pytest.mark.parametrize("fmt", [Format.QCOW2, Format.VHD, Format.VMDK])
def test_converted_formats_convert_back_to_the_raw_disk(exported, fmt: Format, tmp_path: Path):
    name = {Format.VHD: "vpc"}.get(fmt, fmt.value)
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", name, "-O", "raw", str(exported[fmt]),
                    str(back)], check=True)
    assert back.read_bytes() == exported[Format.RAW].read_bytes()


@pytest.mark.parametrize("fmt", list(Format), ids=[f.value for f in Format])
def test_a_second_export_is_byte_identical(image, exported, fmt: Format, tmp_path: Path):
    """Through the CLI this time, with another hash seed and another time of day."""
    out = tmp_path / f"again{fmt.suffix}"
    proc = engitor("export", image.id, "--format", fmt.value, "-o", str(out),
                   env={"PYTHONHASHSEED": "7"})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == exported[fmt].read_bytes()
    assert f"exported {image.short} as {fmt.value} to {out}: " in proc.stderr


@pytest.mark.parametrize(("firmware", "fmt"), [
    (boot.Firmware.UEFI, Format.RAW), (boot.Firmware.UEFI, Format.VHD),
    (boot.Firmware.BIOS, Format.RAW), (boot.Firmware.BIOS, Format.QCOW2),
], ids=["ovmf-raw", "ovmf-vhd", "seabios-raw", "seabios-qcow2"])
def test_disk_boots_and_serves_through_dhcp(exported, firmware, fmt, tmp_path: Path):
    disk_format = {Format.VHD: "vpc"}.get(fmt, fmt.value)
    spec = pc(firmware, tmp_path / "console.log", disk=exported[fmt], disk_format=disk_format)
    with booted(spec) as port:
        serves_with_dhcp(port, spec.console)
    log = spec.console.read_text(errors="replace")
    assert ("SYSLINUX" in log) == (firmware is boot.Firmware.BIOS)


def test_uki_boots_under_ovmf_from_an_esp_folder(exported, tmp_path: Path):
    esp = tmp_path / "esp" / "EFI" / "BOOT"
    esp.mkdir(parents=True)
    os.link(exported[Format.UKI], esp / "BOOTX64.EFI")
    spec = pc(boot.Firmware.UEFI, tmp_path / "console.log", efi_dir=tmp_path / "esp")
    with booted(spec) as port:
        serves_with_dhcp(port, spec.console)


# ---- Secure Boot ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(image, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A key pair, and the image exported signed: the disk and its OVMF variable store."""
    d = tmp_path_factory.mktemp("secureboot")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=engitor test signing", "-keyout", str(d / "sb.key"),
                    "-out", str(d / "sb.crt")], check=True, capture_output=True)
    out = d / "signed.qcow2"
    export.export(image, Format.QCOW2, out, signing=export.Signing(d / "sb.key", d / "sb.crt"))
    return out, export.secureboot.vars_path(out)


def test_signed_disk_boots_with_secure_boot_enforcing(signed, tmp_path: Path):
    disk, vars_template = signed
    vars_copy = tmp_path / "vars.fd"  # the firmware writes to its store
    vars_copy.write_bytes(vars_template.read_bytes())
    spec = pc(boot.Firmware.SECURE, tmp_path / "console.log", disk=disk, disk_format="qcow2",
              vars=vars_copy)
    with booted(spec) as port:
        serves_with_dhcp(port, spec.console)


def test_unsigned_disk_is_refused_with_secure_boot(signed, exported, tmp_path: Path):
    vars_copy = tmp_path / "vars.fd"
    vars_copy.write_bytes(signed[1].read_bytes())
    spec = pc(boot.Firmware.SECURE, tmp_path / "console.log", disk=exported[Format.RAW],
              vars=vars_copy)
    proc = subprocess.Popen(boot.argv(spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "Access Denied" in spec.console.read_text(errors="replace"),
                 timeout=BOOT_TIMEOUT, what="OVMF refusing the unsigned UKI")
    finally:
        proc.kill()
        proc.wait()
    assert "@@engitor" not in spec.console.read_text(errors="replace")


def test_a_second_signed_export_is_byte_identical(image, signed, tmp_path: Path):
    key, cert = signed[0].parent / "sb.key", signed[0].parent / "sb.crt"
    out = tmp_path / "again.qcow2"
    proc = engitor("export", image.id, "-f", "qcow2", "-o", str(out), "--sign", str(key),
                   "--cert", str(cert))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == signed[0].read_bytes()
    assert export.secureboot.vars_path(out).read_bytes() == signed[1].read_bytes()


def test_too_little_memory_for_uefi_is_refused_with_advice(image, tmp_path: Path):
    out = tmp_path / "disk.raw"
    proc = engitor("export", image.id, "--format", "raw", "-o", str(out), "-m", "128M")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "guest memory to boot under UEFI; its memory is 128 MiB" in proc.stderr
    assert "give the VM 256 MiB" in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


def test_gce_tarball_holds_the_raw_disk_compressed(exported):
    assert gzip.open(exported[Format.GCE]).read(512)[:8] == b"disk.raw"
