"""Package images without booting: what prepare() hands the builder, and what gets built.

These use engitor's normal home, so the package cache is shared with the VM tests (the first
run on a clean machine downloads python3's packages from Debian)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from engitor import packages
from engitor.errors import UserError
from engitor.image import pipeline
from engitor.recipe.model import MiB
from engitor.recipe.settings import make_image


@pytest.fixture(scope="module")
def python3():
    return packages.prepare(make_image("py", {"package": "python3"}))


def test_prepare_gives_a_root_the_image_and_the_files(python3):
    tree = python3
    assert tree.recipe.name == "python3"
    assert (tree.root / "usr/bin/python3").is_symlink()
    assert (tree.root / "usr/lib/python3.11/http/server.py").is_file()
    assert tree.image.program == "/usr/bin/python3" and tree.image.package == "python3"
    assert tree.image.env == {"PYTHONUNBUFFERED": "1"}
    assert tree.files["/usr/lib/python3.11/http/server.py"] == \
        tree.root / "usr/lib/python3.11/http/server.py"
    assert not any(p.startswith(("/usr/share/doc/", "/usr/share/man/", "/usr/include/"))
                   for p in tree.files)
    names = {u.deb.package for u in tree.units}
    assert {"python3", "libpython3.11-stdlib", "libc6"} <= names and "dpkg" not in names
    assert all(u.source == "archive" for u in tree.units)


def test_the_packages_args_come_first_and_the_images_env_wins(tmp_path):
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "static").mkdir()
    (tmp_path / "static/index.html").write_text("x")
    image = make_image("app", {"package": "python3", "args": ["-u", "app.py", "static", "-m",
                                                               "http.server", "..", "."],
                               "env": {"PYTHONUNBUFFERED": "0", "MODE": "x"}},
                       base_dir=tmp_path)
    tree = packages.prepare(image)
    assert tree.image.args == ("-u", "app.py", "static", "-m", "http.server", "..", ".")
    assert tree.image.env == {"PYTHONUNBUFFERED": "0", "MODE": "x"}
    assert tree.image.files == ("app.py",) and tree.image.dirs == ("static",)


def test_a_missing_script_is_named(tmp_path):
    image = make_image("app", {"package": "python3", "args": ["nope.py"]}, base_dir=tmp_path)
    with pytest.raises(UserError, match=r"script nope.py: no such file \(hint: paths are relative"):
        packages.prepare(image)


def test_too_little_memory_for_the_runtime_is_refused_before_building(python3):
    image = make_image("py", {"package": "python3", "memory": "64M"})
    need = packages.min_memory(python3.recipe, python3.info)
    assert 64 * MiB < need <= 256 * MiB
    with pytest.raises(UserError, match=f"package python3 needs at least {need // MiB}M of "
                                        "guest memory; image 'py' has 64M"):
        packages.prepare(image)


def test_an_images_own_program_inside_the_package(tmp_path):
    image = make_image("doc", {"package": "python3", "program": "/usr/bin/python3.11",
                               "args": ["-V"]}, base_dir=tmp_path)
    tree = packages.prepare(image)
    assert tree.image.program == "/usr/bin/python3.11" and tree.image.args == ("-V",)


def test_a_built_package_image_holds_each_file_once(tmp_path):
    """The ELF closure of a package's program comes from the package itself: no host library,
    and no second copy of a library reached through its soname link."""
    (tmp_path / "app.py").write_text("print('hi')\n")
    image = make_image("pyapp", {"package": "python3", "args": ["app.py"]}, base_dir=tmp_path)
    lines: list[str] = []
    stored = pipeline.build(image, log=lines.append)
    manifest = stored.manifest
    assert manifest["program"] == "/usr/bin/python3"
    assert manifest["argv"] == ["/usr/bin/python3", "app.py"]
    assert manifest["env"]["PYTHONUNBUFFERED"] == "1"
    kinds = {f["path"]: f.get("kind") for f in manifest["files"]}
    assert kinds["/app.py"] == "files"
    assert "libraries" not in manifest["sizes"], manifest["sizes"]
    links = {f["path"]: f["symlink"] for f in manifest["files"] if "symlink" in f}
    assert links["/usr/bin/python3"] == "python3.11"
    digests = [f["sha256"] for f in manifest["files"] if "sha256" in f and f["size"] > 4096]
    assert len(digests) == len(set(digests)), "a large file is in the image twice"
    assert any(line.startswith("package python3: python3 ") for line in lines)
    # Deterministic: the same inputs give the same image.
    assert pipeline.build(image).id == stored.id


def test_program_globs_must_name_one_file(tmp_path, monkeypatch):
    folder = tmp_path / "packages"
    folder.mkdir()
    (folder / "py-glob.lua").write_text(
        'package "py-glob" { debs = {"python3"}, program = "/usr/bin/py*3.11" }')
    (folder / "py-one.lua").write_text(
        'package "py-one" { debs = {"python3"}, program = "/usr/bin/python3*" }')
    (folder / "py-none.lua").write_text(
        'package "py-none" { debs = {"python3"}, program = "/usr/bin/ruby*" }')
    monkeypatch.setenv("ENGITOR_PACKAGES", str(folder))
    with pytest.raises(UserError, match=r"py-glob.lua:1: package py-glob: program "
                                        r"/usr/bin/py\*3.11 matches [2-9] files"):
        packages.prepare(make_image("x", {"package": "py-glob"}))
    # python3 is a symlink to python3.11: two names of one file are one match, the real name.
    assert packages.prepare(make_image("x", {"package": "py-one"})).image.program == \
        "/usr/bin/python3.11"
    with pytest.raises(UserError, match="matches nothing"):
        packages.prepare(make_image("x", {"package": "py-none"}))
    # The resolution is cached per package name: each of these resolved once.
    assert json.loads(packages.cache.resolved_path("py-one").read_text())["apt_key"] == \
        {"debs": ["python3"], "skip": []}


def test_merged_root_has_no_absolute_symlinks(python3):
    for guest, host in python3.files.items():
        if stat.S_ISLNK(host.lstat().st_mode):
            target = os.readlink(host)
            assert not target.startswith("/"), (guest, target)
            assert Path(os.path.realpath(host)).is_relative_to(python3.root.resolve())


def test_the_trust_store_is_made_and_openssls_default_file_reaches_it(python3):
    """ca-certificates' postinst never runs; engitor makes its bundle, so openssl's own
    /usr/lib/ssl/cert.pem link (OpenSSL's default CA file) is not dropped as dangling."""
    tree = python3
    assert "ca-certificates" in {u.deb.package for u in tree.units}
    bundle = tree.root / "etc/ssl/certs/ca-certificates.crt"
    assert "/etc/ssl/certs/ca-certificates.crt" in tree.files
    assert "/usr/lib/ssl/cert.pem" in tree.files
    assert (tree.root / "usr/lib/ssl/cert.pem").resolve() == bundle.resolve()
    crts = list((tree.root / "usr/share/ca-certificates").rglob("*.crt"))
    assert len(crts) > 100
    assert bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----") == len(crts)
