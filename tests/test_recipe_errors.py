"""Recipe errors: `FILE:LINE: message (hint: …)`, one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.recipe.lua_front import load_recipe


def error_of(folder: Path, text: str, **files: str) -> str:
    for rel, body in {"recipe.lua": text, **files}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(body)
    with pytest.raises(UserError) as e:
        load_recipe(folder / "recipe.lua")
    return str(e.value)


def at(folder: Path, line: int, name: str = "recipe.lua") -> str:
    return f"{folder / name}:{line}: "


def test_unknown_key_says_did_you_mean_at_the_key_line(tmp_path):
    text = 'image "web" {\n  program = "./s",\n  memry = "1G",\n}\n'
    assert error_of(tmp_path, text) == \
        at(tmp_path, 3) + "unknown setting 'memry' in image 'web' (hint: did you mean 'memory'?)"


def test_unknown_hook_name_suggests_the_hook(tmp_path):
    text = 'image "web" {\n  program = "./s",\n  before_bild = function() end,\n}\n'
    assert error_of(tmp_path, text) == at(tmp_path, 3) + \
        "unknown setting 'before_bild' in image 'web' (hint: did you mean 'before_build' or " \
        "'after_build'?)"


def test_unknown_key_in_a_shared_table_points_into_the_module(tmp_path):
    message = error_of(tmp_path, 'image "web" (require "common")\n',
                       **{"common.lua": 'return {\n  program = "./s",\n  memroy = "1G",\n}\n'})
    assert message.endswith("common.lua:3: unknown setting 'memroy' in image 'web' "
                            "(hint: did you mean 'memory'?)")


def test_wrong_type_says_what_was_expected(tmp_path):
    text = 'image "web" {\n  program = "./s",\n  ports = {"http"},\n}\n'
    assert error_of(tmp_path, text).startswith(
        at(tmp_path, 3) + "ports: item 1: expected a port like 8080, '8080:80', '8080-80' or "
                          "'8080/udp', got 'http' (hint: Forwarded ports:")
    text = 'image "web" {\n  program = "./s",\n  memory = true,\n}\n'
    assert error_of(tmp_path, text) == at(tmp_path, 3) + \
        "memory: expected a size like '256M' or '2G', got a boolean (hint: Guest memory: '256M', '2G'.)"
    text = 'image "web" { program = "./s", cpus = 1.5 }'
    assert error_of(tmp_path, text).startswith(at(tmp_path, 1) + "cpus: expected a whole number")
    text = 'image "web" { program = "./s",\n args = "-v" }'
    assert error_of(tmp_path, text).startswith(
        at(tmp_path, 2) + "args: expected a list of strings, got a string (write {'-v'})")


def test_an_image_without_a_program(tmp_path):
    assert error_of(tmp_path, '\nimage "web" {\n  memory = "1G",\n}\n') == at(tmp_path, 2) + \
        "image 'web' has no program (hint: set program = './server' (or package = 'python3'))"


def test_duplicate_and_bad_names_and_no_images(tmp_path):
    assert error_of(tmp_path, 'image "a" { program = "x" }\nimage "a" { program = "y" }') == \
        at(tmp_path, 2) + f"image 'a' is declared twice (hint: first declared at " \
                          f"{tmp_path / 'recipe.lua'}:1; names must be unique (add a suffix in loops))"
    assert error_of(tmp_path, 'image "we b" { program = "x" }').startswith(
        at(tmp_path, 1) + "invalid image name 'we b'")
    assert error_of(tmp_path, "-- nothing\n") == f"{tmp_path / 'recipe.lua'}: the recipe " \
        'declares no images (hint: declare one: image "web" { program = "./server" })'
    assert error_of(tmp_path, "image(42) {}").startswith(
        at(tmp_path, 1) + "image: expected a name (a string), got a number")


def test_syntax_errors_get_the_usual_fix_as_hint(tmp_path):
    assert error_of(tmp_path, 'image "web" {\n  program = "./s"\n  memory = "1G",\n}\n') == \
        at(tmp_path, 3) + "'}' expected (to close '{' at line 1) near 'memory' " \
                          "(hint: a missing ',' between two table fields?)"
    assert error_of(tmp_path, 'local function f()\n  return 1\n') == at(tmp_path, 3) + \
        "'end' expected (to close 'function' at line 1) near '<eof>' (hint: every function, if, " \
        "for and while needs its 'end')"
    assert error_of(tmp_path, 'image "web {\n') == at(tmp_path, 1) + \
        "unfinished string near '\"web {' (hint: close the string with the same quote it " \
        "opened with)"


def test_runtime_errors_are_reworded(tmp_path):
    assert error_of(tmp_path, 'local x = 1\nimg "web" { program = "x" }') == \
        at(tmp_path, 2) + "'img' is not defined (hint: did you mean 'image'?)"
    assert error_of(tmp_path, "local t\nlocal y = t.port + 1") == at(tmp_path, 2) + \
        "'t' is nil and cannot be indexed (hint: check the spelling, or that it was set before " \
        "this line)"
    assert error_of(tmp_path, 'local n = "a" + 1') == at(tmp_path, 1) + \
        "cannot do arithmetic with a string value (hint: convert it first (tostring / tonumber))"
    assert error_of(tmp_path, "return 1 < {}") == at(tmp_path, 1) + \
        "cannot compare a number with a table (hint: compare values of the same type " \
        "(tonumber / tostring first))"
    assert error_of(tmp_path, 'local s = ("x"):rep("y")') == at(tmp_path, 1) + \
        "bad argument #1 to 'rep' (number expected, got string) (hint: check the arguments " \
        "of this call)"


def test_errors_raised_by_the_recipe_keep_their_line(tmp_path):
    assert error_of(tmp_path, 'local x = 1\nerror("port must be set")') == at(tmp_path, 2) + \
        'port must be set (hint: the line reads: error("port must be set"))'
    assert error_of(tmp_path, "error({code = 1})") == at(tmp_path, 1) + \
        "error object is a table value (hint: give error() a message string)"
    message = error_of(tmp_path, 'require "helper"',
                       **{"helper.lua": '\n\nerror("bad helper")\n'})
    assert message.endswith("helper.lua:3: bad helper (hint: the line reads: error(\"bad helper\"))")


def test_script_only_apis_in_the_description_say_where_they_belong(tmp_path):
    for name in ("fs", "sh", "log", "c"):
        message = error_of(tmp_path, f'image "web" {{ program = "x" }}\n{name}.foo("a")')
        assert message.startswith(at(tmp_path, 2) + f"'{name}' (")
        assert "is not available while images are declared (hint: use it inside a hook" in message


def test_missing_modules_list_where_they_were_looked_for(tmp_path):
    message = error_of(tmp_path, 'local x = require "nowhere"')
    assert message.startswith(at(tmp_path, 1) + "module 'nowhere' not found (modules come from")
    assert str(tmp_path / "nowhere.lua") in message
    assert error_of(tmp_path, 'require "../etc/passwd"').startswith(
        at(tmp_path, 1) + "module name '../etc/passwd' is not valid")


def test_hook_errors_name_the_hook_and_its_line(tmp_path):
    (tmp_path / "recipe.lua").write_text(
        'image "web" { program = "x",\n before_build = function(ctx)\n  local t = nil\n'
        '  return t.x\n end }\n')
    hook = load_recipe(tmp_path / "recipe.lua").images[0].hooks["before_build"]
    with pytest.raises(UserError) as e:
        hook.call({"name": "web", "staging": str(tmp_path)})
    assert str(e.value) == at(tmp_path, 4) + "before_build of image 'web': 't' is nil and " \
        "cannot be indexed (hint: check the spelling, or that it was set before this line)"


def test_source_text_errors_name_the_chunk(tmp_path):
    with pytest.raises(UserError) as e:
        load_recipe(tmp_path / "web.yaml", source='image "web" {\n  prgram = "x" }',
                    chunkname="web.yaml")
    assert str(e.value) == "web.yaml:2: unknown setting 'prgram' in image 'web' " \
                           "(hint: did you mean 'program'?)"


def test_unreadable_recipes(tmp_path):
    with pytest.raises(UserError, match="no such recipe"):
        load_recipe(tmp_path / "missing.lua")
    (tmp_path / "bad.lua").write_bytes(b'-- ok\nimage "w" { program = "\xff" }\n')
    with pytest.raises(UserError) as e:
        load_recipe(tmp_path / "bad.lua")
    assert str(e.value).startswith(f"{tmp_path / 'bad.lua'}:2: the recipe is not valid UTF-8")


def test_values_that_cannot_be_settings(tmp_path):
    assert error_of(tmp_path, 'image "w" { program = "x",\n args = { coroutine.create(print) } }') \
        .startswith(at(tmp_path, 1) + 'image "w": args.1 is a thread; settings are strings')
    assert error_of(tmp_path, 'local t = { program = "x" }\nt.self = t\nimage "w" (t)') \
        .startswith(at(tmp_path, 3) + 'image "w": the settings refer to themselves (at self)')
    assert error_of(tmp_path, 'image "w" { program = "\\255" }') == at(tmp_path, 1) + \
        "program: the string is not valid UTF-8 (hint: settings are text: write bytes as UTF-8 " \
        "(or \\u{…} escapes of characters))"


def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    (tmp_path / "bad.lua").write_text('image "web" {\n  program = "./s",\n  memry = "1G",\n}\n')
    proc = subprocess.run([sys.executable, "-m", "engitor", "build", "bad.lua"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "engitor: bad.lua:3: unknown setting 'memry' in image 'web' " \
                          "(hint: did you mean 'memory'?)\n"
    assert "Traceback" not in proc.stdout + proc.stderr
