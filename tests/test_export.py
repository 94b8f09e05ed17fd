"""Export pieces without booting: PE fix-ups, argv builders, disk identity, memory advice,
the modalias table from the real kernel's modules, and the CLI's refusals."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from support import engitor

from engitor.errors import UserError
from engitor.export import boot, disk, formats, guest, memory, parse_format, pe, tools, uki
from engitor.export.formats import Format
from engitor.image import kmod

MiB = 1024 * 1024
STUB = tools.STUB


def test_pe_checksum_matches_the_one_debian_shipped_in_the_stub():
    data = STUB.read_bytes()
    lay = pe.layout(data)
    at = lay.optional_at + pe.CHECKSUM_AT
    assert pe.checksum(data, at) == struct.unpack_from("<I", data, at)[0] != 0


def test_normalize_fixes_the_timestamp_and_keeps_the_checksum_valid():
    data = bytearray(STUB.read_bytes())
    lay = pe.layout(bytes(data))
    struct.pack_into("<I", data, lay.coff_at + 4, 1_700_000_000)  # as objcopy stamps it
    fixed = pe.normalize(bytes(data))
    assert struct.unpack_from("<I", fixed, lay.coff_at + 4)[0] == 0
    at = lay.optional_at + pe.CHECKSUM_AT
    assert struct.unpack_from("<I", fixed, at)[0] == pe.checksum(fixed, at)


def test_uki_sections_follow_the_stub_at_increasing_page_aligned_addresses(tmp_path: Path):
    files = {}
    for name, size in ((".osrel", 100), (".cmdline", 30), (".linux", 5000), (".initrd", 9000)):
        files[name] = tmp_path / name.lstrip(".")
        files[name].write_bytes(b"x" * size)
    argv = uki.objcopy_argv(STUB, tmp_path / "out.efi", files, 0x20000)
    vmas = [int(a.split("=")[-1], 16) for a in argv if a.startswith("--change-section-vma")]
    assert vmas == [0x20000, 0x21000, 0x22000, 0x24000]
    assert argv[-2:] == [str(STUB), str(tmp_path / "out.efi")]


def test_disk_identity_comes_from_the_image_id():
    a, b = disk.Identity.of("a" * 64), disk.Identity.of("b" * 64)
    assert a == disk.Identity.of("a" * 64)
    assert len({a.disk_guid, a.esp_guid, b.disk_guid, b.esp_guid}) == 4
    assert len(a.volume_serial) == 8 and int(a.volume_serial, 16) >= 0


def test_sgdisk_marks_the_esp_legacy_bootable_at_one_mib(tmp_path: Path):
    ident = disk.Identity.of("c" * 64)
    argv = disk.sgdisk_argv(tmp_path / "d.raw", ident, 64 * MiB)
    assert "--new=1:2048:133119" in argv and "--typecode=1:EF00" in argv
    assert "--attributes=1:set:2" in argv and f"--disk-guid={ident.disk_guid}" in argv


def test_esp_is_fat32_sized_in_whole_mib():
    assert disk.esp_size(1000) == 64 * MiB
    big = disk.esp_size(200 * MiB)
    assert big % MiB == 0 and big >= 200 * MiB + 200 * MiB // 16
    assert disk.fat_epoch(0) > 315532800  # FAT dates start in 1980
    assert "APPEND console=tty0 quiet" in disk.syslinux_cfg("console=tty0 quiet")


@pytest.mark.parametrize(("fmt", "options"), [
    (Format.QCOW2, ["-O", "qcow2"]),
    (Format.VHD, ["-O", "vpc", "-o", "subformat=fixed,force_size=on"]),
    (Format.VMDK, ["-O", "vmdk", "-o", "subformat=streamOptimized"]),
])
def test_qemu_img_conversions(fmt: Format, options: list[str]):
    argv = formats.convert_argv(Path("d.raw"), fmt, Path("out"))
    assert argv == ["qemu-img", "convert", "-f", "raw", *options, "d.raw", "out"]


def test_format_names_and_a_misspelt_one():
    assert parse_format("QCOW2") is Format.QCOW2
    with pytest.raises(UserError) as e:
        parse_format("qcow")
    assert "did you mean 'qcow2'" in str(e.value)


def test_gce_tarball_is_gnu_oldgnu_with_no_owner_names(tmp_path: Path):
    import gzip

    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\1" * 4096)
    formats.gce_tarball(raw, tmp_path / "a.tar.gz", mtime=0)
    formats.gce_tarball(raw, tmp_path / "b.tar.gz", mtime=0)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    tar = gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert tar[:8] == b"disk.raw" and tar[257:265] == b"ustar  \0"  # oldgnu magic
    assert tar[265:265 + 64].strip(b"\0") == b""  # uname, gname empty


def test_memory_advice_for_uefi():
    small = memory.need(kernel=14 * MiB, initrd=2 * MiB, initrd_unpacked=5 * MiB)
    assert 128 * MiB < small.uefi <= 256 * MiB and small.advice == 256 * MiB
    memory.check(256 * MiB, small)
    with pytest.raises(UserError) as e:
        memory.check(128 * MiB, small)
    assert "give the VM 256 MiB" in str(e.value)
    big = memory.need(kernel=14 * MiB, initrd=300 * MiB, initrd_unpacked=900 * MiB)
    assert big.advice == 2048 * MiB


def test_modalias_table_from_the_kernels_own_modinfo(kernel_pkg):
    modules = kmod.resolve(kernel_pkg.modules_dir, list(guest.DEPLOY_MODULES))
    lines = guest.modalias_lines(modules, "/m")
    by_pattern = {line.split()[1]: line.split()[2:] for line in lines}
    pci = by_pattern["pci:v00001AF4d*sv*sd*bc*sc*i*"]  # any virtio PCI device
    assert pci[-1].endswith("/virtio_pci.ko")
    assert pci.index(next(p for p in pci if p.endswith("/virtio_ring.ko"))) < len(pci) - 1
    assert by_pattern["virtio:d00000001v*"][-1].endswith("/virtio_net.ko")
    assert any(p.startswith("pci:v00001D0F") for p in by_pattern)  # Amazon's ENA
    assert any(p.startswith("vmbus:") for p in by_pattern)  # Hyper-V's NIC
    assert guest.network_mode({}) == "dhcp" and guest.network_mode({"network": "static"}) == "static"


def test_pc_boot_argv_uses_dhcp_network_and_pci_devices(tmp_path: Path):
    b = boot.PCBoot(boot.Firmware.SECURE, tmp_path / "c.log", disk=tmp_path / "d.qcow2",
                    disk_format="qcow2", vars=tmp_path / "v.fd", host_port=5000, guest_port=80)
    argv = boot.argv(b)
    assert argv[argv.index("-M") + 1] == "q35,accel=tcg,smm=on"
    assert "user,id=n0,net=10.0.3.0/24,hostfwd=tcp:127.0.0.1:5000-:80" in argv
    assert f"file={tmp_path / 'd.qcow2'},format=qcow2,if=virtio,snapshot=on" in argv
    assert f"if=pflash,format=raw,unit=1,file={tmp_path / 'v.fd'}" in argv


# ---- bad input: one line, a hint, exit 2 ----------------------------------------------------


def test_unknown_format_is_one_line_with_the_formats(tmp_path: Path):
    proc = engitor("export", "anything", "--format", "iso", "-o", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "unknown export format 'iso'" in proc.stderr and "raw, qcow2" in proc.stderr


def test_output_folder_that_does_not_exist(tmp_path: Path):
    proc = engitor("export", "anything", "--format", "raw", "-o", str(tmp_path / "no/disk.raw"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"output directory {tmp_path / 'no'} does not exist" in proc.stderr
    assert "mkdir -p" in proc.stderr


def test_vhd_footer_fields_that_vary_are_fixed_and_the_checksum_recomputed(tmp_path: Path):
    import subprocess

    raw = tmp_path / "d.raw"
    raw.write_bytes(bytes(MiB))
    subprocess.run(["qemu-img", "convert", "-f", "raw", *Format.VHD.qemu_img_options(),
                    str(raw), str(tmp_path / "d.vhd")], check=True)
    footer = (tmp_path / "d.vhd").read_bytes()[-512:]

    def checksum(f: bytes) -> int:
        b = bytearray(f)
        b[64:68] = bytes(4)
        return ~sum(b) & 0xFFFFFFFF

    assert int.from_bytes(footer[64:68], "big") == checksum(footer)  # qemu-img's, same rule
    fixed = formats.vhd_footer_fixed(footer, unique_id=b"u" * 16, timestamp=formats.VHD_EPOCH + 5)
    assert fixed[24:28] == (5).to_bytes(4, "big") and fixed[68:84] == b"u" * 16
    assert int.from_bytes(fixed[64:68], "big") == checksum(fixed)
    assert fixed[:24] == footer[:24] and fixed[28:64] == footer[28:64]  # sizes, geometry kept


def test_sbsign_runs_at_a_fixed_time(tmp_path: Path):
    from engitor.export import secureboot

    signing = secureboot.Signing(tmp_path / "k.pem", tmp_path / "c.pem")
    argv = secureboot.sign_argv(tmp_path / "a.efi", tmp_path / "b.efi", signing, 315619200)
    assert argv[:3] == ["faketime", "-f", "@1980-01-02 00:00:00"]
    assert argv[3:] == ["sbsign", "--key", str(tmp_path / "k.pem"), "--cert",
                        str(tmp_path / "c.pem"), "--output", str(tmp_path / "b.efi"),
                        str(tmp_path / "a.efi")]
    assert secureboot.vars_path(tmp_path / "d.raw").name == "d.raw.OVMF_VARS_4M.fd"


def test_vmdk_content_id_is_set_whatever_qemu_img_drew(tmp_path: Path):
    import subprocess

    raw = tmp_path / "d.raw"
    raw.write_bytes(bytes(MiB))
    outs = []
    for i in range(4):  # qemu-img's random CID is sometimes shorter than 8 digits
        (tmp_path / str(i)).mkdir()
        out = tmp_path / str(i) / "disk.vmdk"
        subprocess.run(formats.convert_argv(raw, Format.VMDK, out), check=True)
        formats.fix_vmdk(out, cid=bytes.fromhex("00c0ffee"))
        outs.append(out.read_bytes())
    assert outs.count(outs[0]) == 4 and b"\nCID=00c0ffee\n" in outs[0]
    info = subprocess.run(["qemu-img", "check", str(tmp_path / "0" / "disk.vmdk")])
    assert info.returncode == 0
