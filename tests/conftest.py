"""Shared fixtures: the real kernel package and compiled test programs."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import compile_c

from engitor import ROOT
from engitor.build import kernel

TEST_PROGRAMS = Path(__file__).resolve().parent / "programs"


@pytest.fixture(scope="session")
def kernel_pkg() -> kernel.Kernel:
    """The default Debian kernel, fetched with apt once (cached in the engitor home)."""
    return kernel.get(kernel.DEFAULT_KERNEL)


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/programs/*.c compiled (dynamically linked), and the example web server."""
    out = tmp_path_factory.mktemp("programs")
    for source in sorted(TEST_PROGRAMS.glob("*.c")):
        compile_c(source, out / source.stem)
    compile_c(ROOT / "recipes/web/server.c", out / "server")
    return out
