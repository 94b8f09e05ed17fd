"""Runtime package recipes in the recipe language: declarations, validation, errors, lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.packages import recipes
from engitor.packages.recipes import PackageRecipe, find, load_file
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import MiB

SHIPPED = recipes.SHIPPED_DIR
RUNTIMES = {"python3", "node", "ruby", "java", "erlang", "php", "nginx"}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lua"
    path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(UserError) as e:
        load_file(path)
    return str(e.value)


def test_every_shipped_runtime_has_a_valid_recipe():
    found = {r.name: r for r in recipes.all_recipes()}
    assert RUNTIMES <= set(found)
    for r in found.values():
        assert r.debs and r.program.startswith("/") and r.description, r
        assert r.where.startswith(str(SHIPPED / f"{r.name}.lua") + ":")


def test_a_recipe_declares_its_fields(tmp_path):
    path = write(tmp_path, "py", """
        local common = { PYTHONUNBUFFERED = "1" }
        package "py" {
          description = "a test runtime",
          debs = {"python3", "python3-yaml"},
          program = "/usr/bin/python3",
          args = {"-X", "utf8"},
          env = common,
          keep = {"/usr/share/doc/python3/**"},
          drop = {"/usr/lib/python3.11/idlelib/**"},
          skip = {"tzdata"},
          suffixes = {".py"},
          memory = "384M",
        }""")
    r = load_file(path)
    assert r == PackageRecipe(name="py", debs=("python3", "python3-yaml"),
                              program="/usr/bin/python3", args=("-X", "utf8"),
                              env={"PYTHONUNBUFFERED": "1"}, keep=("/usr/share/doc/python3/**",),
                              drop=("/usr/lib/python3.11/idlelib/**",), skip=("tzdata",),
                              suffixes=(".py",), memory=384 * MiB, description="a test runtime")
    assert r.where == f"{path}:3"
    assert r.at("memory") == f"{path}:13"
    assert r.rules.dropped("/usr/lib/python3.11/idlelib/x.py")
    assert not r.rules.dropped("/usr/share/doc/python3/README")
    assert r.apt_key() == {"debs": ["python3", "python3-yaml"], "skip": ["tzdata"]}


@pytest.mark.parametrize("body, message, line", [
    ('package "x" { debs = {"python3"}, program = "/usr/bin/python3", progam = "y" }',
     "unknown field 'progam' in package 'x' (hint: did you mean 'program'?)", 1),
    ('package "x" {\n  debs = {"python3"},\n}', "package 'x' has no program", 1),
    ('package "x" { program = "/usr/bin/python3" }', "package 'x' has no debs", 1),
    ('package "x" {\n debs = {"python3"},\n program = "usr/bin/python3" }',
     "program: expected a guest path starting with '/'", 3),
    ('package "x" {\n debs = {"Python_3"},\n program = "/p" }',
     "debs: 'Python_3' is not a Debian package name", 2),
    ('package "x" {\n debs = "python3",\n program = "/p" }',
     "debs: expected a list of strings, got a string", 2),
    ('package "x" { debs = {"a1"}, program = "/p",\n drop = {"/usr/[abc"} }',
     "drop: '/usr/[abc': '[' without a closing ']'", 2),
    ('package "x" { debs = {"a1"}, program = "/p",\n keep = {"usr/share"} }',
     "keep: 'usr/share': patterns are guest paths starting with '/'", 2),
    ('package "x" { debs = {"a1"}, program = "/p",\n memory = "lots" }',
     "memory: expected a size like '256M' or '2G'", 2),
    ('package "x" { debs = {"a1"}, program = "/p",\n suffixes = {"py"} }',
     "suffixes: 'py': a suffix looks like '.py'", 2),
    ('package "x" { debs = {"a1"}, program = "/p",\n args = function() end }',
     "args: a package recipe holds values, not functions", 2),
    ('image "x" { program = "/p" }', "image 'x' is declared in a file of packages", 1),
    ('package "y" { debs = {"a1"}, program = "/p" }',
     "x.lua declares 'y'; a package recipe declares the one package it is named after", 1),
    ('package(42)', "package: expected a name (a string), got a number", 1),
    ('package "x" (42)', "package \"x\": expected a table of settings, got a number", 1),
    ('local t = {}\npackage "x" { debs = {"a1"}, program = "/p", env = { A = t } }',
     "env: A: expected a string, got a list", 2),
])
def test_errors_are_located_and_hinted(tmp_path, body, message, line):
    path = write(tmp_path, "x", body)
    text = error(path)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text, text


def test_a_file_without_a_declaration(tmp_path):
    path = write(tmp_path, "x", "local a = 1")
    assert "declares no package" in error(path)


def test_package_is_not_a_function_in_recipes_of_images(tmp_path):
    path = tmp_path / "r.lua"
    path.write_text('package "x" { debs = {"a1"}, program = "/p" }')
    with pytest.raises(UserError, match="'package' is not available to recipes"):
        load_recipe(path)


def test_a_recipe_uses_a_package_by_name(tmp_path):
    path = tmp_path / "app.lua"
    path.write_text('image "app" { package = "python3", args = {"app.py"} }')
    (image,) = load_recipe(path).images
    assert image.package == "python3" and image.program is None and image.args == ("app.py",)


def test_unknown_runtime_lists_close_names():
    with pytest.raises(UserError) as e:
        find("pyhton3")
    assert "unknown runtime package 'pyhton3'" in str(e.value)
    assert "did you mean 'python3'?" in str(e.value)
    with pytest.raises(UserError) as e:
        find("cobol")
    assert "known: " in str(e.value) and "python3" in str(e.value)


def test_lookup_order_recipe_folder_then_env_then_shipped(tmp_path, monkeypatch):
    project = tmp_path / "project"
    write(project / "packages", "python3",
          'package "python3" { debs = {"python3"}, program = "/usr/bin/python3.11" }')
    extra = tmp_path / "extra"
    write(extra, "python3", 'package "python3" { debs = {"python3"}, program = "/usr/bin/env" }')
    write(extra, "mine", 'package "mine" { debs = {"hello"}, program = "/usr/bin/hello" }')
    monkeypatch.setenv("ENGITOR_PACKAGES", str(extra))
    assert find("python3", project).program == "/usr/bin/python3.11"
    assert find("python3").program == "/usr/bin/env"
    assert find("mine", project).debs == ("hello",)
    monkeypatch.delenv("ENGITOR_PACKAGES")
    assert find("python3").program == "/usr/bin/python3"
    assert "mine" not in recipes.names(project)
