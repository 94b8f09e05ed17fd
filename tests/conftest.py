"""Shared fixtures: the real kernel package and compiled test programs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from support import compile_c

from engitor import ROOT, home
from engitor.image import kernel

TEST_PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture(scope="session")
def kernel_pkg() -> kernel.Kernel:
    """The default Debian kernel, fetched with apt once (cached in the engitor home)."""
    return kernel.get(kernel.DEFAULT_KERNEL)


@pytest.fixture(scope="session")
def minimal_kernel() -> kernel.Kernel:
    """engitor's minimal kernel (recipes/kernels/minimal.lua): built from Debian's linux-source
    once, when the engitor home's kernel cache lacks it (minutes on 2 cores), then found there
    by its source version and config hash."""
    from engitor.image import kbuild

    return kbuild.build("minimal", log=lambda line: print(f"kernel: {line}", file=sys.stderr))


@pytest.fixture(scope="module", params=["debian", "minimal"])
def kernel_name(request: pytest.FixtureRequest) -> str:
    """Each kernel in turn, by the name `--kernel` takes: Debian's and engitor's minimal one."""
    if request.param == "minimal":
        request.getfixturevalue("minimal_kernel")
        return "minimal"
    request.getfixturevalue("kernel_pkg")
    return kernel.DEFAULT_KERNEL


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/programs/*.c compiled (dynamically linked), and the example web server."""
    out = tmp_path_factory.mktemp("programs")
    for source in sorted(TEST_PROGRAMS.glob("*.c")):
        compile_c(source, out / source.stem)
    compile_c(ROOT / "recipes/web/server.c", out / "server")
    return out


@pytest.fixture(scope="session")
def recipes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of recipes/ with the web server compiled in it (the repository stays clean)."""
    root = tmp_path_factory.mktemp("examples") / "recipes"
    shutil.copytree(ROOT / "recipes", root, ignore=shutil.ignore_patterns("server"))
    compile_c(root / "web/server.c", root / "web/server")
    return root


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_pkg) -> Path:
    """An empty engitor home (store, runs) sharing only the content-addressed kernel and
    compile caches with the real one."""
    h = tmp_path / "home"
    h.mkdir()
    (h / "kernels").symlink_to(home.home() / "kernels")
    (h / "cache").symlink_to(home.home() / "cache")
    monkeypatch.setenv("ENGITOR_HOME", str(h))
    return h


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory):
    """A Lua runtime for script-scope tests (the C bridge's), with an engitor home of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGITOR_HOME", str(tmp_path_factory.mktemp("home")))
        from engitor.lua.runtime import Runtime
        yield Runtime()
