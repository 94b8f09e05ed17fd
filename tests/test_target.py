"""TARGET as run, export, deploy and manifest resolve it (commands/target.py), and the frozen
build plan (image/plan.py) that every build starts from. Real builds, no boot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engitor import cli, store
from engitor.commands import target
from engitor.errors import UserError
from engitor.image import pipeline, plan
from engitor.recipe.model import MiB
from engitor.recipe.settings import make_image


def _args(*argv: str):
    return cli.parser(list(argv)).parse_args(list(argv))


@pytest.fixture
def stored_db(fresh_home: Path, programs: Path, tmp_path: Path) -> store.StoredImage:
    image = make_image("db", {"program": str(programs / "server"), "memory": "96M",
                              "ports": ["8080"],
                              "volumes": {"/data": "pgdata", "/cache": "tmpfs",
                                          "/disk": "./disk.img"}},
                       where="test", base_dir=tmp_path)
    return pipeline.build(image)


def test_a_stored_image_is_booted_with_the_volumes_it_was_built_with(stored_db, tmp_path: Path):
    image, found = target.resolve(_args("run", "db"), build=False)
    assert found is not None and found.id == stored_db.id
    # A disk file's path is recorded absolute: `engitor run db` works from any folder.
    assert image.volumes == {"/data": "pgdata", "/cache": "tmpfs",
                             "/disk": str(tmp_path / "disk.img")}
    assert image.memory == 96 * MiB and [p.guest for p in image.ports] == [8080]
    # Another disk at a mount point is a run setting, like -p and -m.
    image, _ = target.resolve(_args("run", "-v", "other:/data", "-m", "128M", "db"), build=False)
    assert image.volumes["/data"] == "other" and image.memory == 128 * MiB


@pytest.mark.parametrize("flags, said", [
    (("-v", "tmpfs:/data"), "may give those mount points other disks"),
    (("-v", "more:/more"), "may give those mount points other disks"),
    (("-e", "X=1"), "booted as built; env would change it"),
    (("--deb", "hello"), "booted as built; debian would change it"),
])
def test_flags_that_would_change_a_stored_image_are_refused(stored_db, flags, said):
    for verb in (("run",), ("export", "-f", "raw", "-o", "/tmp/x.raw"),
                 ("manifest", "--for", "kubevirt")):
        with pytest.raises(UserError) as e:
            target.resolve(_args(*verb, *flags, "db"))
        assert said in e.value.message


def test_every_verb_takes_the_stored_image_without_a_rebuild(stored_db, fresh_home: Path):
    keys = sorted((fresh_home / "keys").iterdir())
    for verb in (("export", "-f", "qcow2", "-o", "/tmp/x.qcow2"), ("manifest", "--for", "nomad"),
                 ("deploy", "libvirt")):
        image, found = target.built(_args(*verb, stored_db.id[:12]))
        assert found.id == stored_db.id and image.name == "db", verb
    assert sorted((fresh_home / "keys").iterdir()) == keys


def test_an_image_stored_before_volume_sources_were_recorded_says_so():
    assert target.recorded_volumes("db", {"volumes": {"/data": "pg"}}) == {"/data": "pg"}
    assert target.recorded_volumes("db", {}) == {}
    with pytest.raises(UserError) as e:
        target.recorded_volumes("db", {"volumes": ["/data"]})  # manifests before this round
    assert "without its volumes' sources" in e.value.message


def test_a_recipe_of_several_images_needs_one_named(fresh_home: Path, programs: Path,
                                                    tmp_path: Path):
    (tmp_path / "two.lua").write_text(
        f'image "a" {{ program = "{programs / "exit3"}" }}\n'
        f'image "b" {{ program = "{programs / "exit3"}" }}\n')
    with pytest.raises(UserError) as e:
        target.resolve(_args("export", "-f", "raw", "-o", "/tmp/x", str(tmp_path / "two.lua")))
    assert "declares several images (a, b)" in e.value.message and ":a" in e.value.hint
    image, found = target.resolve(_args("run", f"{tmp_path / 'two.lua'}:b"), build=False)
    assert image.name == "b" and found is None  # run builds it itself, after its checks


def test_the_plan_is_resolved_once_and_frozen(fresh_home: Path, programs: Path, tmp_path: Path,
                                             kernel_pkg):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hi\n")
    (tmp_path / "app.conf").write_text("x=1\n")
    image = make_image("web", {"program": str(programs / "server"), "files": ["app.conf"],
                               "map": {"www/*.html": "/srv"}}, where="test", base_dir=tmp_path)
    stage = tmp_path / "stage"
    stage.mkdir()
    p = plan.resolve(image, stage, log=lambda _: None)
    assert p.program.guest == str(programs / "server") and p.program.info is not None
    assert [(c.guest, c.tree is None) for c in p.copies] == [("/app.conf", True),
                                                              ("/srv/index.html", False)]
    assert p.kernel.sha256 == kernel_pkg.sha256 and p.argv == (p.program.guest,)
    assert str(tmp_path / "www") in p.watched  # the folder the glob listed
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.image = image  # type: ignore[misc]


def test_the_users_own_inputs_are_checked_before_any_kernel_is_looked_for(
        fresh_home: Path, programs: Path, tmp_path: Path):
    image = make_image("web", {"program": str(programs / "server"), "files": ["missing.conf"],
                               "kernel": "no-such-kernel"}, where="test", base_dir=tmp_path)
    with pytest.raises(UserError) as e:
        plan.resolve(image, tmp_path, log=lambda _: None)
    assert e.value.message == "file missing.conf: no such file"
