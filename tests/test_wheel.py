"""The wheel works on its own: built, installed into a fresh venv, it builds a Lua recipe and
compiles a YAML config with no checkout in sight (package data through importlib.resources).

Fast and offline: the wheel is built without build isolation, the venv has no pip of its own
(this venv's pip installs into it, --no-deps), and the dependencies come from this venv's
site-packages through a .pth line (a plain path line does not run the editable install's hooks,
so the checkout's engitor stays invisible).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from engitor import ROOT

SHIPPED = ("pyproject.toml", "README.md", "engitor", "lua", "headers", "recipes/packages")


def _run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          **kwargs)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed; returns its bin/ folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SHIPPED:  # a copy, so the build leaves nothing in the checkout
        origin, dest = ROOT / name, src / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, dest, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(origin, dest)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", tmp / "dist", src])
    wheel = next((tmp / "dist").glob("engitor-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
          "--no-deps", "--no-index", wheel])
    purelib = Path(_run([venv / "bin" / "python", "-c",
                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        env=_env(tmp / "home")).stdout.strip())
    (purelib / "engitor-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _env(home: Path) -> dict[str, str]:
    """This environment minus PYTHONPATH and friends, which could put a checkout first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["ENGITOR_HOME"] = str(home)
    return env


def test_the_installed_package_is_the_wheels(installed: Path, tmp_path: Path) -> None:
    where = _run([installed / "python", "-c",
                  "import engitor, engitor.resources as r; print(engitor.__file__); "
                  "print(r.lua_dir()); print(r.headers_dir())"], cwd=tmp_path,
                 env=_env(tmp_path / "home")).stdout.split()
    for path in where:
        assert Path(path).resolve().is_relative_to(installed.parent), where
        assert not Path(path).resolve().is_relative_to(ROOT)
    assert site.getsitepackages()  # the outer venv has one to borrow dependencies from


def test_wheel_builds_a_lua_recipe_and_compiles_a_yaml_config(installed: Path, tmp_path: Path,
                                                              fresh_home: Path) -> None:
    shutil.copy2(shutil.which("true") or "/bin/true", tmp_path / "hello")
    (tmp_path / "hello.lua").write_text('image "hello" {\n  program = "./hello",\n}\n')
    (tmp_path / "hello.yaml").write_text("name: greet\nprogram: ./hello\nmemory: 128M\n")
    env = _env(fresh_home)
    built = _run([installed / "engitor", "build", "hello.lua"], cwd=tmp_path, env=env)
    assert built.stdout.startswith("hello\t"), built.stdout
    compiled = _run([installed / "engitor", "compile", "hello.yaml"], cwd=tmp_path, env=env)
    assert 'image "greet"' in compiled.stdout
    built = _run([installed / "engitor", "build", "-q", "hello.yaml"], cwd=tmp_path, env=env)
    assert len(built.stdout.strip()) == 64
