"""Unchanged rebuilds by stat alone, and everything that must send a build down the full path."""

import os
import subprocess
import time
from pathlib import Path

from engitor.image import pipeline, quick
from engitor.recipe.model import Hook
from engitor.recipe.settings import make_image

OLD = time.time() - 3600


def age(*paths: Path) -> None:
    """Make inputs look settled (older than the racy window), as files usually are."""
    for p in paths:
        os.utime(p, (OLD, OLD))


def project(tmp_path: Path, programs: Path) -> Path:
    root = tmp_path / "proj"
    (root / "site").mkdir(parents=True)
    (root / "site/index.html").write_text("v1")
    (root / "app").write_bytes((programs / "exit3").read_bytes())
    (root / "app").chmod(0o755)
    age(root / "app", root / "site/index.html", root / "site", root)
    return root


def image_of(root: Path, **table):
    return make_image("q", {"program": "app", "dirs": ["site"], **table}, base_dir=root)


def test_second_build_is_found_by_stat(fresh_home: Path, tmp_path: Path, programs: Path):
    root = project(tmp_path, programs)
    first = pipeline.build(image_of(root))
    key = quick.declaration_key(image_of(root))
    assert quick.lookup(key) == first
    records = list((fresh_home / "keys").glob("direct-*"))
    assert len(records) == 1
    before = records[0].stat().st_mtime_ns
    assert pipeline.build(image_of(root)) == first
    assert records[0].stat().st_mtime_ns == before  # nothing written


def test_a_changed_program_or_new_file_is_noticed(fresh_home: Path, tmp_path: Path,
                                                  programs: Path):
    root = project(tmp_path, programs)
    first = pipeline.build(image_of(root))
    (root / "site/new.html").write_text("new")
    assert quick.lookup(quick.declaration_key(image_of(root))) is None
    second = pipeline.build(image_of(root))
    assert second != first
    (root / "app").write_bytes((programs / "segv").read_bytes())
    assert quick.lookup(quick.declaration_key(image_of(root))) is None
    assert pipeline.build(image_of(root)) not in (first, second)


def test_a_library_appearing_earlier_on_the_search_path_is_noticed(fresh_home: Path,
                                                                   tmp_path: Path):
    root = tmp_path / "proj"
    (root / "b").mkdir(parents=True)
    (root / "lib.c").write_text("int answer(void){return 42;}\n")
    (root / "m.c").write_text("int answer(void);\nint main(void){return answer();}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", "b/libanswer.so", "lib.c"], cwd=root,
                   check=True)
    subprocess.run(["cc", "-o", "app", "m.c", "-Lb", "-lanswer",
                    "-Wl,-rpath,$ORIGIN/a:$ORIGIN/b"], cwd=root, check=True)
    age(root / "app", root / "b/libanswer.so", root / "b", root)
    image = make_image("q", {"program": "app"}, base_dir=root)
    pipeline.build(image)
    assert quick.lookup(quick.declaration_key(image)) is not None
    (root / "a").mkdir()
    (root / "a/libanswer.so").write_bytes((root / "b/libanswer.so").read_bytes())
    assert quick.lookup(quick.declaration_key(image)) is None


def test_a_different_declaration_has_another_key(tmp_path: Path, programs: Path):
    root = project(tmp_path, programs)
    assert quick.declaration_key(image_of(root)) != quick.declaration_key(image_of(root, args=["x"]))
    assert quick.declaration_key(image_of(root)) == quick.declaration_key(image_of(root))


def test_hooks_and_racy_inputs_take_the_full_path(fresh_home: Path, tmp_path: Path,
                                                  programs: Path):
    root = project(tmp_path, programs)
    hooked = image_of(root).with_settings(
        hooks={"before_build": Hook("before_build", "x.lua:1", lambda ctx: None)})
    assert quick.declaration_key(hooked) is None
    (root / "app").write_bytes((programs / "exit3").read_bytes())  # just now: racy
    pipeline.build(image_of(root))
    assert quick.lookup(quick.declaration_key(image_of(root))) is None
    assert not list((fresh_home / "keys").glob("direct-*"))


def test_run_only_settings_neither_change_the_image_nor_miss_the_record(
        fresh_home: Path, tmp_path: Path, programs: Path):
    root = project(tmp_path, programs)
    first = pipeline.build(image_of(root))
    other = image_of(root, ports=[18080, "53/udp"], cpus=2, accel="tcg", boot_timeout=5,
                     start="snapshot")
    assert quick.declaration_key(other) == quick.declaration_key(image_of(root))
    assert quick.lookup(quick.declaration_key(other)) == first
    # and the full path agrees: these settings are not in the image
    assert quick.RUN_ONLY == {"ports", "cpus", "accel", "boot_timeout", "start"}
    (fresh_home / "keys").joinpath(f"direct-{quick.declaration_key(other)}").unlink()
    assert pipeline.build(other) == first


def test_a_package_image_is_rechecked_when_its_resolution_or_recipe_changes(
        tmp_path: Path, kernel_pkg):
    """`engitor pkg get` re-pins a runtime's versions; the old tree's files are still there,
    so the record must watch the pin and the recipe file, not only the files it read."""
    from engitor import packages
    from engitor.packages import cache, recipes

    image = make_image("web", {"package": "nginx"}, base_dir=tmp_path)
    first = pipeline.build(image)
    # A root merged just now has fresh folders, which would make the record racy (not kept).
    for dirpath, _, _ in os.walk(packages.prepare(image).root):
        os.utime(dirpath, (OLD, OLD))
    pin = cache.resolved_path("nginx")
    recipe_file = recipes.names(tmp_path)["nginx"]
    age(pin)
    key = quick.declaration_key(image)
    pipeline.build(image)  # records now that the pin is settled
    assert quick.lookup(key) == first
    pin.write_text(pin.read_text())  # a re-resolution to the same versions: new mtime
    assert quick.lookup(key) is None
    assert pipeline.build(image) == first  # the full path finds the same image
    age(pin)
    pipeline.build(image)
    assert quick.lookup(key) == first
    (tmp_path / "packages").mkdir()  # a recipe of the same name beside the image's recipe
    (tmp_path / "packages/nginx.lua").write_text(recipe_file.read_text())
    assert quick.lookup(key) is None


def test_the_key_covers_the_code_that_makes_package_trees():
    """A new engitor that merges runtime roots differently (a trigger's product added, a drop
    rule changed) must not find images built by the old one through their old roots' files."""
    root = Path(quick.__file__).resolve().parent.parent
    covered = {p.resolve() for pattern in quick.BUILDER_SOURCES for p in root.glob(pattern)}
    for module in ("packages/cache.py", "packages/rules.py", "packages/triggers.py",
                   "packages/__init__.py", "image/pipeline.py", "guest/init.c"):
        assert (root / module).resolve() in covered, module
