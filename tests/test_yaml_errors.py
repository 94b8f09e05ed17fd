"""Every validation error of the YAML front end names file:line:column, the key path and a hint.

Lines and columns are 1-based, as editors show them. Errors about values are raised by the
settings table while the compiled Lua runs, and mapped back to the YAML node they came from.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.recipe import yaml_front


def error_of(tmp_path: Path, text: str, name: str = "app.yaml") -> UserError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as info:
        yaml_front.load_config(path, warn=lambda _: None)
    return info.value


def at(tmp_path: Path, line: int, column: int, name: str = "app.yaml") -> str:
    return f"{tmp_path / name}:{line}:{column}"


def test_unknown_key_says_did_you_mean(tmp_path):
    e = error_of(tmp_path, "program: ./server\nportz: [8080]\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.message == "unknown setting 'portz'"
    assert e.hint == "did you mean 'ports'?"


def test_unknown_key_in_an_image_names_its_path(tmp_path):
    e = error_of(tmp_path, "images:\n  web:\n    program: ./server\n    memroy: 1G\n")
    assert e.where == at(tmp_path, 4, 5)
    assert e.message == "images.web.memroy: unknown setting 'memroy'"
    assert e.hint == "did you mean 'memory'?"


def test_unknown_key_with_nothing_close_points_at_the_schema(tmp_path):
    e = error_of(tmp_path, "program: ./server\nzzz: 1\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.hint == "run 'engitor schema' for the list of settings"


def test_wrong_type_points_at_the_key(tmp_path):
    e = error_of(tmp_path, "program: ./server\nmemory: lots\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.message == "memory: expected a size like '256M' or '2G', got 'lots'"
    assert e.hint == "Guest memory: '256M', '2G'."


def test_wrong_type_of_a_list_item_points_at_the_item(tmp_path):
    e = error_of(tmp_path, "images:\n  web:\n    program: ./server\n    ports:\n      - 8080\n"
                           "      - eighty\n")
    assert e.where == at(tmp_path, 6, 9)
    assert e.message.startswith("images.web.ports: item 2: expected a port like 8080")
    assert e.hint.startswith("Forwarded ports:")


def test_wrong_type_of_a_table_value_points_at_the_value(tmp_path):
    e = error_of(tmp_path, "program: ./server\nenv:\n  MODE: prod\n  LEVELS: [1, 2]\n")
    assert e.where == at(tmp_path, 4, 11)
    assert e.message == "env.LEVELS: expected a string, got a list"
    assert e.hint == "Environment of the program."


def test_wrong_type_in_a_merged_block_points_into_the_block(tmp_path):
    e = error_of(tmp_path, "x-base: &base\n  program: ./server\n  cpus: two\n"
                           "images:\n  a: {<<: *base}\n  b: {<<: *base, memory: 1G}\n")
    assert e.where == at(tmp_path, 3, 3)
    assert e.message == "x-base.cpus: expected a whole number, got a string"
    assert e.hint == "Virtual CPUs."


def test_bad_environment_name_points_at_the_key(tmp_path):
    e = error_of(tmp_path, "program: ./server\nenv: {MODE: a, 'X=Y': b}\n")
    assert e.where == at(tmp_path, 2, 16)
    assert "key 'X=Y': an environment variable name cannot be empty or contain '='" in e.message


def test_duplicate_key(tmp_path):
    e = error_of(tmp_path, "program: ./server\nports: [80]\nmemory: 1G\nports: [81]\n")
    assert e.where == at(tmp_path, 4, 1)
    assert e.message == "duplicate key 'ports' in the file"
    assert e.hint == "it is already set at line 2, column 1; keep one"


def test_duplicate_key_deep_inside(tmp_path):
    e = error_of(tmp_path, "images:\n  web:\n    program: ./s\n    env:\n      A: 1\n      A: 2\n")
    assert e.where == at(tmp_path, 6, 7)
    assert e.message == "duplicate key 'A' in images.web.env"
    assert e.hint == "it is already set at line 5, column 7; keep one"


def test_duplicate_image(tmp_path):
    e = error_of(tmp_path, "images:\n  web: {program: ./a}\n  web: {program: ./b}\n")
    assert (e.where, e.message) == (at(tmp_path, 3, 3), "duplicate key 'web' in images")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path, text):
    e = error_of(tmp_path, text)
    assert e.where == at(tmp_path, 1, 1)
    assert e.message == "the file is empty"
    assert "program: ./server" in e.hint


def test_a_file_that_is_not_a_mapping(tmp_path):
    e = error_of(tmp_path, "# a list\n- program: ./server\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.message == "expected a mapping of settings, got a list"
    assert "program: ./server" in e.hint


def test_lua_keyword_as_an_anchor_name(tmp_path):
    e = error_of(tmp_path, "x-a: &end {memory: 1G}\nimages:\n  web:\n    <<: *end\n"
                           "    program: ./s\n")
    assert e.where == at(tmp_path, 1, 6)
    assert e.message == "anchor &end becomes a Lua variable, and 'end' is a Lua keyword"
    assert "not a Lua keyword: &common" in e.hint


def test_non_identifier_as_an_anchor_name(tmp_path):
    e = error_of(tmp_path, "x-a: &9lives {memory: 1G}\nimages:\n  web: {<<: *9lives, program: s}\n")
    assert e.where == at(tmp_path, 1, 6)
    assert e.message == "anchor &9lives becomes a Lua variable, and '9lives' is not a name Lua " \
                        "can use"
    assert e.hint.startswith("name anchors with letters, digits")


def test_anchors_named_like_what_the_recipe_calls_get_another_name(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("x-a: &merge {memory: 1G}\nimages:\n  web: {<<: *merge, program: s}\n")
    compiled = yaml_front.compile_config(path)
    assert "local merge_ = { memory = \"1G\" }" in compiled.lua
    assert yaml_front.evaluate(compiled).images[0].memory == 1024 ** 3


def test_dashes_in_anchor_names_are_fine(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("x-a: &base-settings {memory: 1G}\nimages:\n  web: {<<: *base-settings, "
                    "program: s}\n")
    compiled = yaml_front.compile_config(path)
    assert "local base_settings = { memory = \"1G\" }" in compiled.lua
    assert yaml_front.evaluate(compiled).images[0].memory == 1024 ** 3


def test_invalid_image_name(tmp_path):
    e = error_of(tmp_path, "images:\n  web: {program: s}\n  'my site': {program: s}\n")
    assert e.where == at(tmp_path, 3, 3)
    assert e.message == "invalid image name 'my site'"
    assert "letters, digits" in e.hint


def test_image_names_must_be_text(tmp_path):
    e = error_of(tmp_path, "images:\n  1: {program: s}\n")
    assert e.where == at(tmp_path, 2, 3)
    assert e.message == "an image name must be text"


def test_keys_must_be_text(tmp_path):
    e = error_of(tmp_path, "program: s\nenv: {1: one}\n")
    assert e.where == at(tmp_path, 2, 7)
    assert e.message == "a key must be text, got '1'"
    assert e.hint == "quote the key: '1': …"


def test_unset_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ENGITOR_TEST_UNSET", raising=False)
    e = error_of(tmp_path, "program: ./s\nargs:\n  - -token\n  - !env ${ENGITOR_TEST_UNSET}\n")
    assert e.where == at(tmp_path, 4, 5)
    assert e.message == "args: environment variable ENGITOR_TEST_UNSET is not set"
    assert e.hint == "set it (ENGITOR_TEST_UNSET=… engitor …), or give a default: " \
                     "${ENGITOR_TEST_UNSET:-value}"


def test_unset_environment_variable_in_a_shared_block(tmp_path, monkeypatch):
    monkeypatch.delenv("ENGITOR_TEST_UNSET", raising=False)
    e = error_of(tmp_path, "x-env: &env\n  TOKEN: !env ${ENGITOR_TEST_UNSET}\nimages:\n"
                           "  a: {program: s, env: *env}\n  b: {program: s, env: *env}\n")
    assert e.where == at(tmp_path, 2, 10)
    assert e.message == "x-env.TOKEN: environment variable ENGITOR_TEST_UNSET is not set"


def test_malformed_variable_reference(tmp_path):
    e = error_of(tmp_path, "program: s\nargs: [!env '${NOT CLOSED']\n")
    assert e.where == at(tmp_path, 2, 8)
    assert e.message == "!env: '${' is not a variable reference"
    assert "${NAME:-default}" in e.hint


def test_hooks_belong_to_lua(tmp_path):
    e = error_of(tmp_path, "program: s\nbefore_build: echo hi\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.message == "before_build: before_build is a hook"
    assert "engitor compile FILE -o recipe.lua" in e.hint


def test_null_in_a_list(tmp_path):
    e = error_of(tmp_path, "program: s\nargs: [a, ~, b]\n")
    assert (e.where, e.message) == (at(tmp_path, 2, 11), "args: null is not a value here")
    assert "quote it" in e.hint


def test_no_program(tmp_path):
    e = error_of(tmp_path, "images:\n  web:\n    memory: 1G\n")
    assert e.where == at(tmp_path, 2, 3)
    assert e.message == "image 'web' has no program"
    assert e.hint == "set it: program: ./server (or package: python3)"


def test_settings_beside_images(tmp_path):
    e = error_of(tmp_path, "memory: 1G\nimages:\n  web: {program: s}\n")
    assert e.where == at(tmp_path, 1, 1)
    assert e.message == "'memory' is beside 'images:': settings belong to an image"
    assert "<<: *common" in e.hint


def test_name_inside_an_image_under_images(tmp_path):
    e = error_of(tmp_path, "images:\n  web: {program: s, name: other}\n")
    assert e.where == at(tmp_path, 2, 21)
    assert e.hint == "an image's name is its key under images:"


def test_yaml_syntax_error(tmp_path):
    e = error_of(tmp_path, "program: s\nargs: [a, b\nmemory: 1G\n")
    assert e.where == at(tmp_path, 3, 7)
    assert e.message.startswith("not valid YAML: ")


def test_tabs(tmp_path):
    e = error_of(tmp_path, "program: s\nenv:\n\tA: 1\n")
    assert e.where.startswith(f"{tmp_path / 'app.yaml'}:3:")
    assert e.message.startswith("not valid YAML")


def test_several_documents(tmp_path):
    e = error_of(tmp_path, "program: a\n---\nprogram: b\n")
    assert e.where == at(tmp_path, 2, 1)
    assert e.message == "not valid YAML: the file holds more than one YAML document"
    assert e.hint == "declare several images in one document under images:"


def test_undefined_alias(tmp_path):
    e = error_of(tmp_path, "program: s\nenv: *nowhere\n")
    assert e.where == at(tmp_path, 2, 6)
    assert "alias (*name) must follow its anchor" in e.hint


def test_alias_cycle(tmp_path):
    e = error_of(tmp_path, "program: s\nargs: &a [x, *a]\n")
    assert e.where == at(tmp_path, 2, 7)
    assert e.message == "an alias refers to the node it is inside of"


def test_merge_of_a_list(tmp_path):
    e = error_of(tmp_path, "x-l: &l [1, 2]\nimages:\n  a: {<<: *l, program: s}\n")
    assert e.where == at(tmp_path, 1, 6)
    assert e.message == "<<: expected a mapping (or a list of them) to merge, got a list"


def test_number_too_large_for_lua(tmp_path):
    e = error_of(tmp_path, "program: s\nargs: [123456789012345678901]\n")
    assert e.where == at(tmp_path, 2, 8)
    assert e.hint == "quote it if it is text: '123456789012345678901'"


def test_python_tags_are_refused(tmp_path):
    marker = tmp_path / "ran"
    e = error_of(tmp_path, f"program: !!python/object/apply:os.system ['touch {marker}']\n")
    assert e.where == at(tmp_path, 1, 10)
    assert "tag:yaml.org,2002:python/object/apply:os.system is not allowed" in e.message
    assert not marker.exists()


def test_not_utf8(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_bytes(b"program: s\nargs: [\xff]\n")
    with pytest.raises(UserError) as info:
        yaml_front.load_config(path)
    assert info.value.where == f"{path}:2"
    assert info.value.hint == "save it as UTF-8"


def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    (tmp_path / "app.yaml").write_text("program: ./server\nportz: [8080]\n")
    proc = subprocess.run([sys.executable, "-m", "engitor", "compile", "app.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "engitor: app.yaml:2:1: unknown setting 'portz' (hint: did you mean " \
                          "'ports'?)\n"


def test_run_reports_it_before_any_vm(tmp_path):
    (tmp_path / "bad.yaml").write_text("program: ./server\nports: [80, eighty]\n")
    proc = subprocess.run([sys.executable, "-m", "engitor", "run", "bad.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("engitor: bad.yaml:2:13: ports: item 2: expected a port")
