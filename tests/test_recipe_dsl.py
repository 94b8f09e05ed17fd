"""The recipe DSL: each feature, and the exact model it yields."""

from __future__ import annotations

from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.recipe import settings
from engitor.recipe.lua_front import load_recipe
from engitor.recipe.model import Accel, Hook, Image, MiB, Port, Proto


def write(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def load(folder: Path, text: str, **files: str):
    write(folder, {"recipe.lua": text, **files})
    return load_recipe(folder / "recipe.lua")


def test_the_issue_example_yields_exactly_this_model(tmp_path):
    recipe = load(tmp_path, """
        image "web" {
          program = "./server", args = {"-port", "8080"},
          files = {"index.html"}, dirs = {"static"}, map = {["./conf/*"] = "/etc/app"},
          env = {MODE = "prod"}, ports = {8080}, memory = "256M", cpus = 1,
        }
    """)
    assert recipe.source == str(tmp_path / "recipe.lua")
    assert recipe.images == (Image(
        name="web", program="./server", args=("-port", "8080"), files=("index.html",),
        dirs=("static",), map={"./conf/*": "/etc/app"}, env={"MODE": "prod"},
        ports=(Port(8080, 8080, Proto.TCP, "127.0.0.1"),), memory=256 * MiB, cpus=1,
        base_dir=tmp_path),)
    assert recipe.images[0].where == f"{tmp_path / 'recipe.lua'}:2"


def test_defaults_come_from_the_settings_table(tmp_path):
    (image,) = load(tmp_path, 'image "a" { program = "/bin/true" }').images
    assert image == Image(name="a", program="/bin/true", base_dir=tmp_path)
    for s in settings.SETTINGS:
        if s.name != "program":
            assert getattr(image, s.name) == s.default, s.name


def test_every_other_setting(tmp_path):
    (image,) = load(tmp_path, """
        image "all" {
          package = "python3", program = "/usr/bin/python3",
          accel = "TCG", kernel = "linux-image-6.1.0-18-cloud-amd64",
          kernel_args = {"loglevel=3"}, modules = {"virtio_blk"}, hostname = "box",
          workdir = "/srv", nameservers = {"1.1.1.1", "9.9.9.9"}, boot_timeout = 60,
          stop_timeout = 0, memory = "1G", cpus = 2,
          ports = {"8443:443", "5353/udp", "0.0.0.0:8080:80", "9000-90"},
        }
    """).images
    assert image == Image(
        name="all", package="python3", program="/usr/bin/python3", accel=Accel.TCG,
        kernel="linux-image-6.1.0-18-cloud-amd64", kernel_args=("loglevel=3",),
        modules=("virtio_blk",), hostname="box", workdir="/srv",
        nameservers=("1.1.1.1", "9.9.9.9"), boot_timeout=60, stop_timeout=0, memory=1024 * MiB,
        cpus=2, base_dir=tmp_path,
        ports=(Port(8443, 443), Port(5353, 5353, Proto.UDP), Port(8080, 80, bind="0.0.0.0"),
               Port(9000, 90)))


def test_three_ways_to_call_image_mean_the_same(tmp_path):
    recipe = load(tmp_path, """
        image "a" { program = "./p", ports = {80} }
        image("b", { program = "./p", ports = {80} })
        image { name = "c", program = "./p", ports = {80} }
    """)
    a, b, c = recipe.images
    assert (a.name, b.name, c.name) == ("a", "b", "c")
    assert a == b.with_settings(name="a") == c.with_settings(name="a")
    assert [i.where.rsplit(":", 1)[1] for i in recipe.images] == ["2", "3", "4"]


def test_a_loop_declares_many_images_in_order(tmp_path):
    recipe = load(tmp_path, """
        for i = 1, 5 do
          image("w" .. i) { program = "./server", args = {"-port", 8000 + i}, ports = {8000 + i} }
        end
    """)
    assert [i.name for i in recipe.images] == ["w1", "w2", "w3", "w4", "w5"]
    assert recipe.images[2] == Image(name="w3", program="./server", args=("-port", "8003"),
                                     ports=(Port(8003, 8003),), base_dir=tmp_path)


def test_local_functions_and_shared_tables(tmp_path):
    recipe = load(tmp_path, """
        local common = { program = "./server", memory = "128M", env = { MODE = "prod" } }
        local function site(port, extra)
          return merge(common, { ports = { port } }, extra)
        end
        image "a" (site(8001))
        image "b" (site(8002, { env = { MODE = "dev" } }))
    """)
    a, b = recipe.images
    assert a == Image(name="a", program="./server", memory=128 * MiB, env={"MODE": "prod"},
                      ports=(Port(8001, 8001),), base_dir=tmp_path)
    assert b == a.with_settings(name="b", env={"MODE": "dev"}, ports=(Port(8002, 8002),))


def test_settings_are_recorded_as_they_were_at_the_call(tmp_path):
    recipe = load(tmp_path, """
        local t = { program = "./p", ports = { 1001 } }
        image "first" (t)
        t.ports[1] = 2002
        t.memory = "64M"
        image "second" (t)
    """)
    first, second = recipe.images
    assert first.ports == (Port(1001, 1001),) and first.memory == 256 * MiB
    assert second.ports == (Port(2002, 2002),) and second.memory == 64 * MiB


def test_modules_come_from_the_recipe_folder(tmp_path):
    recipe = load(tmp_path, """
        local common = require "common"
        local nested = require "lib.sites"
        assert(require "common" == common, "modules are loaded once")
        image "a" (common.base)
        nested.declare("b")
    """, **{
        "common.lua": 'return { base = { program = "./server", cpus = 2 } }',
        "lib/sites.lua": """
            local M = {}
            function M.declare(name) image(name) { program = "./other" } end
            return M
        """,
    })
    a, b = recipe.images
    assert a == Image(name="a", program="./server", cpus=2, base_dir=tmp_path)
    assert b == Image(name="b", program="./other", base_dir=tmp_path)
    assert b.where == f"{tmp_path / 'lib/sites.lua'}:3"


def test_an_init_lua_module_and_engitor_lua_folder(tmp_path):
    recipe = load(tmp_path, """
        local pkg = require "pkg"
        image "a" { program = pkg.program }
    """, **{"pkg/init.lua": 'return { program = "./from-init" }'})
    assert recipe.images[0].program == "./from-init"


def test_two_recipes_written_differently_mean_the_same(tmp_path):
    plain = load(tmp_path / "plain", """
        image "api" {
          program = "./server", args = {"-port", "8081", "-name", "api"},
          env = {ROLE = "api", MODE = "prod"}, ports = {8081}, memory = "128M",
        }
        image "www" {
          program = "./server", args = {"-port", "8082", "-name", "www"},
          env = {ROLE = "www", MODE = "prod"}, ports = {8082}, memory = "128M",
        }
    """)
    clever = load(tmp_path / "clever", """
        local defaults = require "defaults"
        for i, role in ipairs { "api", "www" } do
          local port = 8080 + i
          image(role)(merge(defaults.settings, {
            args = { "-port", port, "-name", role },
            env = { ROLE = role, MODE = defaults.mode },
            ports = { ("%d"):format(port) },
          }))
        end
    """, **{"defaults.lua": """
        local M = { mode = "prod" }
        M.settings = { program = "./server", memory = 128 .. "M" }
        return M
    """})
    # base_dir differs (two folders); everything else must be equal.
    assert [i.with_settings(base_dir=tmp_path) for i in plain.images] == \
        [i.with_settings(base_dir=tmp_path) for i in clever.images]


def test_hooks_become_model_hooks_that_run_in_the_script_scope(tmp_path):
    recipe = load(tmp_path, """
        local written = "/etc/motd"
        local function motd(name) return "welcome to " .. name .. "\\n" end
        image "web" {
          program = "./server",
          before_build = function(ctx)
            fs.write(written, motd(ctx.name))
            return { wrote = written, staging = ctx.staging }
          end,
          after_build = function(ctx) return "stored " .. ctx.id end,
        }
    """)
    (image,) = recipe.images
    before, after = image.hooks["before_build"], image.hooks["after_build"]
    assert isinstance(before, Hook) and before.name == "before_build"
    assert before.where == f"{tmp_path / 'recipe.lua'}:6"
    staging = tmp_path / "staging"
    staging.mkdir()
    assert before.call({"name": "web", "staging": str(staging)}) == \
        {"wrote": "/etc/motd", "staging": str(staging)}
    assert (staging / "etc/motd").read_text() == "welcome to web\n"
    assert after.call({"name": "web", "id": "abc123"}) == "stored abc123"


def test_hooks_and_generators_do_not_change_equality(tmp_path):
    with_hooks = load(tmp_path / "a", """
        image "x" { program = "./p", before_build = function() end, files = function() end }
    """)
    without = load(tmp_path / "b", 'image "x" { program = "./p" }')
    assert with_hooks.images[0].with_settings(base_dir=tmp_path) == \
        without.images[0].with_settings(base_dir=tmp_path)


def test_a_files_generator_runs_at_build_time(tmp_path):
    recipe = load(tmp_path, """
        image "site" {
          program = "./server",
          files = function(ctx) return fs.src.glob("pages/*.html") end,
          dirs = {"static"},
          map = function() return { ["conf/*"] = "/etc/site" } end,
        }
    """, **{"pages/a.html": "a", "pages/b.html": "b", "pages/c.txt": "c"})
    (image,) = recipe.images
    assert image.files == () and set(image.hooks) == {"files", "map"}
    staging = tmp_path / "staging"
    staging.mkdir()
    built = settings.expand_generators(image, {"name": "site", "staging": str(staging)})
    assert built.files == ("pages/a.html", "pages/b.html")
    assert built.map == {"conf/*": "/etc/site"}
    assert built.dirs == ("static",)


def test_a_generator_returning_the_wrong_shape_is_an_error_at_its_line(tmp_path):
    recipe = load(tmp_path, """
        image "site" {
          program = "./server",
          files = function() return { 1, {} } end,
        }
    """)
    with pytest.raises(UserError) as e:
        settings.expand_generators(recipe.images[0], {"name": "site", "staging": str(tmp_path)})
    assert str(e.value).startswith(f"{tmp_path / 'recipe.lua'}:4: files: the function returned")
    assert "item 2: expected a string, got a list" in str(e.value)


def test_the_description_has_no_side_effects_and_evaluates_the_same_twice(tmp_path):
    text = """
        counter = (counter or 0) + 1
        image("run-" .. counter) { program = "./p", env = { HOME_SET = tostring(os.getenv("HOME") ~= nil) } }
    """
    first, second = load(tmp_path, text), load(tmp_path, text)
    assert first == second
    assert first.images[0].name == "run-1"


def test_source_text_with_a_chunk_name(tmp_path):
    recipe = load_recipe(tmp_path / "web.yaml", source='image "y" { program = "./p" }',
                         chunkname="web.yaml")
    assert recipe.images == (Image(name="y", program="./p", base_dir=tmp_path),)
    assert recipe.images[0].where == "web.yaml:1"


def test_environment_variables_are_readable(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGITOR_TEST_PORT", "9123")
    (image,) = load(tmp_path, """
        image "e" { program = "./p", ports = { tonumber(os.getenv("ENGITOR_TEST_PORT")) } }
    """).images
    assert image.ports == (Port(9123, 9123),)


def test_numbers_in_argument_lists_become_strings(tmp_path):
    (image,) = load(tmp_path, """
        image "n" { program = "./p", args = { 1, 2.5, -3, "x" }, env = { N = 42 } }
    """).images
    assert image.args == ("1", "2.5", "-3", "x") and image.env == {"N": "42"}
