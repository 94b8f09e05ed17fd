"""Smaller inputs that got the wrong answer: a billion-laughs YAML, a JSON syntax error in an
ops config, `-n` with a recipe, `-n ""`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from engitor import cli, store


def one_line(capsys, argv: list[str], *needles: str) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "(hint: " in line or "Traceback" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def laughs(levels: int = 9) -> str:
    lines = ["program: ./t", "args:", '  - &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"  - &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_yaml_is_named_for_what_it_is(tmp_path, monkeypatch, capsys):
    (tmp_path / "bl.yaml").write_text(laughs())
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    line = one_line(capsys, ["build", "bl.yaml"], "bl.yaml:", "aliases expanded",
                    "more than 1,000,000 values")
    assert "endless loop" not in line
    assert time.monotonic() - start < 20


def test_an_ops_json_syntax_error_says_json_with_line_and_column(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.json").write_text('{"Program": "t",\n "Args": ["a" "b"]}\n')
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, ["build", "config.json"],
                    "config.json:2:15: not valid JSON: Expecting ',' delimiter")
    assert "YAML" not in line


@pytest.fixture
def app(tmp_path: Path, programs: Path, monkeypatch) -> Path:
    shutil.copy(programs / "exit3", tmp_path / "t")
    (tmp_path / "one.lua").write_text('image "a" { program = "./t" }\n')
    (tmp_path / "two.lua").write_text('image "a" { program = "./t" }\nimage "b" { program = "./t" }\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_n_names_the_image_of_a_lua_recipe(fresh_home, app, capsys):
    assert cli.main(["build", "one.lua", "-n", "renamed"]) == 0
    assert set(store.tags()) == {"renamed"}
    assert cli.main(["build", "two.lua:b", "-n", "bee"]) == 0
    assert set(store.tags()) == {"renamed", "bee"}


def test_n_with_several_images_is_refused(fresh_home, app, capsys):
    one_line(capsys, ["build", "two.lua", "-n", "x"], "two.lua declares 2 images and -n names one")
    assert store.tags() == {}


@pytest.mark.parametrize("target", ["./t", "one.lua"])
def test_an_empty_n_is_refused(fresh_home, app, capsys, target):
    one_line(capsys, ["build", target, "-n", ""], "invalid image name ''")
    assert store.tags() == {}
