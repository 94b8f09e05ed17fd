"""The package cache: unpacking real .debs, merging roots with keep/drop, host copies."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from engitor.packages import cache
from engitor.packages.apt import Deb
from engitor.packages.rules import Rules


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def build_deb(tmp_path: Path, name: str, version: str, files: dict[str, str],
              links: dict[str, str] = {}) -> Path:  # noqa: B006 - read only
    """A real .deb made by dpkg-deb from a tree of `files` (path -> text) and `links`."""
    staging = tree(tmp_path / f"{name}-build", files, links)
    (staging / "DEBIAN").mkdir(parents=True)
    (staging / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nInstalled-Size: 12\n"
        f"Maintainer: t <t@example.org>\nDescription: test\n")
    out = tmp_path / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(staging), str(out)], check=True,
                   capture_output=True)
    return out


def test_unpack_makes_absolute_symlinks_relative_and_caches_by_version(home, tmp_path):
    deb = build_deb(tmp_path, "demo", "1:2.0-1", {
        "/usr/lib/demo/real.conf": "x", "/usr/share/doc/demo/README": "doc",
    }, {"/usr/bin/demo-conf": "/usr/lib/demo/real.conf", "/usr/bin/rel": "../lib/demo/real.conf"})
    d = Deb("demo", "1:2.0-1", "all", "Test")
    unit = cache.unpack(d, deb)
    assert unit.root == home / "packages/unpacked/demo_1%3a2.0-1_all/root"
    assert os.readlink(unit.root / "usr/bin/demo-conf") == "../lib/demo/real.conf"
    assert os.readlink(unit.root / "usr/bin/rel") == "../lib/demo/real.conf"
    assert (unit.root / "usr/bin/demo-conf").read_text() == "x"
    assert unit.installed_size == 12 * 1024 and len(unit.sha256) == 64
    assert cache.load_unpacked(d) == unit
    assert cache.unpack(d, deb) == unit  # once per version
    with pytest.raises(Exception, match=r"holds demo 1:2\.0-1, not demo 9"):
        cache.unpack(Deb("demo", "9", "all"), deb)


def tree(root: Path, files: dict[str, str], links: dict[str, str] = {}) -> Path:  # noqa: B006
    for path, text in files.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    for path, target in links.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / path.lstrip("/"))
    return root


def unit(root: Path, name: str) -> cache.Unpacked:
    return cache.Unpacked(Deb(name, "1", "all"), root, 0, name, "archive")


def test_merge_applies_rules_links_files_and_drops_dangling_symlinks(home, tmp_path):
    a = tree(tmp_path / "a", {
        "/usr/bin/tool": "v1", "/usr/share/doc/a/README": "doc" * 100,
        "/usr/share/doc/a/keep.txt": "kept", "/usr/include/a.h": "h",
        "/usr/lib/libA.a": "static", "/usr/lib/libA.so.1.2": "so",
    }, {"/usr/lib/libA.so.1": "libA.so.1.2", "/usr/bin/docs": "../share/doc/a/README",
        "/usr/bin/gone": "../../etc/alternatives/x", "/usr/lib/current": "jvm",
        "/usr/bin/chain": "docs"})
    (a / "usr/lib/jvm").mkdir()
    (a / "usr/lib/jvm/bin").write_text("j")
    b = tree(tmp_path / "b", {"/usr/bin/tool": "v2", "/etc/app.conf": "c"})
    rules = Rules.make(keep=("/usr/share/doc/a/keep.txt",), drop=("/etc/app.conf",))
    root = cache.merge([unit(a, "a"), unit(b, "b")], rules)
    files = cache.files(root.path)
    assert (root.path / "usr/bin/tool").read_text() == "v2"  # later package wins
    assert os.stat(root.path / "usr/lib/libA.so.1.2").st_ino == \
        os.stat(a / "usr/lib/libA.so.1.2").st_ino  # hard links, not copies
    assert os.readlink(root.path / "usr/lib/libA.so.1") == "libA.so.1.2"
    assert os.readlink(root.path / "usr/lib/current") == "jvm"  # a link to a folder stays one
    assert (root.path / "usr/share/doc/a/keep.txt").read_text() == "kept"
    for dropped in ("/usr/share/doc/a/README", "/usr/include/a.h", "/usr/lib/libA.a",
                    "/etc/app.conf", "/usr/bin/docs", "/usr/bin/gone", "/usr/bin/chain"):
        assert dropped not in files, dropped
    assert root.dangling == 3  # docs (its target dropped), gone (never there), chain (to docs)
    assert root.dropped_bytes == 300 + 1 + 6 + 1
    assert root.bytes == sum(p.stat().st_size for p in files.values()
                             if p.is_file() and not p.is_symlink())
    assert set(files) >= {"/usr", "/usr/bin", "/usr/lib/jvm/bin", "/usr/lib/libA.so.1"}
    again = cache.merge([unit(a, "a"), unit(b, "b")], rules)
    assert again == root  # cached by packages and rules
    other = cache.merge([unit(a, "a"), unit(b, "b")], Rules.make())
    assert other.path != root.path and (other.path / "usr/share/doc").exists() is False


def test_relative_symlinks_keeps_lookups_inside_the_tree(tmp_path):
    root = tree(tmp_path / "r", {"/etc/alternatives/java": "#"},
                {"/usr/bin/java": "/etc/alternatives/java", "/lib64/ld.so": "/lib/x/ld.so"})
    cache.relative_symlinks(root)
    assert os.readlink(root / "usr/bin/java") == "../../etc/alternatives/java"
    assert os.readlink(root / "lib64/ld.so") == "../lib/x/ld.so"
    assert (root / "usr/bin/java").resolve() == (root / "etc/alternatives/java").resolve()


def test_host_copy_of_an_installed_package(home):
    """zlib1g as this host has it: files copied, folders that are symlinks on a usr-merged host
    (/lib) kept as folders, symlinks made relative."""
    version = cache.host_version("zlib1g", "amd64")
    assert version is not None
    unit = cache.from_host(Deb("zlib1g", "0-not-this-one", "amd64", "Debian"))
    assert unit is not None and unit.source == "host"
    assert unit.deb.version == version[0] and unit.deb.origin == "this host's installed files"
    listed = subprocess.run(["dpkg-query", "-L", "zlib1g:amd64"], capture_output=True,
                            text=True, check=True).stdout.split()
    libs = [p for p in listed if "/libz.so." in p]
    assert libs
    for guest in libs:
        copy = unit.root / guest.lstrip("/")
        assert copy.exists(), guest
        assert copy.resolve().is_relative_to(unit.root.resolve())
        assert copy.read_bytes() == Path(guest).read_bytes()
    top = Path(libs[0]).parts[1]  # "lib" or "usr"
    assert (unit.root / top).is_dir() and not (unit.root / top).is_symlink()
    assert cache.from_host(Deb("zlib1g", "x", "amd64")) == unit
    assert cache.from_host(Deb("engitor-no-such-package", "1", "all")) is None
