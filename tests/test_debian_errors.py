"""Bad input about users and Debian packages: one line with a hint, exit 2, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_errors import check_one_line, nothing_stored, run

from engitor import home


@pytest.fixture
def deb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_pkg) -> Path:
    """A fresh store sharing the kernels, compile cache, apt's state and the Debian package
    caches of the real home."""
    real = home.home()
    h = tmp_path / "home"
    h.mkdir()
    for name in ("kernels", "cache", "apt", "debs", "packages"):
        (h / name).symlink_to(real / name)
    monkeypatch.setenv("ENGITOR_HOME", str(h))
    return h


def test_unknown_user(fresh_home: Path, tmp_path: Path, programs: Path):
    line = check_one_line(run(fresh_home, "build", "--user", "www-dat", str(programs / "exit3"),
                              cwd=tmp_path), "user 'www-dat' does not exist")
    assert "www-data" in line  # did you mean
    nothing_stored(fresh_home)


def test_unknown_group(fresh_home: Path, tmp_path: Path, programs: Path):
    check_one_line(run(fresh_home, "build", "--user", "nobody:nosuchgroup",
                       str(programs / "exit3"), cwd=tmp_path), "group 'nosuchgroup'")
    nothing_stored(fresh_home)


def test_unknown_debian_package(deb_home: Path, tmp_path: Path):
    check_one_line(run(deb_home, "build", "-q", "--deb", "memcachd", "/usr/bin/memcached",
                       cwd=tmp_path), "apt knows no Debian package memcachd", "memcached")
    nothing_stored(deb_home)


def test_program_not_in_the_debian_packages(deb_home: Path, tmp_path: Path):
    check_one_line(run(deb_home, "build", "-q", "--deb", "memcached", "/usr/bin/memcache",
                       cwd=tmp_path), "program /usr/bin/memcache is not in the Debian packages")
    nothing_stored(deb_home)


def test_user_a_package_would_create_is_known_only_with_it(deb_home: Path, tmp_path: Path):
    check_one_line(run(deb_home, "build", "-q", "--deb", "memcached", "--user", "memcach",
                       "/usr/bin/memcached", cwd=tmp_path), "user 'memcach'", "memcache")
    nothing_stored(deb_home)


def test_the_same_flags_spelt_right_build(deb_home: Path, tmp_path: Path):
    """The control: --deb and --user as a user types them, on a host without memcached."""
    proc = run(deb_home, "build", "-q", "--deb", "memcached", "--user", "memcache",
               "/usr/bin/memcached", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()[-1]) == 64  # the image id
