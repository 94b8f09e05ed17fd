"""One default image name, whatever names the image: a program, a config file, a package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engitor.recipe import targets
from engitor.recipe.names import default_name, is_valid


@pytest.mark.parametrize(("given", "name"), [
    ("./server", "server"),
    ("/usr/bin/python3.11", "python3.11"),
    ("prög", "prog"),                 # accents dropped, not turned into '-'
    ("./prög", "prog"),
    ("Ünïcödé-ÅPP", "Unicode-APP"),
    ("日本", "app"),                   # nothing ASCII left: the fallback
    ("my app!", "my-app-"),
    (".hidden", "hidden"),
    ("-x", "x"),
    ("", "app"),
    ("ﬁle", "file"),                   # compatibility ligature, decomposed
])
def test_default_name(given: str, name: str) -> None:
    assert default_name(given) == name
    assert is_valid(default_name(given))


def test_odd_names_are_always_valid() -> None:
    for text in ("\u200b", "a\u0301", "🙂x", "x🙂", "...", "a/b/c d", "Ω", "\t"):
        assert is_valid(default_name(text)), text


def _engitor(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engitor", *argv], cwd=cwd, text=True,
                          capture_output=True, env=dict(os.environ), timeout=300)


def test_build_and_compile_agree_on_a_non_ascii_name(tmp_path: Path, fresh_home: Path) -> None:
    program = tmp_path / "prög"
    shutil.copy2(shutil.which("true") or "/bin/true", program)
    (tmp_path / "prög.yaml").write_text("program: ./prög\n")
    built = _engitor("build", "./prög", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert built.stdout.split("\t")[0] == "prog"
    compiled = _engitor("compile", "prög.yaml", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert 'image "prog"' in compiled.stdout, compiled.stdout
    recipe, _ = targets.load(str(tmp_path / "prög.yaml"))
    assert [i.name for i in recipe.images] == ["prog"]
