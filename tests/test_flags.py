"""CLI flags lower to the same model as recipes; malformed values are one-line errors."""

import argparse
from pathlib import Path

import pytest

from engitor.cli import join_arg_values
from engitor.commands import common
from engitor.errors import UserError
from engitor.recipe import targets
from engitor.recipe.model import Accel, MiB, Port, Proto
from engitor.recipe.settings import SettingTypeError, make_image, parse_port, parse_size


def parse(*argv):
    p = argparse.ArgumentParser()
    p.add_argument("target")
    common.add_image_flags(p)
    args = p.parse_args(join_arg_values(["run", "prog", *argv])[1:])
    args.program_args = []
    return args


@pytest.mark.parametrize("spec,port", [
    (8080, Port(8080, 8080)),
    ("8080", Port(8080, 8080)),
    ("8080:80", Port(8080, 80)),  # kraft's HOST:GUEST
    ("8080-80", Port(8080, 80)),  # ops' A-B
    ("53/udp", Port(53, 53, Proto.UDP)),
    ("5353:53/udp", Port(5353, 53, Proto.UDP)),
    ("0.0.0.0:8080:80", Port(8080, 80, bind="0.0.0.0")),
    ("[::1]:8080:80", Port(8080, 80, bind="[::1]")),
    (8080.0, Port(8080, 8080)),  # a Lua number
])
def test_port_forms(spec, port):
    assert parse_port(spec) == port


@pytest.mark.parametrize("spec", ["80x", "0", "70000", "8080:0", "a:b", "1.2.3:80", "", "80/sctp",
                                  "300.1.1.1:80:80", True, [80]])
def test_bad_ports(spec):
    with pytest.raises(SettingTypeError):
        parse_port(spec)


@pytest.mark.parametrize("spec,size", [("256M", 256 * MiB), ("2G", 2048 * MiB), ("512m", 512 * MiB),
                                       ("256MiB", 256 * MiB), (256, 256 * MiB), ("1g", 1024 * MiB),
                                       ("1048576k", 1024 * MiB)])
def test_sizes(spec, size):
    assert parse_size(spec) == size


@pytest.mark.parametrize("spec", ["lots", "-5M", "0", "1.5G", "12Q", ""])
def test_bad_sizes(spec):
    with pytest.raises(SettingTypeError):
        parse_size(spec)


def test_flags_make_the_same_image_as_a_table(tmp_path: Path):
    args = parse("-p", "8080", "-p", "9000:90,9001:91", "--udp", "53", "-a", "-port", "-a", "8080",
                 "-e", "MODE=prod", "-e", "EMPTY=", "-m", "512M", "--smp", "2", "--accel", "tcg")
    flags = common.overrides(args)
    from_flags = targets.apply(make_image("prog", {"program": "./prog"}, base_dir=tmp_path), flags)
    from_table = make_image("prog", {
        "program": "./prog", "ports": [8080, "9000:90", "9001:91", "53/udp"],
        "args": ["-port", 8080], "env": {"MODE": "prod", "EMPTY": ""},
        "memory": "512M", "cpus": 2, "accel": "tcg"}, base_dir=tmp_path)
    assert from_flags == from_table
    assert from_flags.accel is Accel.TCG and from_flags.memory == 512 * MiB


def test_flags_over_a_recipe_add_ports_merge_env_replace_args(tmp_path: Path):
    declared = make_image("web", {"program": "./s", "ports": [8080, 9090], "env": {"A": "1", "B": "2"},
                                  "args": ["x"], "memory": "128M"}, base_dir=tmp_path)
    changed = targets.apply(declared, common.overrides(parse("-p", "18080:8080", "-e", "B=3", "-a", "y")))
    assert changed.ports == (Port(9090, 9090), Port(18080, 8080))
    assert changed.env == {"A": "1", "B": "3"}
    assert changed.args == ("y",)
    assert changed.memory == 128 * MiB


def test_args_after_double_dash(tmp_path: Path):
    args = parse()
    args.program_args = ["-port", "8080"]
    assert common.overrides(args)["args"] == ("-port", "8080")


@pytest.mark.parametrize("argv,needle", [
    (["-p", "80x"], "-p 80x: expected a port"),
    (["-e", "NOVALUE"], "-e NOVALUE: expected KEY=VALUE"),
    (["-e", "=x"], "-e =x: expected KEY=VALUE"),
    (["-m", "lots"], "-m lots: expected a size"),
    (["-m", "16M"], "-m 16M: expected at least 32M"),
    (["--smp", "zero"], "--smp zero: expected a whole number"),
    (["--smp", "0"], "--smp 0: expected a number of at least 1"),
    (["--accel", "hvf"], "--accel hvf: expected one of auto, kvm, tcg"),
    (["-p", "8080", "-p", "8080:80"], "forwarded twice"),
])
def test_malformed_flags(argv, needle):
    with pytest.raises(UserError) as e:
        common.overrides(parse(*argv))
    assert needle in str(e.value)
    assert e.value.hint


def test_numbers_in_string_lists_read_as_lua_writes_them(tmp_path: Path):
    """args = {1/3, 8080, 0.5, 0} gives what Lua's tostring gives, from every front end."""
    from lupa import luajit21

    from engitor.recipe.lua_front import load_recipe

    recipe = tmp_path / "n.lua"
    recipe.write_text('image "n" { program = "p", args = {1/3, 8080, 0.5, 0, 1e20} }\n')
    lua = luajit21.LuaRuntime()
    expected = tuple(lua.eval(f"tostring({x})") for x in ("1/3", "8080", "0.5", "0", "1e20"))
    assert load_recipe(recipe).images[0].args == expected
    assert make_image("n", {"program": "p", "args": [1 / 3, 8080.0, 0.5, 0, 1e20]},
                      base_dir=tmp_path).args == expected


def test_image_flags_come_from_the_settings_table():
    """Each setting that declares a flag has it on run/build/load, spelled as declared, with
    the setting as its destination; no image flag is written by hand besides the non-settings."""
    from engitor.recipe.settings import SETTINGS

    p = argparse.ArgumentParser()
    common.add_image_flags(p)
    by_option = {o: a for a in p._actions for o in a.option_strings}
    flagged = [s for s in SETTINGS if s.flag]
    assert {"ports", "args", "env", "files", "dirs", "memory", "cpus", "accel", "kernel"} <= \
        {s.name for s in flagged}
    for s in flagged:
        for name in s.flag.names:
            assert by_option[name].dest == s.name, name
            assert by_option[name].metavar == s.flag.metavar
    hand_written = {a.dest for a in p._actions if a.option_strings} - {s.name for s in flagged}
    assert hand_written == {"help", "udp", "name", "config", "env_files"}


def test_every_flag_sets_its_setting(tmp_path: Path):
    samples = {"ports": ["8080"], "args": ["x"], "env": ["K=V"], "files": ["f"], "dirs": ["d"],
               "memory": "64M", "cpus": "2", "accel": "tcg", "kernel": "linux-image-cloud-amd64",
               "debian": ["memcached"], "user": "memcache", "network": "dhcp",
               "stop_timeout": "5", "volumes": ["tmpfs:/cache"], "start": "snapshot"}
    from engitor.recipe.settings import SETTINGS

    for s in (s for s in SETTINGS if s.flag):
        sample = samples.get(s.name)
        assert sample is not None, f"add a sample value for the new flag of {s.name}"
        argv = [x for v in (sample if isinstance(sample, list) else [sample])
                for x in (s.flag.names[-1], v)]
        assert s.name in common.overrides(parse(*argv)), s.name
