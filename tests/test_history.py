"""Images with a history (issue 17), without booting: names' logs, inspect, history, diff,
rollback, tag, rmi, prune, signatures, the Lua image objects, and bad input.

Each test builds a small real recipe (the example C web server and a folder of pages) in an
empty home, through the real CLI in a child process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from support import engitor

from engitor import cpio, home, reflog, store
from engitor.catalog import diff, index, sign
from engitor.image import licenses, record
from engitor.recipe.model import Accel, MiB
from engitor.vm import initrd

RECIPE = """
image "site" {
  program = "server",
  args = {"-port", 8080, "-root", "/www", "-name", "site"},
  dirs = {"www"},
  ports = {8080},
  memory = "128M",
}
"""


@pytest.fixture
def site(fresh_home: Path, programs: Path, tmp_path: Path) -> Path:
    d = tmp_path / "site"
    (d / "www").mkdir(parents=True)
    shutil.copy(programs / "server", d / "server")
    (d / "www" / "index.html").write_text("version one\n")
    (d / "www" / "about.html").write_text("about\n")
    (d / "site.lua").write_text(RECIPE)
    return d


def build(site: Path) -> str:
    return engitor("build", "-q", str(site / "site.lua"), check=True).stdout.strip()


def two_builds(site: Path) -> tuple[str, str]:
    first = build(site)
    (site / "www" / "index.html").write_text("version two, longer\n")
    second = build(site)
    assert first != second
    return first, second


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("engitor: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_history_diff_and_rollback_of_a_rebuilt_recipe(site: Path):
    first, second = two_builds(site)
    out = engitor("history", "site", check=True).stdout.splitlines()
    assert out[1].split()[:2] == ["~0", second[:12]] and out[1].endswith("build     1 changed")
    assert out[2].split()[:2] == ["~1", first[:12]] and out[2].endswith("first build")
    assert len(out) == 3

    stat = engitor("diff", "site~1", "site", check=True).stdout
    assert " M /www/index.html | 12 B -> 20 B" in stat
    assert "about.html" not in stat
    assert stat.splitlines()[-1].startswith(" 1 file changed, 0 added, 0 removed; 8 B more")
    data = json.loads(engitor("diff", first, second, "--json", check=True).stdout)
    assert data["files"] == [{"path": "/www/index.html", "status": "M", "old_size": 12,
                              "new_size": 20}]

    assert engitor("rollback", "site", check=True).stdout == f"site -> {first[:12]}\n"
    assert store.tags()["site"] == first
    steps = json.loads(engitor("history", "site", "--json", check=True).stdout)
    assert [(s["id"], s["why"]) for s in steps] == [(first, "rollback"), (second, "build"),
                                                    (first, "build")]
    # the log is the file the brief describes: time, old, new, why
    log = [json.loads(line) for line in (reflog.logs_dir() / "site").read_text().splitlines()]
    assert [(e["old"], e["new"], e["why"]) for e in log] == [
        (None, first, "build"), (first, second, "build"), (second, first, "rollback")]
    assert engitor("rollback", "site", second[:10], check=True).returncode == 0
    assert store.tags()["site"] == second

    one_line_error(engitor("rollback", "site", "~4"), "4 builds", "past the first")
    one_line_error(engitor("rollback", "nosuch"), "no image named 'nosuch'")
    one_line_error(engitor("rollback", "site", "~x"), "not ~N")


def test_unknown_and_ambiguous_ids_and_prune_during_a_build(site: Path, kernel_pkg):
    build(site)
    one_line_error(engitor("inspect", "deadbeef"), "no image named 'deadbeef'")
    one_line_error(engitor("diff", "site", "0123456789"), "no image named")
    # Enough images that two ids share a first hex digit (17 > 16 digits).
    for i in range(17):
        store.put(kernel=kernel_pkg.vmlinuz, kernel_sha=kernel_pkg.sha256,
                  initrd=cpio.compress(cpio.archive({})), cmdline=f"console=ttyS0 n={i}",
                  manifest={"name": f"n{i}"})
    ids = [img.id for _, img in store.listing()]
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    one_line_error(engitor("inspect", shared), "ambiguous")
    one_line_error(engitor("rmi", shared), "ambiguous")
    with reflog.building():  # what every build holds from its first step to its tag
        one_line_error(engitor("prune"), "while a build is running")
        one_line_error(engitor("rmi", "site"), "while a build is running")
    assert engitor("prune", "--dry-run", check=True).returncode == 0
    one_line_error(engitor("prune", "--keep", "soon"), "not an age")


def test_inspect_shows_what_the_image_holds(site: Path):
    iid = build(site)
    d = json.loads(engitor("inspect", "site", "--json", check=True).stdout)
    assert d["id"] == iid and d["names"] == ["site"]
    assert d["executables"] == ["/init", "/server"]  # one program and engitor's init
    assert d["shell"] == [] and d["scripts"] == []
    assert d["libraries"] >= 2  # libc and the dynamic loader
    files = {f["path"]: f for f in d["files"]}
    assert files["/www/index.html"]["mode"] == "644" and files["/www/index.html"]["size"] == 12
    assert files["/server"]["exec"] == "program" and files["/server"]["mode"] == "755"
    users = {u["name"]: u for u in d["users"]}  # Debian's base users, as every image has them
    assert users["root"]["uid"] == 0 and users["nobody"]["uid"] == 65534
    assert d["ports"] == ["8080"] and d["memory"] == 128 * 2**20
    assert d["kernel"]["package"].startswith("linux-image-")
    assert d["cmdline"].startswith("console=ttyS0")
    assert d["memory_floor_source"] == "estimated" and 64 * 2**20 <= d["memory_floor"] <= 128 * 2**20
    assert d["packages"] == [] and d["size"] == store.get(iid).size()  # type: ignore[union-attr]
    text = engitor("inspect", iid[:8], check=True).stdout
    assert "executables 2: /init, /server;" in text and "shell: none" in text
    # An image built before manifests held the index is read from its initramfs.
    path = store.images_dir() / iid / "manifest.json"
    old = json.loads(path.read_text())
    for key in ("files", "format", "users", "run", "packages"):
        old.pop(key)
    path.write_text(json.dumps(old))
    again = json.loads(engitor("inspect", "site", "--json", check=True).stdout)
    assert {f["path"]: f.get("sha256") for f in again["files"]} == \
        {p: f.get("sha256") for p, f in files.items()}
    assert again["executables"] == ["/init", "/server"] and again["users"] is None
    assert "not recorded" in engitor("inspect", "site", check=True).stdout


def test_prune_frees_an_untagged_image_and_keeps_named_ones(site: Path):
    first, second = two_builds(site)
    # The replaced build is still in site's log: kept by default, as git keeps reflog entries.
    out = engitor("prune", check=True).stdout
    assert first[:12] not in out and store.get(first) is not None
    dry = engitor("prune", "--keep", "0", "--dry-run", check=True).stdout
    assert f"would remove image {first[:12]}" in dry and store.get(first) is not None
    size = store.get(first).size()  # type: ignore[union-attr]
    initrd = (store.images_dir() / first / "initrd").stat().st_size
    out = engitor("prune", "--keep", "0", check=True).stdout
    assert f"removed image {first[:12]}" in out and store.get(first) is None
    freed = int(out.strip().splitlines()[-1].split("(")[1].split()[0])
    assert initrd <= freed < size  # the kernel is a hard link the kernel cache keeps
    assert store.get(second) is not None and store.tags()["site"] == second
    steps = json.loads(engitor("history", "site", "--json", check=True).stdout)
    assert steps[1]["size"] is None and steps[0]["changes"] == "(pruned)"
    one_line_error(engitor("rollback", "site"), "was pruned")
    # tag and rmi: a second name keeps the image; removing both removes it
    assert engitor("tag", "site", "copy", check=True).stdout == f"copy -> {second[:12]}\n"
    assert "stays as copy" in engitor("rmi", "site", check=True).stdout
    assert "removed" in engitor("rmi", "copy", check=True).stdout
    assert store.get(second) is None and store.tags() == {}
    assert engitor("history", "site", check=True).stdout.startswith(
        "site points at no image since ")
    one_line_error(engitor("tag", second, "x"), "no image named")


def test_a_tampered_image_fails_verify(site: Path, tmp_path: Path):
    iid = build(site)
    one_line_error(engitor("verify", "site"), "no public key")
    signed = engitor("sign", "site", check=True)
    assert "made a signing key" in signed.stderr
    key = home.home() / "keys" / "engitor.key"
    assert key.stat().st_mode & 0o777 == 0o600
    ok = engitor("verify", "site", check=True).stdout
    assert ok.startswith(f"image {iid[:12]}: good signature (") and f"image:{iid}" in ok
    # minisign itself accepts the signature: the formats are its own
    folder = store.images_dir() / iid
    proc = subprocess.run(["minisign", "-V", "-m", "SHA256SUMS", "-p", str(key.with_suffix(".pub"))],
                          cwd=folder, capture_output=True, text=True)
    assert proc.returncode == 0 and "Signature and comment signature verified" in proc.stdout
    # A key made by minisign signs too (unencrypted: -W).
    subprocess.run(["minisign", "-G", "-W", "-p", str(tmp_path / "m.pub"), "-s",
                    str(tmp_path / "m.key")], check=True, capture_output=True)
    assert engitor("sign", "site", "--key", str(tmp_path / "m.key"), check=True)
    assert engitor("verify", "site", "--pub", str(tmp_path / "m.pub"), check=True)
    one_line_error(engitor("verify", "site"), "signed by another key")
    # The unpacked copy a TCG boot loads is held to the signed initrd too.
    copy = initrd.for_boot(store.get(iid), 512 * MiB, Accel.TCG, print)
    assert copy == folder / initrd.UNPACKED_NAME
    assert engitor("verify", "site", "--pub", str(tmp_path / "m.pub"), check=True)
    unpacked = bytearray(copy.read_bytes())
    unpacked[len(unpacked) // 2] ^= 1
    copy.write_bytes(bytes(unpacked))
    one_line_error(engitor("run", "--verify", "--pub", str(tmp_path / "m.pub"), "site"),
                   "is not its signed initrd unpacked")
    copy.unlink()

    raw = bytearray((folder / "initrd").read_bytes())
    raw[len(raw) // 2] ^= 1
    (folder / "initrd").write_bytes(bytes(raw))
    one_line_error(engitor("verify", "site", "--pub", str(tmp_path / "m.pub")),
                   "changed after signing")
    one_line_error(engitor("run", "--verify", "--pub", str(tmp_path / "m.pub"), "site"),
                   "changed after signing")
    (site / "www" / "index.html").write_text("unsigned\n")
    build(site)
    one_line_error(engitor("run", "--verify", "site"), "is not signed")


def test_images_as_lua_objects(site: Path):
    from engitor.shell.session import Session

    first, second = two_builds(site)
    out, err = io.StringIO(), io.StringIO()
    shell = Session(out=out, err=err, cwd=site, interactive=False)
    script = f"""
      local imgs = engitor.images()
      print(#imgs, imgs[1].short, imgs[1].name)
      local now = engitor.image("site")
      local d = now:diff(engitor.image("{first[:12]}"))
      print(d.summary, d.files[1].path, d.files[1].status, d.files[1].old_size)
      local h = now:history()
      print(#h, h[1].short, h[1].changes, h[2].changes)
      print(tostring(now):match("^<image site"))
      print(#now:inspect().executables)
    """
    assert shell.execute(script), err.getvalue()
    assert out.getvalue().splitlines() == [
        f"2\t{second[:12]}\tsite", "1 changed\t/www/index.html\tM\t20",
        f"2\t{second[:12]}\t1 changed\tfirst build", "<image site", "2"]
    assert not shell.execute('engitor.image("nosuch")')
    assert "no image named 'nosuch'" in err.getvalue()


# ---------------------------------------------------------------------------------------------
# pure functions

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Other
License: Expat or BSD-3-clause

Files: odd/*
Copyright: 2022 Third
License: GPL-2+ with OpenSSL exception

License: GPL-2+ with OpenSSL exception
 This program is free software ...
 .
 As a special exception ...
"""


def test_dep5_licences_become_spdx_expressions():
    lic = licenses.from_copyright(DEP5)
    assert lic is not None
    assert lic.expression == ("GPL-2.0-or-later AND (MIT OR BSD-3-Clause) AND "
                              "LicenseRef-GPL-2-with-OpenSSL-exception")
    assert lic.texts["LicenseRef-GPL-2-with-OpenSSL-exception"].startswith(
        "This program is free software ...\n\nAs a special exception")
    assert licenses.from_copyright("This is free software, see /usr/share/common-licenses") is None
    assert licenses.spdx_id("LGPL-2.1+") == "LGPL-2.1-or-later"
    assert licenses.spdx_id("GPL-3") == "GPL-3.0-only"
    assert licenses.spdx_id("PSF-2") == "Python-2.0"
    assert licenses.spdx_id("public-domain") is None


def test_executables_are_told_apart(programs: Path):
    server = (programs / "server").read_bytes()[:record.HEAD]
    assert record.exec_kind(server, 0o755, "/server") == "program"
    assert record.exec_kind(server, 0o644, "/server") is None  # not executable: data
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes()[:record.HEAD]
    assert record.exec_kind(libc, 0o755, "/lib/x86_64-linux-gnu/libc.so.6") == "library"
    assert record.exec_kind(b"#!/bin/sh\n", 0o755, "/run.sh") == "script"
    assert record.users(b"root:x:0:0:root:/:/nonexistent\nbad line\n") == [
        {"name": "root", "uid": 0, "gid": 0, "home": "/", "shell": "/nonexistent"}]


def test_memory_floor_estimate_matches_the_measured_floor():
    # ARCHITECTURE.md: a 14 MB vmlinuz and a ~1 MB initramfs boot at 80 MB, not below.
    assert index.memory_floor_estimate(14_000_000, 1_100_000, 2_600_000) == 80 * 2**20
    assert index.memory_floor({"memory_floor": 96 * 2**20}) == (96 * 2**20, "recorded")


def test_diff_stat_and_summary():
    a = [index.File("/a", 0o644, 10, "x"), index.File("/b", 0o644, 5, "y"),
         index.File("/l", 0o777, 3, symlink="a")]
    b = [index.File("/a", 0o644, 30, "z"), index.File("/c", 0o755, 7, "w"),
         index.File("/l", 0o777, 3, symlink="a")]
    changes = diff.files(a, b)
    assert [(c.path, c.status) for c in changes] == [("/a", "M"), ("/b", "D"), ("/c", "A")]
    assert diff.summary(changes) == "+1 file, 1 changed, -1 file"
    assert diff.summary([]) == "no change"
    lines = diff.stat_lines(changes, diff.packages([{"name": "p", "version": "1"}],
                                                   [{"name": "p", "version": "2"}]))
    assert lines[0] == " M /a | 10 B -> 30 B +++++++++++++"
    assert lines[3] == " package p: 1 -> 2"
    assert lines[-1] == (" 3 files changed, 1 added, 1 removed; 27 B more, 5 B less, "
                         "1 package changed")


def test_signing_keys_round_trip(tmp_path: Path):
    key = sign.generate()
    sign.write_key(key, tmp_path / "k.key")
    assert sign.read_secret(tmp_path / "k.key") == key
    assert sign.read_public(tmp_path / "k.pub") == sign.Key(key.key_id, key.public)


def test_prune_collects_caches_and_dead_staging_folders(fresh_home: Path, tmp_path: Path):
    """The package cache's layout (engitor/packages/cache.py) with what a resolution uses and
    what nothing uses; staging folders of a live and of a dead build."""
    pk = fresh_home / "packages"
    used, unused = "libfoo1_1.0-1_amd64", "libfoo1_0.9-1_amd64"
    for ident in (used, unused):
        (pk / "unpacked" / ident / "root" / "usr/lib").mkdir(parents=True)
        (pk / "unpacked" / ident / "root/usr/lib/libfoo.so.1").write_bytes(b"\0" * 5000)
    (pk / "resolved").mkdir()
    (pk / "resolved" / "foo.json").write_text(json.dumps({"packages": [
        {"package": "libfoo1", "version": "1.0-1", "arch": "amd64", "source": "archive"}]}))
    for ident, packages in (("r-used", [used]), ("r-old", [unused])):
        (pk / "roots" / ident / "root").mkdir(parents=True)
        (pk / "roots" / ident / "root.json").write_text(json.dumps({"packages": packages}))
    (fresh_home / "debs").mkdir()
    (fresh_home / "debs" / f"{used}.deb").write_bytes(b"!" * 3000)
    dead = subprocess.Popen(["true"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    live_dir = tmp / f"engitor-stage-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    dead_dir = tmp / f"engitor-stage-{dead.pid}-{uuid.uuid4().hex[:8]}"
    for d in (live_dir, dead_dir):
        (d / "root").mkdir(parents=True)
    try:
        out = engitor("prune", check=True).stdout
        assert f"removed package {pk / 'unpacked' / unused}" in out
        assert f"removed runtime root {pk / 'roots' / 'r-old'}" in out
        assert f"removed staging {dead_dir}" in out and not dead_dir.exists()
        assert (pk / "unpacked" / used).is_dir() and (pk / "roots" / "r-used").is_dir()
        assert not (fresh_home / "debs" / f"{used}.deb").exists()
        assert live_dir.is_dir() and str(live_dir) not in out
        freed = int(out.strip().splitlines()[-1].split("(")[1].split()[0])
        assert freed >= 5000 + 3000
        assert "removed package" in engitor("prune", "--all", check=True).stdout
        assert not (pk / "unpacked" / used).exists()
    finally:
        shutil.rmtree(live_dir, ignore_errors=True)
        shutil.rmtree(dead_dir, ignore_errors=True)


def test_keygen_writes_a_key_pair_once(tmp_path: Path):
    out = engitor("keygen", "--key", str(tmp_path / "k.key"), check=True).stdout
    assert out == f"secret key {tmp_path / 'k.key'}\npublic key {tmp_path / 'k.pub'}\n"
    assert sign.read_public(tmp_path / "k.pub").key_id == \
        sign.read_secret(tmp_path / "k.key").key_id
    one_line_error(engitor("keygen", "--key", str(tmp_path / "k.key")), "exists")


def test_prune_removes_kernels_no_image_uses(site: Path, fresh_home: Path, kernel_pkg):
    """A kernel cache of its own (not linked to the real home's): the kernel the images use
    (and the name pins) stays, an unused one goes."""
    from engitor.image import kernel

    (fresh_home / "kernels").unlink()
    (fresh_home / "kernels").mkdir()
    (fresh_home / "kernels" / kernel_pkg.root.name).symlink_to(kernel_pkg.root)
    shutil.copy(kernel_pkg.root.parent / "names.json", fresh_home / "kernels" / "names.json")
    build(site)
    old = fresh_home / "kernels" / "linux-image-old_1.0_0000"
    (old / "boot").mkdir(parents=True)
    (old / "boot" / "vmlinuz-1.0-old").write_bytes(b"\0" * 4096)
    (old / "kernel.json").write_text(json.dumps({"package": "linux-image-old", "version": "1.0",
                                                 "sha256": "0" * 64, "release": "1.0-old"}))
    assert {k.root.name for k in kernel.cached()} == {kernel_pkg.root.name, old.name}
    out = engitor("prune", check=True).stdout
    assert f"removed kernel {old}" in out and not old.exists()
    assert kernel_pkg.root.name not in out
    assert (fresh_home / "kernels" / kernel_pkg.root.name).exists()
