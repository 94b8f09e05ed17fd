"""Which initramfs QEMU loads (engitor/vm/initrd.py): under TCG the archive unpacked once beside
the image, when the guest can hold it unpacked twice; the compressed one under KVM, with too
little memory, or when the home cannot take the unpacked copy (then a log line, nothing left)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import zstandard
from support import engitor
from test_faults import needs_root, tmpfs

from engitor import cpio, store
from engitor.recipe.model import Accel, MiB
from engitor.vm import initrd, limits

ZEROS = 24 * MiB  # compresses to almost nothing: the two memory floors lie far apart


def stored_image(tmp: Path) -> tuple[store.StoredImage, bytes]:
    payload = tmp / "payload"
    payload.write_bytes(bytes(ZEROS))
    hello = tmp / "hello"
    hello.write_text("hello\n")
    raw = cpio.archive(cpio.with_parents({"/data/zeros": cpio.entry_for("/data/zeros", payload),
                                          "/hello": cpio.entry_for("/hello", hello)}))
    kernel = tmp / "kernel"
    kernel.write_bytes(b"\0" * 4096)  # no boot header: limits' default footprint
    image, _ = store.put(kernel=kernel, kernel_sha="0" * 64, initrd=cpio.compress(raw),
                         cmdline="console=ttyS0",
                         manifest={"initrd": {"compression": "zstd", "uncompressed": len(raw)}})
    return image, raw


def test_tcg_gets_the_archive_unpacked_once(fresh_home: Path, tmp_path: Path):
    image, raw = stored_image(tmp_path)
    lines: list[str] = []
    first = initrd.for_boot(image, 512 * MiB, Accel.TCG, lines.append)
    assert first == image.path / initrd.UNPACKED_NAME and first.read_bytes() == raw
    made = first.stat().st_mtime_ns
    assert initrd.for_boot(image, 512 * MiB, Accel.TCG, lines.append) == first
    assert first.stat().st_mtime_ns == made and lines == []
    assert not [p for p in image.path.iterdir() if p.name.endswith(".tmp")]


def test_kvm_and_too_little_memory_keep_the_compressed_archive(fresh_home: Path, tmp_path: Path):
    image, raw = stored_image(tmp_path)
    size = image.initrd.stat().st_size
    enough_packed = limits.image_floor(image.kernel, size, len(raw))
    enough_unpacked = initrd.unpacked_floor(image.kernel, len(raw))
    assert enough_packed < enough_unpacked
    assert initrd.for_boot(image, 512 * MiB, Accel.KVM, print) == image.initrd
    assert initrd.for_boot(image, enough_unpacked - 4 * MiB, Accel.TCG, print) == image.initrd
    assert not (image.path / initrd.UNPACKED_NAME).exists()
    assert initrd.for_boot(image, enough_unpacked, Accel.TCG, print).name == initrd.UNPACKED_NAME


@needs_root
@pytest.mark.parametrize("why", ["full", "read-only"])
def test_a_home_that_cannot_take_it_boots_the_compressed_one(tmp_path: Path, monkeypatch, why):
    with tmpfs(tmp_path / "home", "16m") as home:
        monkeypatch.setenv("ENGITOR_HOME", str(home))
        image, _ = stored_image(tmp_path)
        if why == "read-only":
            subprocess.run(["mount", "-o", "remount,ro,size=512m", str(home)], check=True)
        lines: list[str] = []
        assert initrd.for_boot(image, 512 * MiB, Accel.TCG, lines.append) == image.initrd
        assert len(lines) == 1 and "the guest unpacks it instead" in lines[0], lines
        assert "No space" in lines[0] if why == "full" else "Read-only" in lines[0]
        assert sorted(p.name for p in image.path.iterdir()) == \
            ["cmdline", "initrd", "kernel", "manifest.json"]


def test_a_tcg_run_boots_the_unpacked_archive(fresh_home: Path, programs: Path):
    proc = engitor("run", str(programs / "exit3"), "--", "a", timeout=300)
    assert proc.returncode == 3 and "argc=2" in proc.stdout, proc.stdout + proc.stderr
    unpacked = list((fresh_home / "images").glob(f"*/{initrd.UNPACKED_NAME}"))
    assert len(unpacked) == 1
    packed = unpacked[0].with_name("initrd").read_bytes()
    assert unpacked[0].read_bytes() == zstandard.ZstdDecompressor().decompressobj().decompress(packed)
