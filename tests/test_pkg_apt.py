"""Resolution and download with the real apt: closures, what is left out, origins, errors."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.packages import apt

SAMPLE = """\
NOTE: This is only a simulation!
Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
Inst libkrb5-3 (1.20.1-2+deb12u5 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst zlib1g [1:1.2.12] (1:1.2.13.dfsg-1 Debian:12.15/oldstable [amd64])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
"""


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One engitor home for the module: apt's package cache for our status files is built once."""
    return tmp_path_factory.mktemp("apt") / "home"


@pytest.fixture
def home(shared_home, monkeypatch):
    monkeypatch.setenv("ENGITOR_HOME", str(shared_home))
    monkeypatch.delenv("ENGITOR_APT_OPTIONS", raising=False)
    return shared_home


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGITOR_APT_OPTIONS", raising=False)
    return tmp_path / "home"


def test_parse_simulation_reads_apt_install_lines():
    assert apt.parse_simulation(SAMPLE) == [
        apt.Deb("gcc-12-base", "12.2.0-14+deb12u1", "amd64", "Debian:12.15/oldstable"),
        apt.Deb("libc6", "2.36-9+deb12u14", "amd64", "Debian:12.15/oldstable"),
        apt.Deb("libkrb5-3", "1.20.1-2+deb12u5", "amd64",
                "Debian:12.15/oldstable, Debian-Security:12/oldstable-security"),
        apt.Deb("zlib1g", "1:1.2.13.dfsg-1", "amd64", "Debian:12.15/oldstable"),
    ]
    assert apt.Deb("zlib1g", "1:1.2.13.dfsg-1", "amd64").id == "zlib1g_1%3a1.2.13.dfsg-1_amd64"


def test_argv_is_apt_over_our_own_state(own_home, monkeypatch):
    home = own_home
    monkeypatch.setenv("ENGITOR_APT_OPTIONS", "-o Acquire::http::Timeout=5")
    status = home / "status"
    home.mkdir(parents=True)
    status.write_text("")
    argv = apt.argv("apt-get", status, "-s", "install", "python3")
    assert argv[0] == "apt-get" and argv[-3:] == ["-s", "install", "python3"]
    opts = dict(a.split("=", 1) for a in argv[2:-5:2])
    assert opts["Dir::State::status"] == str(status)
    assert opts["Dir::Etc::preferences"] == str(home / "apt/preferences")
    assert opts["APT::Install-Recommends"] == "false"
    # Options of our own (other sources, say) leave the usual cache files alone.
    assert opts["Dir::Cache::pkgcache"] == opts["Dir::Cache::srcpkgcache"] == ""
    monkeypatch.delenv("ENGITOR_APT_OPTIONS")
    opts = dict(a.split("=", 1) for a in apt.argv("apt-get", status)[2::2])
    assert opts["Dir::Cache::pkgcache"] == str(home / "apt/pkgcache.bin")
    status.write_text("Package: dpkg\n")
    assert dict(a.split("=", 1) for a in apt.argv("apt-get", status)[2::2])[
        "Dir::Cache::pkgcache"] == ""
    assert argv[-5:-3] == ["-o", "Acquire::http::Timeout=5"]


def test_python3_resolves_without_what_only_an_installed_system_needs(home):
    debs, skipped = apt.resolve(["python3"])
    names = [d.package for d in debs]
    assert {"python3", "python3.11", "libpython3.11-stdlib", "libc6", "libssl3"} <= set(names)
    assert "dpkg" not in names and "dpkg" in {d.package for d in skipped}
    # What only dpkg needed is left out with it.
    assert "tar" not in names
    assert all("Debian" in d.origin for d in debs), [d.origin for d in debs]
    assert all(d.arch in ("amd64", "all") for d in debs)
    # The status file apt saw for the second pass says the skipped ones are installed.
    status = sorted((home / "apt").glob("status-*"), key=lambda p: p.stat().st_size)[-1]
    assert "Package: dpkg\nStatus: install ok installed" in status.read_text()


def test_a_recipes_skip_list_leaves_out_a_dependency_and_its_own(home):
    debs, _ = apt.resolve(["nginx"])
    assert "iproute2" in {d.package for d in debs}
    debs, skipped = apt.resolve(["nginx"], ["iproute2"])
    names = {d.package for d in debs}
    assert "iproute2" not in names and "libbpf1" not in names  # libbpf1: iproute2's alone
    assert {"iproute2", "libbpf1"} <= {d.package for d in skipped}
    assert {"nginx", "nginx-common", "libssl3"} <= names


def test_debian_is_pinned_above_other_origins(home):
    apt._prepare_state()
    proc = subprocess.run(apt.argv("apt-cache", apt._write_status(""), "policy", "python3"),
                          capture_output=True, text=True, check=True)
    assert " 900 http://deb.debian.org/debian" in proc.stdout, proc.stdout


def _local_repo(root: Path, origin: str, version: str) -> Path:
    """A flat apt repository holding one tiny package 'engitor-pin-test' at `version`."""
    repo = root / origin
    pkg = repo / "build"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        f"Package: engitor-pin-test\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: t <t@example.org>\nDescription: pin test\n")
    (pkg / "usr/share/engitor-pin-test").mkdir(parents=True)
    (pkg / "usr/share/engitor-pin-test/origin").write_text(origin)
    deb = repo / f"engitor-pin-test_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(deb)], check=True,
                   capture_output=True)
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    data = deb.read_bytes()
    (repo / "Packages").write_text(
        control + f"Filename: ./{deb.name}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    (repo / "Release").write_text(f"Origin: {origin}\nLabel: {origin}\nSuite: test\n")
    return repo


def test_a_higher_version_elsewhere_loses_to_debians(own_home, tmp_path, monkeypatch):
    """Two local repositories: 'Debian' with 1.0, 'Elsewhere' with 2.0 (as a host with
    nodesource configured has a newer nodejs): the runtime takes Debian's."""
    debian = _local_repo(tmp_path, "Debian", "1.0")
    other = _local_repo(tmp_path, "Elsewhere", "2.0")
    sources = tmp_path / "sources.list"
    sources.write_text(f"deb [trusted=yes] file:{debian} ./\ndeb [trusted=yes] file:{other} ./\n")
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (tmp_path / "parts").mkdir()
    options = (f"-o Dir::Etc::sourcelist={sources} -o Dir::Etc::sourceparts={tmp_path / 'parts'}"
               f" -o Dir::State::lists={lists}")
    monkeypatch.setenv("ENGITOR_APT_OPTIONS", options)
    apt._prepare_state()
    update = subprocess.run(apt.argv("apt-get", apt._write_status(""), "update"),
                            capture_output=True, text=True)
    assert update.returncode == 0, update.stderr
    debs, _ = apt.resolve(["engitor-pin-test"])
    assert [(d.package, d.version) for d in debs] == [("engitor-pin-test", "1.0")]
    paths = apt.download(debs)
    assert apt.deb_fields(paths[debs[0]])["Version"] == "1.0"


def test_unknown_debian_package_names_close_ones(home):
    with pytest.raises(UserError) as e:
        apt.resolve(["pyhton3"], what="package x")
    text = str(e.value)
    assert "package x: apt knows no Debian package pyhton3" in text
    assert "did you mean 'python3'" in text


def test_no_indexes_is_its_own_error(own_home, monkeypatch, tmp_path):
    (tmp_path / "none").mkdir()
    monkeypatch.setenv("ENGITOR_APT_OPTIONS", f"-o Dir::Etc::sourcelist=/dev/null "
                                              f"-o Dir::Etc::sourceparts={tmp_path / 'none'}")
    with pytest.raises(apt.NoIndexes, match="apt has no package indexes"):
        apt.resolve(["python3"])


def test_download_is_cached_and_checked(home):
    debs, _ = apt.resolve(["libffi8"])
    (ffi,) = [d for d in debs if d.package == "libffi8"]
    paths = apt.download([ffi])
    assert paths[ffi] == home / "debs" / f"{ffi.id}.deb"
    fields = apt.deb_fields(paths[ffi])
    assert (fields["Package"], fields["Version"]) == ("libffi8", ffi.version)
    assert int(fields["Installed-Size"]) > 0
    before = paths[ffi].stat().st_mtime_ns
    assert apt.download([ffi]) == paths and paths[ffi].stat().st_mtime_ns == before


def test_unreachable_archive_is_a_download_error(home, monkeypatch):
    debs, _ = apt.resolve(["libgmp10"])
    (gmp,) = [d for d in debs if d.package == "libgmp10"]
    monkeypatch.setenv("ENGITOR_APT_OPTIONS", "-o Acquire::http::Proxy=http://127.0.0.1:9")
    with pytest.raises(apt.DownloadError) as e:
        apt.download([gmp])
    assert "cannot download 1 Debian package" in str(e.value)
    assert "127.0.0.1" in e.value.apt_message
    assert apt.cached_deb(gmp) is None
