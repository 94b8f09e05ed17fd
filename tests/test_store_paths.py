"""Names a user gives for things in engitor's home are names, not paths: `engitor images --rm`,
`run`, `stop`, `logs` refuse anything that would lead out of the store, in one line, exit 2,
and nothing outside the store is touched. Guest paths that climb above / are refused too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engitor import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / "images").mkdir(parents=True)
    (h / "tags").mkdir()
    (h / "kernels").mkdir()
    (h / "kernels/k1").mkdir()
    monkeypatch.setenv("ENGITOR_HOME", str(h))
    return h


def one_line(capsys, argv: list[str], *needles: str) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_images_rm_cannot_delete_outside_the_store(home, tmp_path, capsys):
    # A file beside the home that names, as a tag would, a folder that looks like an image.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "manifest.json").write_text("{}")
    (tmp_path / "x").write_text("../../victim\n")
    one_line(capsys, ["images", "--rm", "../../x"], "'../../x' is not a name in engitor's store")
    assert (victim / "manifest.json").exists()


@pytest.mark.parametrize("ref", ["../kernels", "..", ".", "../kernels/k1", "/etc", "a/b", ""])
def test_images_rm_of_a_path_is_one_line(home, capsys, ref):
    one_line(capsys, ["images", "--rm", ref], "engitor's store" if ref else "")
    assert (home / "kernels/k1").is_dir()


@pytest.mark.parametrize("verb", [["stop"], ["logs"]])
def test_vm_names_are_names(home, tmp_path, capsys, verb):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "instance.json").write_text('{"name": "x", "pid": 1}')
    one_line(capsys, [*verb, "../../fake"], "VM '../../fake' is not a name")
    assert fake.is_dir()


def test_a_map_to_a_guest_path_above_root_is_one_line(home, tmp_path, capsys, monkeypatch):
    (tmp_path / "app/conf").mkdir(parents=True)
    (tmp_path / "app/conf/a.conf").write_text("a")
    os.symlink("/bin/true", tmp_path / "app/t")
    (tmp_path / "app/r.lua").write_text(
        'image "m" { program = "/bin/true", map = { ["conf/*"] = "/../../etc" } }\n')
    monkeypatch.chdir(tmp_path / "app")
    one_line(capsys, ["build", "r.lua"], "r.lua:1: map: conf/*: the guest path '/../../etc' "
                                        "climbs with")
    assert not any((home / "images").iterdir())
