"""The initramfs writer: deterministic newc, parents first, readable back, zstd-compressed."""

import stat
import subprocess
from pathlib import Path

import pytest
import zstandard

from engitor import cpio
from engitor.cpio import Entry


def sample(tmp_path: Path) -> dict[str, Entry]:
    src = tmp_path / "hello.txt"
    src.write_text("hello\n")
    entries = [
        Entry.file("/usr/bin/app", data=b"\x7fELF fake", mode=0o755),
        Entry.file("/etc/hello.txt", source=src),
        Entry.symlink("/lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so"),
        Entry.chardev("/dev/console", 5, 1),
        Entry.directory("/tmp", 0o1777),
    ]
    return {e.path: e for e in entries}


def test_same_entries_same_bytes_whatever_the_order(tmp_path: Path):
    entries = sample(tmp_path)
    reordered = dict(reversed(list(entries.items())))
    assert cpio.archive(entries) == cpio.archive(reordered)
    assert cpio.compress(cpio.archive(entries)) == cpio.compress(cpio.archive(reordered))


def test_parents_before_children_and_fixed_metadata(tmp_path: Path):
    raw = cpio.archive(sample(tmp_path), mtime=1234)
    paths = [p for p, _, _ in cpio.read_archive(raw)]
    assert paths == sorted(paths)
    for needed in ("/usr", "/usr/bin", "/etc", "/lib64", "/dev"):
        assert needed in paths
        assert paths.index(needed) < paths.index(next(p for p in paths if p.startswith(needed + "/")))
    # every header: uid 0, gid 0, mtime 1234, inodes 1..N
    off, inodes = 0, []
    while raw[off:off + 6] == b"070701":
        f = [int(raw[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = f[11], f[6]
        name = raw[off + 110: off + 110 + namesize - 1]
        if name == b"TRAILER!!!":
            break
        assert (f[2], f[3], f[5]) == (0, 0, 1234)
        inodes.append(f[0])
        off += 110 + namesize
        off += -off % 4
        off += size + (-size % 4)
    assert inodes == list(range(1, len(paths) + 1))


def test_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = cpio.archive(sample(tmp_path))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert a != cpio.archive(sample(tmp_path))
    assert b"%08X" % 1700000000 in a


def test_contents_modes_and_nodes_round_trip(tmp_path: Path):
    got = {p: (m, d) for p, m, d in cpio.read_archive(cpio.archive(sample(tmp_path)))}
    assert got["/usr/bin/app"] == (stat.S_IFREG | 0o755, b"\x7fELF fake")
    assert got["/etc/hello.txt"] == (stat.S_IFREG | 0o644, b"hello\n")
    assert got["/lib64/ld.so"] == (stat.S_IFLNK | 0o777, b"/lib/x86_64-linux-gnu/ld.so")
    assert stat.S_ISCHR(got["/dev/console"][0])
    assert got["/tmp"][0] == stat.S_IFDIR | 0o1777


def test_gnu_cpio_reads_it(tmp_path: Path):
    """An independent reader agrees on the format (GNU cpio, if the host has it)."""
    if subprocess.run(["which", "cpio"], capture_output=True).returncode:
        pytest.skip("GNU cpio not installed")
    raw = cpio.archive(sample(tmp_path))
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=raw, capture_output=True, check=True)
    assert b"etc/hello.txt" in listing.stdout.split(b"\n")


def test_zstd_frame_decompresses_to_the_archive(tmp_path: Path):
    raw = cpio.archive(sample(tmp_path))
    assert zstandard.ZstdDecompressor().decompress(cpio.compress(raw)) == raw


def test_paths_cannot_escape():
    with pytest.raises(ValueError):
        cpio.normalize("../etc/passwd")
    assert cpio.normalize("a/./b//c") == "/a/b/c"


def test_double_slash_paths_are_normalized_not_looped_on():
    raw = cpio.archive({"//b/lib.so": Entry.file("//b/lib.so", data=b"x")})
    assert [p for p, _, _ in cpio.read_archive(raw)] == ["/b", "/b/lib.so"]
