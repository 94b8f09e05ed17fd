"""Volumes on the host: named ext4 disk images in the engitor home, and attaching them.

A named volume is `volumes/NAME.img`, a sparse file holding an ext4 file system (made with
mkfs.ext4 from e2fsprogs). On first use it is seeded, as Docker seeds its volumes, from what the
image holds at the mount point (`mkfs.ext4 -d`). Before a VM gets a disk, the disk is locked,
checked to be ext4 and replayed/repaired with `e2fsck -p` (a QEMU killed mid-write leaves a
journal to replay).

The lock is a `flock` on the disk file whose descriptor QEMU inherits: it is held exactly as
long as the VM lives (however it ends, even by SIGKILL) and no longer, so two VMs never mount
one file system read-write. The run folder's instance.json names the disks, which lets the
error name the VM that holds one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from engitor import home
from engitor.errors import UserError
from engitor.recipe.settings import parse_size
from engitor.recipe.volumes import NAME_RE, Kind, Mount, mounts

DEFAULT_SIZE = 1024 * 1024 * 1024  # sparse: it costs what the program writes
EXT_MAGIC_OFFSET = 1024 + 56  # the superblock starts at 1 KiB; s_magic is at byte 56 of it
EXT_MAGIC = b"\x53\xef"
E2FSCK_UNFIXED = 4  # e2fsck's exit bits: 1 and 2 mean fixed, 4 and up mean not


def volumes_dir() -> Path:
    return home.subdir("volumes")


def named_path(name: str) -> Path:
    return volumes_dir() / f"{name}.img"


@dataclass
class Attached:
    """A disk ready for QEMU: its file, its serial, and the open descriptor holding its lock."""

    mount: Mount
    path: Path
    fd: int

    def describe(self) -> str:
        return f"{self.mount.source}={self.path}:{self.mount.guest}"


# ---- making and checking ----------------------------------------------------------------------


def _run(argv: list[str], what: str, ok: Callable[[int], bool] = lambda rc: rc == 0,
         hint: str = "the message in parentheses is the tool's") -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    except FileNotFoundError:
        raise UserError(f"{argv[0]} is not installed", hint="apt-get install e2fsprogs") from None
    if not ok(proc.returncode):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{what}: {argv[0]} failed ({tail[0]})", hint=hint)
    return proc


def make_ext4(path: Path, size: int, *, label: str, seed: Path | None = None) -> None:
    """A new sparse ext4 image at `path` (written aside, then renamed: never half made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.ftruncate(fd, size)
        os.close(fd)
        # -m 0: no blocks reserved for root (a daemon's data volume is all the daemon's);
        # -E root_owner: the host user's ids would otherwise own the root directory;
        # assume_storage_prezeroed: a fresh sparse file reads as zeros, so neither mke2fs nor
        # the guest kernel (lazy init) writes zeros over the journal and inode tables.
        argv = ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", label[:16], "-E",
                "root_owner=0:0,assume_storage_prezeroed=1", tmp]
        if seed is not None:
            argv[-1:-1] = ["-d", str(seed)]
        _run(argv, f"making volume {path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_ext(path: Path) -> bool:
    """An ext2/3/4 superblock (the kernel's ext4 driver mounts all three)."""
    try:
        with path.open("rb") as f:
            f.seek(EXT_MAGIC_OFFSET)
            return f.read(2) == EXT_MAGIC
    except OSError:
        return False


def check(path: Path, shown: str) -> None:
    """Replay the journal and fix what is safe to fix (`e2fsck -p`), or refuse the disk."""
    _run(["e2fsck", "-p", str(path)], f"checking volume {shown}",
         ok=lambda rc: rc < E2FSCK_UNFIXED,
         hint=f"it has errors e2fsck -p does not fix alone: run e2fsck {path} and answer it")


def seed_from_initrd(initrd: Path, guest: str, into: Path) -> bool:
    """Unpack the image's files under `guest` into `into`; False when it holds none there."""
    import zstandard

    from engitor import cpio

    with initrd.open("rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f).read()
    prefix = guest.rstrip("/") + "/"
    found = False
    for path, mode, data in cpio.read_archive(raw):
        if not path.startswith(prefix):
            continue
        found = True
        target = into / path[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        if stat.S_ISDIR(mode):
            target.mkdir(exist_ok=True)
            os.chmod(target, stat.S_IMODE(mode))
        elif stat.S_ISLNK(mode):
            os.symlink(data.decode(), target)
        elif stat.S_ISREG(mode):
            target.write_bytes(data)
            os.chmod(target, stat.S_IMODE(mode))
    return found


# ---- named volumes ----------------------------------------------------------------------------


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UserError(f"{name!r} is not a volume name",
                        hint="use letters, digits, '_', '.', '-' (starting with a letter or digit)")


def create(name: str, size: int = DEFAULT_SIZE, *, seed: Path | None = None) -> Path:
    check_name(name)
    path = named_path(name)
    if path.exists():
        raise UserError(f"volume {name} already exists", hint=f"engitor volume rm {name} first")
    make_ext4(path, size, label=name, seed=seed)
    return path


def names() -> list[str]:
    return sorted(p.stem for p in volumes_dir().glob("*.img"))


def holder(path: Path) -> str | None:
    """The running VM that has this disk attached, from the run folders' records."""
    from engitor.vm.instance import Instance

    real = str(path.resolve())
    for inst in Instance.all():
        if any(d.split("=", 1)[-1].rsplit(":", 1)[0] == real for d in inst.meta.volumes) \
                and inst.alive():
            return inst.name
    return None


def in_use(path: Path) -> bool:
    with path.open("rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def remove(name: str) -> None:
    check_name(name)
    path = named_path(name)
    if not path.exists():
        raise UserError(f"no volume named {name!r}", hint="see 'engitor volume ls'")
    if in_use(path):
        who = holder(path)
        raise UserError(f"volume {name} is in use by VM {who or '(unknown)'}",
                        hint=f"stop it first: engitor stop {who or 'NAME'}")
    path.unlink()


def inspect(name: str) -> dict[str, object]:
    check_name(name)
    path = named_path(name)
    if not path.exists():
        raise UserError(f"no volume named {name!r}", hint="see 'engitor volume ls'")
    st = path.stat()
    info: dict[str, object] = {
        "name": name, "path": str(path), "size": st.st_size, "allocated": st.st_blocks * 512,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_ctime)),
        "in_use_by": holder(path) if in_use(path) else None,
    }
    proc = _run(["dumpe2fs", "-h", str(path)], f"reading volume {name}")
    wanted = {"Filesystem UUID": "uuid", "Filesystem state": "state",
              "Last mounted on": "last_mounted_on", "Last write time": "last_write"}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            info[wanted[key]] = value.strip()
    return info


# ---- attaching --------------------------------------------------------------------------------


def _disk_path(mount: Mount, base_dir: Path) -> Path:
    if mount.kind is Kind.NAMED:
        return named_path(mount.source)
    p = Path(mount.source).expanduser()
    return (p if p.is_absolute() else base_dir / p).resolve()


def _prepare(mount: Mount, path: Path, initrd: Path, log: Callable[[str], None]) -> None:
    """Make a missing disk, seeded from the image's files at the mount point."""
    with tempfile.TemporaryDirectory(prefix="engitor-seed-") as tmp:
        seeded = seed_from_initrd(initrd, mount.guest, Path(tmp))
        make_ext4(path, DEFAULT_SIZE, label=path.stem, seed=Path(tmp) if seeded else None)
    what = "volume" if mount.kind is Kind.NAMED else "disk image"
    log(f"{what} {mount.source} created ({DEFAULT_SIZE >> 30} GiB sparse"
        + (f", seeded from the image's {mount.guest})" if seeded else ")"))


def _lock(mount: Mount, path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = holder(path)
        raise UserError(f"{_shown(mount, path)} is in use by VM {who or '(another process)'}",
                        hint=f"stop it first (engitor stop {who or 'NAME'}) or use another volume"
                        ) from None
    return fd


def _shown(mount: Mount, path: Path) -> str:
    return f"volume {mount.source}" if mount.kind is Kind.NAMED else f"disk image {path}"


def _usable(mount: Mount, path: Path) -> None:
    if not path.is_file():
        raise UserError(f"{_shown(mount, path)} is not a file",
                        hint="a disk volume is an ext4 image file")
    if not is_ext(path):
        raise UserError(f"{_shown(mount, path)} is not an ext4 file system",
                        hint="give an ext4 image (mkfs.ext4 FILE SIZE, or 'engitor volume create "
                             "NAME'), or a path that does not exist yet to make one")


def precheck(volume_map: Mapping[str, str], base_dir: Path) -> None:
    """What can be refused before building: existing disks that are not ext4 or are in use."""
    for mount in mounts(volume_map):
        if mount.kind is Kind.TMPFS:
            continue
        path = _disk_path(mount, base_dir)
        if path.exists():
            _usable(mount, path)
            if in_use(path):
                who = holder(path)
                raise UserError(f"{_shown(mount, path)} is in use by VM "
                                f"{who or '(another process)'}",
                                hint=f"stop it first (engitor stop {who or 'NAME'}) or use "
                                     "another volume")


@contextlib.contextmanager
def attached(volume_map: Mapping[str, str], initrd: Path, base_dir: Path,
             log: Callable[[str], None] = lambda _: None) -> Iterator[list[Attached]]:
    """Lock, make (first use) and check each disk; the descriptors close on leaving, by which
    time QEMU holds its inherited copies (the locks stay while it runs)."""
    disks: list[Attached] = []
    try:
        for mount in mounts(volume_map):
            if mount.kind is Kind.TMPFS:
                continue
            path = _disk_path(mount, base_dir)
            if not path.exists():
                _prepare(mount, path, initrd, log)
            _usable(mount, path)
            disks.append(Attached(mount, path, _lock(mount, path)))
            check(path, mount.source)
        yield disks
    finally:
        for disk in disks:
            os.close(disk.fd)


def ls_rows() -> list[dict[str, object]]:
    rows = []
    for name in names():
        path = named_path(name)
        st = path.stat()
        rows.append({"name": name, "size": st.st_size, "allocated": st.st_blocks * 512,
                     "in_use_by": holder(path) if in_use(path) else None})
    return rows


def size_arg(text: str) -> int:
    size = parse_size(text)
    if size < 16 * 1024 * 1024:
        raise UserError(f"volume size {text} is too small", hint="at least 16M")
    return size
