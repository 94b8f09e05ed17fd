"""Faults told in one line (engitor/faults.py): a full disk (a small tmpfs as the home) and a
read-only one give what, where and how much space, leave the store as it was and no temporary
files; build staging lives under the home and what a killed build left is swept next time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import engitor, wait_for

from engitor import home

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", "mode=0700",
                                                              *options)), "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def one_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def leftovers(root: Path) -> list[str]:
    """Temporary files and folders anywhere under `root` (symlinked caches not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, n) for n in dirnames + filenames if n.endswith(".tmp")]
    found += [str(p) for p in (root / "tmp").glob("*")] if (root / "tmp").is_dir() else []
    return found


def linked_home(path: Path) -> dict[str, str]:
    """A home sharing the real kernel and compile caches (which stay on the real disk)."""
    os.chmod(path, 0o700)
    (path / "kernels").symlink_to(home.home() / "kernels")
    (path / "cache").symlink_to(home.home() / "cache")
    return {"ENGITOR_HOME": str(path)}


@needs_root
def test_a_full_home_refuses_to_store_an_image_in_one_line(tmp_path: Path, programs: Path,
                                                           kernel_pkg):
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(30 * 2**20))  # incompressible: cannot fit in 24 MiB
    with tmpfs(tmp_path / "home", "24m") as path:
        env = linked_home(path)
        proc = engitor("build", "-q", "--file", str(blob), str(programs / "exit3"), env=env,
                       cwd=tmp_path, timeout=300)
        one_line(proc, "no space left on device: storing image", f"{path}/images",
                 "needs 45.", "MiB free")
        assert leftovers(path) == []
        assert not list((path / "images").iterdir())
        assert not (path / "tags").exists() or not list((path / "tags").iterdir())
        # The same home still builds what fits.
        small = engitor("build", "-q", str(programs / "exit3"), env=env, cwd=tmp_path, timeout=300)
        assert small.returncode == 0, small.stderr
        assert len(list((path / "images").iterdir())) == 1 and leftovers(path) == []


@needs_root
def test_a_kernel_that_does_not_fit_is_one_line_not_tars_output(tmp_path: Path, programs: Path,
                                                                kernel_pkg):
    with tmpfs(tmp_path / "home", "8m") as path:
        os.chmod(path, 0o700)
        (path / "cache").symlink_to(home.home() / "cache")
        proc = engitor("build", "-q", "--kernel", str(kernel_pkg.deb), str(programs / "exit3"),
                       env={"ENGITOR_HOME": str(path)}, cwd=tmp_path, timeout=300)
        one_line(proc, "no space left on device: unpacking kernel", f"{path}/kernels",
                 "needs ", "MiB free")
        assert leftovers(path) == []
        assert [p.name for p in (path / "kernels").iterdir()] == []


@needs_root
def test_a_read_only_home_is_one_line(tmp_path: Path, programs: Path, kernel_pkg):
    with tmpfs(tmp_path / "ro", "1m") as path:
        env = linked_home(path)
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        proc = engitor("build", "-q", str(programs / "exit3"), env=env, cwd=tmp_path, timeout=120)
        one_line(proc, "read-only file system: building image exit3", str(path))
        with_new_home = engitor("images", env={"ENGITOR_HOME": str(path / "sub")}, timeout=60)
        one_line(with_new_home, "read-only file system", f"{path}/sub")


def test_a_killed_builds_staging_is_swept_by_the_next_build(fresh_home: Path, programs: Path,
                                                            tmp_path: Path):
    recipe = tmp_path / "slow.lua"
    recipe.write_text(f'image "slow" {{ program = "{programs / "exit3"}",\n'
                      '  before_build = function(ctx) sh.sleep(120) end }\n')
    build = subprocess.Popen([sys.executable, "-m", "engitor", "build", str(recipe)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        stage = wait_for(lambda: list((fresh_home / "tmp").glob("engitor-stage-*")), 120,
                         "the build's staging folder")
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
    assert isinstance(stage, list) and len(stage) == 1 and stage[0].is_dir()
    assert not list(Path("/tmp").glob(f"engitor-stage-*{build.pid}*"))
    assert stage[0].exists()  # SIGKILL: nothing could clean up
    done = engitor("build", "-q", str(programs / "exit3"), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not stage[0].exists() and list((fresh_home / "tmp").iterdir()) == []


@needs_root
def test_a_home_engitor_may_not_write_is_one_line(tmp_path: Path):
    """EACCES: root without the capabilities that bypass file modes, as an unprivileged user
    is, under a folder it may not write to."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    os.chmod(locked, 0o555)
    proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                           "--", sys.executable, "-m", "engitor", "images"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ENGITOR_HOME": str(locked / "home")})
    one_line(proc, f"permission denied: writing {locked / 'home'}")
    assert os.listdir(locked) == []


def test_each_fault_reads_as_one_line_for_people(tmp_path: Path):
    import errno

    from engitor import faults

    full = faults.explain(OSError(errno.ENOSPC, "No space left on device", "/src/file"),
                          what="storing image abc in", where=tmp_path, needed=3 * 2**20)
    assert full is not None and str(full).startswith(
        f"no space left on device: storing image abc in {tmp_path} (needs 3.0 MiB, ")
    quota = faults.explain(OSError(errno.EDQUOT, "Disk quota exceeded"), where=tmp_path)
    assert quota is not None and str(quota).startswith(
        f"disk quota exceeded: writing {tmp_path} (")
    refused = faults.explain(OSError(errno.EACCES, "Permission denied", "/x/y"), where=tmp_path)
    assert refused is not None and str(refused).startswith("permission denied: writing /x/y ")
    assert faults.explain(OSError(errno.ENOENT, "No such file", "/x")) is None
    tar = "\n".join(f"tar: ./lib/modules/{i}.ko: Cannot write: No space left on device"
                    for i in range(1147)) + "\ndpkg-deb: error: tar subprocess returned 2\n"
    assert faults.tool_errno(tar) == errno.ENOSPC
    told = faults.tool_failure(tar, what="unpacking", where=tmp_path, needed=2**30)
    assert told is not None and "\n" not in str(told) and "needs 1024.0 MiB" in str(told)
    assert faults.tool_errno("dpkg-deb: error: not a debian format archive") is None
