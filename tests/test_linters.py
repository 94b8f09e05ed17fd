"""Linters are tests: ruff and mypy, configured in pyproject.toml, find nothing.

ruff covers engitor/, tests/ and bench/; mypy checks engitor/ (strict for the modules listed in
pyproject's overrides). Both run as separate processes, as a developer would run them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engitor import ROOT


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name  # the venv's own, pinned in pyproject
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def test_ruff() -> None:
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "engitor", "tests", "bench"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir",
                           str(ROOT / ".mypy_cache")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
