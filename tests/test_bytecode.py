"""Runtime images carry Python bytecode compiled at build time: unchecked-hash .pyc files,
the same bytes on every build, and the interpreter in the guest loads them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from support import engitor

from engitor.packages import triggers

STDLIB = Path(f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}")


def stdlib_tree(root: Path) -> Path:
    """A root holding part of this host's standard library, as an unpacked python3 would."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (root / "usr/bin").mkdir(parents=True)
    (root / f"usr/bin/python{version}").write_bytes(b"")
    for name in ("json", "email"):
        shutil.copytree(STDLIB / name, root / f"usr/lib/python{version}/{name}",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.skipif(not STDLIB.is_dir() or not shutil.which(f"python{STDLIB.name[6:]}"),
                    reason="needs this host's Debian python3")
def test_bytecode_is_the_same_from_two_folders(tmp_path):
    a, b = stdlib_tree(tmp_path / "a"), stdlib_tree(tmp_path / "b")
    made = triggers.python_bytecode(a)
    assert made == triggers.python_bytecode(b) and len(made) > 20
    for guest in made:
        first, second = (a / guest[1:]).read_bytes(), (b / guest[1:]).read_bytes()
        assert first == second, guest
        assert int.from_bytes(first[4:8], "little") == 0b01  # hash-based, source unchecked


@pytest.mark.vm
def test_load_names_the_image_after_the_script_and_python_uses_the_bytecode(tmp_path):
    (tmp_path / "app.py").write_text("import json\nprint(json.dumps({'ok': 1}))\n")
    proc = engitor("load", "python3", "--accel", "tcg", "--", "-v", "app.py", cwd=tmp_path,
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "engitor: image app-py " in proc.stderr
    assert '{"ok": 1}' in proc.stdout
    out = proc.stdout + proc.stderr
    assert "code object from '/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc'" \
        in out, out[-3000:]


def test_two_python_images_from_separate_package_caches_are_identical(tmp_path, monkeypatch,
                                                                      kernel_pkg):
    from engitor import home
    from engitor.image import pipeline
    from engitor.recipe.settings import make_image

    real = home.home()
    blobs = []
    for n in range(2):
        h = tmp_path / f"home{n}"
        h.mkdir()
        for name in ("kernels", "cache", "apt", "debs"):  # unpacked, merged, compiled anew
            (h / name).symlink_to(real / name)
        monkeypatch.setenv("ENGITOR_HOME", str(h))
        stored = pipeline.build(make_image("py", {"package": "python3"}))
        assert any(f["path"].endswith("json/__pycache__/__init__.cpython-311.pyc")
                   for f in stored.manifest["files"])
        blobs.append(stored.initrd.read_bytes())
    assert blobs[0] == blobs[1]
