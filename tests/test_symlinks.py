"""The symbolic link policy (engitor/paths.py, SECURITY.md): links never carry a host file into
an image. In a copied tree a link is copied as a link when it points inside the tree and refused
with its path when it points outside; `**` never descends through a link to a folder (and keeps
the tree's shape); unpacked packages and kernels may hold no link leading out of their root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard
from test_pkg_cache import build_deb

from engitor import cpio, paths
from engitor.errors import UserError
from engitor.image import kernel, pipeline
from engitor.packages import cache
from engitor.packages.apt import Deb
from engitor.recipe.settings import make_image

SECRET = "/etc/passwd"  # readable by anyone, so the test means the same as root or not


@pytest.fixture
def app(tmp_path: Path, programs: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(programs / "exit3", folder / "exit3")
    return folder


def build(folder: Path, **table):
    image = make_image("app", {"program": "./exit3", **table}, base_dir=folder)
    return pipeline.build(image)


def initrd(stored) -> dict[str, tuple[int, bytes]]:
    raw = zstandard.ZstdDecompressor().decompress(stored.initrd.read_bytes())
    return {p: (m, d) for p, m, d in cpio.read_archive(raw)}


def refused(folder: Path, *needles: str, **table) -> str:
    with pytest.raises(UserError) as e:
        build(folder, **table)
    message = str(e.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# -- files and --file --------------------------------------------------------------------------

def test_a_file_that_is_a_link_out_of_the_recipe_folder_is_refused(fresh_home, app):
    (app / "notes.txt").symlink_to(SECRET)
    refused(app, "file notes.txt", SECRET, "outside", files=["notes.txt"])


def test_a_file_behind_a_folder_link_out_of_the_recipe_folder_is_refused(fresh_home, app):
    (app / "etc").symlink_to("/etc")
    refused(app, "file etc/passwd", "outside", files=["etc/passwd"])


def test_a_file_link_inside_the_recipe_folder_copies_the_file(fresh_home, app):
    (app / "v2.conf").write_text("v=2\n")
    (app / "current.conf").symlink_to("v2.conf")
    files = initrd(build(app, files=["current.conf"]))
    assert files["/current.conf"][1] == b"v=2\n"


def test_cli_file_through_a_link_is_refused_with_one_line(fresh_home, app, capsys):
    from engitor import cli
    (app / "shadow").symlink_to(SECRET)
    cwd = os.getcwd()
    os.chdir(app)
    try:
        code = cli.main(["build", "./exit3", "--file", "shadow"])
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "(hint: " in line]
    assert code == 2 and len(errors) == 1 and "file shadow: " in errors[0], err
    assert "outside" in errors[0] and "Traceback" not in err
    assert not (fresh_home / "images").exists() or not any((fresh_home / "images").iterdir())


# -- dirs ----------------------------------------------------------------------------------------

def test_a_link_in_a_dir_pointing_out_is_refused_with_its_path(fresh_home, app):
    (app / "site").mkdir()
    (app / "site/index.html").write_text("hi")
    (app / "site/passwd").symlink_to(SECRET)
    refused(app, "dir site", str(app / "site/passwd"), SECRET, dirs=["site"])


def test_a_relative_link_climbing_out_of_a_dir_is_refused(fresh_home, app):
    (app / "site/deep").mkdir(parents=True)
    (app / "outside.txt").write_text("not in site")
    (app / "site/deep/up").symlink_to("../../outside.txt")
    refused(app, "site/deep/up", dirs=["site"])


def test_links_inside_a_dir_are_copied_as_links(fresh_home, app):
    (app / "site/pages").mkdir(parents=True)
    (app / "site/pages/a.html").write_text("a")
    (app / "site/index.html").symlink_to("pages/a.html")
    (app / "site/all").symlink_to("pages")
    files = initrd(build(app, dirs=["site"]))
    assert files["/site/index.html"][0] & 0o170000 == 0o120000
    assert files["/site/index.html"][1] == b"pages/a.html"
    assert files["/site/all"][1] == b"pages" and "/site/all/a.html" not in files


def test_a_dir_named_through_a_link_out_is_refused(fresh_home, app, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (app / "site").symlink_to(tmp_path / "elsewhere")
    refused(app, "dir site", "outside", dirs=["site"])


# -- map -----------------------------------------------------------------------------------------

@pytest.fixture
def src(app: Path, tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_text("secret")
    (app / "src/a/b").mkdir(parents=True)
    (app / "src/top.txt").write_text("top")
    (app / "src/a/b/deep.txt").write_text("deep")
    (app / "src/ext").symlink_to(tmp_path / "outside")
    return app / "src"


def test_double_star_does_not_follow_folder_links_nor_flatten(fresh_home, app, src):
    files = initrd(build(app, map={"src/**/*.txt": "/data"}))
    assert files["/data/top.txt"][1] == b"top"
    assert files["/data/a/b/deep.txt"][1] == b"deep"
    assert not any("secret" in p for p in files)
    assert "/data/deep.txt" not in files


def test_a_map_matching_a_link_out_is_refused(fresh_home, app, src):
    refused(app, "map 'src/**'", str(src / "ext"), map={"src/**": "/data"})


def test_a_map_through_a_folder_link_out_is_refused(fresh_home, app, src):
    refused(app, "outside", map={"src/ext/*.txt": "/data"})


def test_glob_matches_like_glob_but_never_through_folder_links(src):
    found = [str(p.relative_to(src)) for p in paths.glob(f"{src}/**")]
    assert found == [".", "a", "a/b", "a/b/deep.txt", "ext", "top.txt"]
    assert [p.name for p in paths.glob(f"{src}/*.txt")] == ["top.txt"]


# -- unpacked packages and kernels -----------------------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_package_link_escaping_through_another_link_is_refused(home, tmp_path):
    deb = build_deb(tmp_path, "evil", "1", {"/usr/share/doc/evil/README": "x"},
                    {"/usr/up": "..", "/usr/lib/evil": "../up/../etc/shadow"})
    with pytest.raises(UserError, match=r"package evil_1_all.deb: /usr/lib/evil is a symbolic "
                                        r"link to \.\./up/\.\./etc/shadow, which leads out"):
        cache.unpack(Deb("evil", "1", "all"), deb)
    assert not (home / "packages/unpacked/evil_1_all").exists()


def test_a_package_link_climbing_above_its_root_stays_in_it(home, tmp_path):
    deb = build_deb(tmp_path, "climb", "1", {"/etc/climb.conf": "mine"},
                    {"/usr/lib/climb.conf": "../../../../../etc/climb.conf"})
    unit = cache.unpack(Deb("climb", "1", "all"), deb)
    link = unit.root / "usr/lib/climb.conf"
    assert os.readlink(link) == "../../etc/climb.conf" and link.read_text() == "mine"


def kernel_deb(tmp_path: Path, links: dict[str, str]) -> Path:
    root = tmp_path / "kernel-build"
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0-evil").write_bytes(b"\0" * 512)
    (root / "lib/modules/6.1.0-evil/kernel/drivers").mkdir(parents=True)
    (root / "lib/modules/6.1.0-evil/kernel/drivers/good.ko").write_bytes(b"\x7fELF")
    for path, target in links.items():
        os.symlink(target, root / path.lstrip("/"))
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: linux-image-6.1.0-evil\nVersion: 1\nArchitecture: amd64\n"
        "Maintainer: t <t@example.org>\nDescription: test\n")
    out = tmp_path / "linux-image-6.1.0-evil_1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True,
                   capture_output=True)
    return out


def test_a_kernel_module_that_is_a_link_to_a_host_file_is_refused(home, tmp_path):
    deb = kernel_deb(tmp_path, {"/lib/modules/6.1.0-evil/kernel/drivers/evil.ko": SECRET})
    with pytest.raises(UserError, match="kernel package linux-image-6.1.0-evil_1_amd64.deb: "
                                        "/lib/modules/6.1.0-evil/kernel/drivers/evil.ko is a "
                                        f"symbolic link to {SECRET}"):
        kernel.unpack(deb)
    assert not any((home / "kernels").glob("linux-image-6.1.0-evil*"))


def test_a_kernel_without_escaping_links_unpacks(home, tmp_path):
    deb = kernel_deb(tmp_path, {"/lib/modules/6.1.0-evil/kernel/drivers/same.ko": "good.ko"})
    assert kernel.unpack(deb).release == "6.1.0-evil"
