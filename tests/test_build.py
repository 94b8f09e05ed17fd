"""Building images for real: kernel modules, the guest init, determinism, the store."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

from engitor import cpio, home, store
from engitor.errors import UserError
from engitor.image import elf, kmod, pipeline
from engitor.image import init as guest_init
from engitor.recipe.settings import make_image


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if not p.is_symlink() and p.is_file()}


# ---- kernel modules --------------------------------------------------------------------------

def test_virtio_net_closure_in_load_order(kernel_pkg):
    names = [m.name for m in kmod.resolve(kernel_pkg.modules_dir, ["virtio_mmio", "virtio-net"])]
    for dep, user in [("virtio_ring", "virtio"), ("virtio", "virtio_mmio"),
                      ("failover", "net_failover"), ("net_failover", "virtio_net")]:
        assert names.index(dep) < names.index(user)
    assert len(names) == len(set(names))


def test_every_module_dependency_comes_first(kernel_pkg):
    mods = kmod.resolve(kernel_pkg.modules_dir, list(pipeline.BASE_MODULES) + ["virtio_blk"])
    loaded: set[str] = set()
    for m in mods:
        assert set(m.depends) <= loaded, (m.name, m.depends)
        loaded.add(m.name)


def test_unknown_module(kernel_pkg):
    with pytest.raises(UserError) as e:
        kmod.resolve(kernel_pkg.modules_dir, ["virtio_nett"])
    assert "virtio_nett not found" in e.value.message and "virtio_net" in (e.value.hint or "")


# ---- the guest init --------------------------------------------------------------------------

def test_init_is_a_small_static_binary_built_once():
    path = guest_init.binary()
    info = elf.read_elf(path)
    assert info.static and info.machine == "EM_X86_64"
    assert path.stat().st_size < 200_000
    mtime = path.stat().st_mtime_ns
    assert guest_init.binary() == path and path.stat().st_mtime_ns == mtime


def test_init_config_escapes_newlines_and_backslashes():
    cfg = guest_init.InitConfig(argv=("/app", "two\nlines", "back\\slash", ""),
                                env=(("K", "v=1"),), workdir="/srv", hostname="web",
                                modules=("/lib/modules/x/a.ko",), stop_timeout=7)
    assert cfg.render().decode().splitlines() == [
        "arg /app", "arg two\\nlines", "arg back\\\\slash", "arg ", "env K=v=1",
        "module /lib/modules/x/a.ko", "cwd /srv", "hostname web", "stop_timeout 7",
        "addr 10.0.2.15/24", "gateway 10.0.2.2"]


# ---- whole builds ----------------------------------------------------------------------------

def build(program: Path | str, base_dir: Path | None = None, **table) -> store.StoredImage:
    return pipeline.build(make_image("app", {"program": str(program), **table},
                                     base_dir=base_dir or Path(program).parent))


def initrd_files(image: store.StoredImage) -> dict[str, tuple[int, bytes]]:
    raw = zstandard.ZstdDecompressor().decompress(image.initrd.read_bytes())
    return {p: (m, d) for p, m, d in cpio.read_archive(raw)}


def test_image_contents(fresh_home: Path, programs: Path, tmp_path: Path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site/index.html").write_text("<h1>hi</h1>")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/a.conf").write_text("a=1\n")
    (tmp_path / "notes.txt").write_text("n")
    prog = tmp_path / "exit3"
    prog.write_bytes((programs / "exit3").read_bytes())
    prog.chmod(0o755)
    image = build("exit3", base_dir=tmp_path, files=["notes.txt"], dirs=["site"], map={"conf/*.conf": "/etc/app"},
                  env={"GREETING": "hi"}, args=["one"])
    files = initrd_files(image)
    for path in ("/init", "/.engitor/init", "/exit3", "/notes.txt", "/site/index.html",
                 "/etc/app/a.conf", "/lib64/ld-linux-x86-64.so.2",
                 "/lib/x86_64-linux-gnu/libc.so.6", "/etc/resolv.conf", "/dev/console"):
        assert path in files, path
    config = files["/.engitor/init"][1].decode()
    assert "arg /exit3\narg one\n" in config and "env GREETING=hi\n" in config
    assert files["/etc/resolv.conf"][1] == b"nameserver 10.0.2.3\n"
    # no shell, no getty, no login
    assert not any(p.endswith(("/sh", "/bash", "getty", "/login")) for p in files)
    # the manifest lists every regular file with its size and digest
    manifest = image.manifest
    listed = {f["path"]: f for f in manifest["files"] if "sha256" in f}
    for path, (mode, data) in files.items():
        if mode & 0o170000 == 0o100000:
            assert listed[path]["size"] == len(data)
            assert listed[path]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["kernel"]["package"].startswith("linux-image-")
    assert set(manifest["sizes"]) >= {"program", "libraries", "modules", "init", "etc", "files"}


def test_two_builds_are_byte_identical(tmp_path: Path, programs: Path, kernel_pkg,
                                       monkeypatch: pytest.MonkeyPatch):
    ids, blobs = [], []
    for n in range(2):
        h = tmp_path / f"home{n}"
        h.mkdir()
        (h / "kernels").symlink_to(home.home() / "kernels")
        (h / "cache").symlink_to(home.home() / "cache")
        monkeypatch.setenv("ENGITOR_HOME", str(h))
        image = build(programs / "exit3")
        ids.append(image.id)
        blobs.append(image.initrd.read_bytes())
    assert ids[0] == ids[1]
    assert blobs[0] == blobs[1]


def test_unchanged_rebuild_writes_nothing(fresh_home: Path, programs: Path):
    first = build(programs / "exit3", args=["x"])
    before = snapshot(fresh_home)
    time.sleep(0.01)
    again = build(programs / "exit3", args=["x"])
    assert again == first
    assert snapshot(fresh_home) == before
    changed = build(programs / "exit3", args=["y"])
    assert changed.id != first.id


def test_images_are_listed_and_tagged(fresh_home: Path, programs: Path):
    image = build(programs / "exit3")
    assert store.tags()["app"] == image.id
    assert store.resolve("app") == image and store.resolve(image.id[:8]) == image
    proc = subprocess.run([sys.executable, "-m", "engitor", "images"], capture_output=True,
                          text=True, env=os.environ.copy(), check=True)
    row = proc.stdout.splitlines()[1].split()
    assert row[0] == "app" and row[1] == image.id[:12] and row[-1] == str(programs / "exit3")
    listed = json.loads(subprocess.run([sys.executable, "-m", "engitor", "images", "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    assert listed[0]["id"] == image.id and listed[0]["size"] == image.size()


def test_a_killed_build_leaves_no_half_image(fresh_home: Path, programs: Path, tmp_path: Path):
    """Kill builds at several points; the store only ever holds whole images."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        (data / f"blob{i}").write_bytes(os.urandom(8 * 1024 * 1024))
    argv = [sys.executable, "-m", "engitor", "build", "-q", str(programs / "exit3"),
            "--dir", str(data)]
    for delay in (0.4, 0.8, 1.2, 1.6):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        images = fresh_home / "images"
        for entry in images.iterdir() if images.exists() else []:
            if entry.name.startswith("."):
                continue  # a temporary, never an image
            assert {p.name for p in entry.iterdir()} == {"kernel", "initrd", "cmdline",
                                                         "manifest.json"}
            json.loads((entry / "manifest.json").read_text())
    # the next build completes and sweeps the killed builds' temporaries
    subprocess.run(argv, check=True, capture_output=True)
    leftovers = [p for p in (fresh_home / "images").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_a_kernel_deb_given_offline_is_unpacked_and_cached(tmp_path: Path, programs: Path,
                                                           kernel_pkg, monkeypatch):
    """--kernel PATH.deb needs no apt: with an apt that knows no archive, the build works."""
    h = tmp_path / "offline-home"
    monkeypatch.setenv("ENGITOR_HOME", str(h))
    (tmp_path / "lists/partial").mkdir(parents=True)
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Dir::Etc::sourcelist "/dev/null";\nDir::Etc::sourceparts "/nonexistent";\n'
                    f'Dir::State::lists "{tmp_path / "lists"}";\n')
    monkeypatch.setenv("APT_CONFIG", str(conf))
    deb = tmp_path / "linux-image.deb"
    deb.symlink_to(kernel_pkg.deb)
    proc = subprocess.run([sys.executable, "-m", "engitor", "build", "-q", "--kernel", str(deb),
                           str(programs / "exit3")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    image = store.get(proc.stdout.strip())
    assert image is not None
    assert image.manifest["kernel"]["sha256"] == kernel_pkg.sha256
    cached = list((h / "kernels").glob("linux-image-*"))
    assert len(cached) == 1 and (cached[0] / "package.deb").is_file()
