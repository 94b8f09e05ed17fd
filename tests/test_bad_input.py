"""Bad input, everywhere a user or a file can give it: the command line, recipe settings, YAML,
ops config.json, Lua, ELF files, C headers and .deb contents. A table of hand-written cases and
hypothesis-generated ones, each run through the real CLI in this process, and each must end the
same way: exit 2, one line on stderr (besides the build's own progress lines), no traceback,
nothing written outside the output, and the store exactly as it was."""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engitor import cli, home

PROGRESS = re.compile(r"^engitor: (program |built image |unchanged|kernel |\[[\w.-]+\] |\S+: warning: )")
EXE = object()  # a file spec: a copy of a working dynamically linked program


@dataclass
class Case:
    id: str
    argv: list[str]
    files: dict[str, object] = field(default_factory=dict)  # name -> text, bytes or EXE
    expect: str = ""  # a piece of the error line


# -- the world every case runs in ------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, programs, kernel_pkg) -> dict[str, Path]:
    """A home whose caches are warm (one image built) so that a failing case may not write
    anything; the shared content-addressed kernels and compile caches are the real ones."""
    base = tmp_path_factory.mktemp("bad-input")
    h = base / "home"
    (h / "run").mkdir(parents=True)  # made by any verb that looks for VMs
    (h / "kernels").symlink_to(home.home() / "kernels")
    (h / "cache").symlink_to(home.home() / "cache")
    good = base / "good"
    good.mkdir()
    shutil.copy(programs / "exit3", good / "exit3")
    old = os.environ.get("ENGITOR_HOME")
    os.environ["ENGITOR_HOME"] = str(h)
    cwd = os.getcwd()
    os.chdir(good)
    try:
        assert cli.main(["build", "./exit3", "-n", "good"]) == 0
    finally:
        os.chdir(cwd)
        if old is None:
            del os.environ["ENGITOR_HOME"]
        else:
            os.environ["ENGITOR_HOME"] = old
    return {"home": h, "exe": programs / "exit3", "base": base}


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            # A folder's own mtime moves when a temporary entry came and went (staging lives
            # in the home): what matters is that the same entries are there, each unchanged.
            mtime = 0 if stat.S_ISDIR(st_.st_mode) else st_.st_mtime_ns
            out[os.path.relpath(path, root)] = (st_.st_mode, st_.st_size, mtime)
    return out


def run_case(world, monkeypatch, capsys, case: Case, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is EXE:
            shutil.copy(world["exe"], path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content))
    scratch = folder.parent / (folder.name + ".tmp")
    scratch.mkdir(exist_ok=True)
    monkeypatch.setenv("ENGITOR_HOME", str(world["home"]))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(folder)
    home_before, folder_before = snapshot(world["home"]), snapshot(folder)
    capsys.readouterr()
    code = cli.main(case.argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.strip() and not PROGRESS.match(line)]
    assert code == 2, f"exit {code}: {err}"
    assert len(errors) == 1, err
    assert errors[0].startswith("engitor: "), err
    assert '[string "' not in errors[0], errors[0]  # no internal Lua chunk as a location
    assert case.expect in errors[0], errors[0]
    assert snapshot(world["home"]) == home_before, "the store changed"
    assert snapshot(folder) == folder_before, "a file was written beside the input"
    assert not os.listdir(scratch), os.listdir(scratch)


# -- the table ---------------------------------------------------------------------------------

def cli_cases() -> list[Case]:
    c = []
    for flag, value, expect in [
        ("-p", "abc", "port"), ("-p", "99999", "port"), ("-p", "0", "port"), ("-p", "-1", ""),
        ("-p", "8080:99999", "port"), ("-p", "8080/sctp", ""), ("-p", "1.2.3:80", ""),
        ("-p", "", ""), ("-m", "12Q", "memory"), ("-m", "lots", "memory"), ("-m", "-5M", ""),
        ("-m", "0", ""), ("-m", "", ""), ("--cpus", "0", "cpus"), ("--cpus", "x", ""),
        ("--cpus", "-3", ""), ("--cpus", "1.5", ""), ("--accel", "warp", "accel"),
        ("--accel", "", ""), ("-e", "NOEQUALS", ""), ("-e", "=v", ""), ("--kernel", "nope.deb", ""),
        ("--kernel", "./missing/k.deb", ""), ("--file", "missing.txt", "missing.txt"),
        ("--file", "/no/such/file", ""), ("--dir", "missing-dir", "missing-dir"),
        ("--file", ".", ""), ("-n", "", "invalid image name"), ("-n", "bad/name", "invalid"),
        ("-n", "-dash", ""), ("-n", "sp ace", ""), ("-n", "é", ""),
    ]:
        c.append(Case(f"cli-build-{flag}-{value or 'empty'}", ["build", "./exit3", flag, value],
                      {"exit3": EXE}, expect))
    for argv, expect in [
        (["build"], ""), (["build", "nope"], "nope"), (["build", "./nope"], "nope"),
        (["build", "nope.lua"], "nope.lua"), (["build", "nope.yaml"], "nope.yaml"),
        (["build", "."], ""), (["build", "/"], ""), (["build", ""], ""),
        (["run", "nope:image"], ""), (["frobnicate"], ""), (["build", "--bogus", "x"], ""),
        (["images", "--rm", "nope"], "no image named 'nope'"),
        (["images", "--rm", "../x"], "not a name"), (["images", "--rm", "/etc"], "not a name"),
        (["images", "--rm", ""], ""), (["images", "--rm", "."], ""),
        (["stop", "nope"], "no VM named"), (["stop", "../.."], "not a name"),
        (["logs", "nope"], "no VM named"), (["logs", "a/b"], "not a name"),
        (["run", "--smp"], ""), (["schema", "--bogus"], ""),
    ]:
        c.append(Case("cli-" + "-".join(argv).replace("/", "_") or "empty", argv, {}, expect))
    return c


def lua(text: str | bytes) -> dict[str, object]:
    return {"r.lua": text, "exit3": EXE}


LUA_SETTINGS = [
    ("program", "1"), ("program", "true"), ("program", "{}"), ("program", "''"),
    ("program", "'./nope'"), ("program", "'./r.lua'"), ("args", "'x'"), ("args", "{{}}"),
    ("args", "{true}"), ("args", "{1, nil, 3}"), ("env", "{1, 2}"), ("env", "{A = {}}"),
    ("env", "{['A=B'] = 'x'}"), ("env", "{[''] = 'x'}"), ("env", "'x'"), ("files", "5"),
    ("files", "{5}"), ("files", "{'missing'}"), ("dirs", "{'missing'}"), ("dirs", "{'exit3'}"),
    ("map", "{[1] = 'x'}"), ("map", "{['*.nothing'] = '/x'}"), ("map", "{['*'] = '../up'}"),
    ("map", "'x'"), ("ports", "{'abc'}"), ("ports", "{70000}"), ("ports", "{0}"),
    ("ports", "{{}}"), ("memory", "'lots'"), ("memory", "-1"),
    ("memory", "{}"), ("cpus", "0"), ("cpus", "'x'"), ("cpus", "1.5"), ("accel", "'warp'"),
    ("accel", "1"), ("kernel", "'./none.deb'"), ("kernel", "5"), ("kernel_args", "'x'"),
    ("modules", "'x'"), ("modules", "{1}"), ("hostname", "{}"),
    ("workdir", "5"), ("nameservers", "{'not-an-ip'}"), ("nameservers", "{'1.1.1.1\\nsearch x'}"),
    ("nameservers", "'x'"), ("boot_timeout", "'x'"), ("boot_timeout", "-1"),
    ("stop_timeout", "'x'"), ("progam", "'./exit3'"), ("packages", "{}"), ("package", "5"),
]

LUA_FILES = [
    ("syntax", 'image "a" { program = "./exit3" '),
    ("syntax2", "local = 1"), ("call-nil", "nothing()"), ("index-nil", "local t = nil; t.x = 1"),
    ("error-string", 'error("boom")'), ("error-table", "error({})"), ("error-nil", "error()"),
    ("no-images", "local x = 1"), ("empty", ""), ("twice", 'image "a" {program="./exit3"}\n'
                                                      'image "a" {program="./exit3"}'),
    ("name-number", 'image(5, {program = "./exit3"})'), ("name-missing", "image {program='x'}"),
    ("settings-string", 'image "a" "b"'), ("self-ref", 'local t = {program="./exit3"}\n'
                                                       "t.me = t\nimage 'a' (t)"),
    ("deep", "local t = {} local c = t for i = 1, 100 do c.x = {} c = c.x end\n"
             "image 'a' { program = './exit3', env = t }"),
    ("require-missing", 'require("nope")'), ("require-path", 'require("../etc/passwd")'),
    ("require-self", "require('r')"), ("bytecode", "\x1bLuaJ"),
    ("not-utf8", b'image "a" { program = "./exit3", args = {"\xff\xfe"} }'),
    ("io", "io.open('/etc/passwd')"), ("os-execute", "os.execute('true')"),
    ("debug", "debug.getinfo(1)"), ("python", "python.eval('1')"), ("ffi", "require('ffi')"),
    ("getmetatable-string", 'getmetatable("").__index.rep = nil'),
    ("load-bytecode", 'assert(load("\\27LJ", "x", "b"))'), ("dump", '("").dump(print)'),
    ("setfenv", "setfenv(1, {})"), ("collectgarbage", 'collectgarbage("stop")'),
    ("hook-in-description", "image 'a' { program = './exit3', before_build = 5 }"),
    ("key-table", "image 'a' { program = './exit3', [{}] = 1 }"),
    ("nan", "image 'a' { program = './exit3', cpus = 0/0 }"),
    ("inf", "image 'a' { program = './exit3', memory = math.huge }"),
    ("big-string-shared", "local s = string.rep('x', 1024*1024) local t = {}\n"
                          "for i = 1, 400 do t[i] = s end\n"
                          "image 'a' { program = './exit3', args = t }"),
    ("memory-bomb", "local t = {} local s = 'x' for i = 1, 40 do s = s .. s t[i] = s end"),
]


def lua_cases() -> list[Case]:
    c = [Case(f"lua-setting-{k}-{v}", ["build", "r.lua"],
              lua(f'image "a" {{ program = "./exit3", {k} = {v} }}\n')) for k, v in LUA_SETTINGS
         if k != "program"]
    c += [Case(f"lua-program-{v}", ["build", "r.lua"], lua(f'image "a" {{ program = {v} }}\n'))
          for k, v in LUA_SETTINGS if k == "program"]
    c += [Case(f"lua-{name}", ["build", "r.lua"], lua(text)) for name, text in LUA_FILES]
    return c


YAML_FILES = [
    ("syntax", "program: [./exit3\n"),
    ("dup-key", "program: ./exit3\nprogram: ./exit3\n"), ("unknown", "progam: ./exit3\n"),
    ("list-root", "- a\n- b\n"), ("scalar-root", "hello\n"), ("empty", ""),
    ("two-docs", "program: ./exit3\n---\nprogram: x\n"),
    ("undefined-alias", "program: *nope\n"), ("dup-anchor", "a: &x 1\nb: &x 2\n"),
    ("self-alias", "args: &a [*a]\nprogram: ./exit3\n"), ("args-map", "program: ./exit3\nargs: {a: 1}\n"),
    ("ports-bad", "program: ./exit3\nports: [abc]\n"), ("memory-bad", "program: ./exit3\nmemory: lots\n"),
    ("cpus-bad", "program: ./exit3\ncpus: zero\n"), ("env-list", "program: ./exit3\nenv: [a]\n"),
    ("images-bad", "images: 5\n"), ("images-name", "images:\n  'bad name': {program: ./exit3}\n"),
    ("images-empty", "images: {}\n"), ("not-utf8", b"program: \xff\xfe\n"),
    ("nul", 'program: ./exit3\nargs: ["a\\0b"]\n'), ("huge-int", "program: ./exit3\ncpus: 1" + "0" * 400 + "\n"),
    ("deep", "program: ./exit3\nargs: " + "[" * 200 + "]" * 200 + "\n"),
    ("bad-tag", "program: !!python/object:os.system ls\n"), ("env-tag", "program: !env ${}\n"),
    ("merge-bad", "program: ./exit3\n<<: 5\n"), ("missing-program", "args: [a]\n"),
    ("program-missing-file", "program: ./nope\n"), ("map-up", "program: ./exit3\nmap: {'*': /../etc}\n"),
    ("bom-only", "\ufeff"), ("anchors-laughs", "program: ./exit3\nargs:\n  - &a [x,x,x,x,x,x,x,x,x,x]\n"
                                                + "".join(f"  - &{n} [" + ",".join([f"*{p}"] * 10)
                                                          + "]\n" for p, n in zip("abcdef", "bcdefg", strict=True))),
]

OPS_FILES = [
    ("syntax", '{"Program": "exit3",\n "Args": ["a" "b"]}'), ("trailing-comma", '{"Program": "exit3",}'),
    ("unclosed", '{"Program": "exit3"'), ("single-quotes", "{'Program': 'exit3'}"),
    ("comment", '{"Program": "exit3" // c\n}'), ("array-root", '["exit3"]'),
    ("unknown-key", '{"Program": "exit3", "Bogus": 1}'), ("args-string", '{"Program": "exit3", "Args": "x"}'),
    ("ports-bad", '{"Program": "exit3", "RunConfig": {"Ports": ["abc"]}}'),
    ("memory-bad", '{"Program": "exit3", "RunConfig": {"Memory": "lots"}}'),
    ("env-list", '{"Program": "exit3", "Env": ["A"]}'), ("files-missing", '{"Program": "exit3", "Files": ["nope"]}'),
    ("dirs-missing", '{"Program": "exit3", "Dirs": ["nope"]}'), ("mapdirs-bad", '{"Program": "exit3", "MapDirs": ["x"]}'),
    ("program-missing", '{"Args": ["a"]}'), ("program-number", '{"Program": 5}'),
    ("nan", '{"Program": "exit3", "RunConfig": {"CPUs": NaN}}'), ("empty", ""),
    ("null", "null"), ("mixed", '{"Program": "exit3", "memory": "1G"}'),
    ("deep", '{"Program": "exit3", "Args": ' + "[" * 300 + "]" * 300 + "}"),
    ("bad-escape", '{"Program": "exit\\q3"}'), ("lone-surrogate", '{"Program": "\\ud800"}'),

]


def config_cases() -> list[Case]:
    c = [Case(f"yaml-{name}", ["build", "c.yaml"], {"c.yaml": text, "exit3": EXE})
         for name, text in YAML_FILES]
    c += [Case(f"ops-{name}", ["build", "config.json"], {"config.json": text, "exit3": EXE})
          for name, text in OPS_FILES]
    c.append(Case("ops-syntax-says-json", ["build", "config.json"],
                  {"config.json": '{"Program": "exit3",\n "Args": ["a" "b"]}'},
                  "config.json:2:15: not valid JSON"))
    return c


def elf(mutate: Callable[[bytearray], None]) -> Callable[[Path], bytes]:
    def make(exe: Path) -> bytes:
        data = bytearray(exe.read_bytes())
        mutate(data)
        return bytes(data)
    return make


def _set(offset: int, value: bytes) -> Callable[[bytearray], None]:
    def mutate(data: bytearray) -> None:
        data[offset:offset + len(value)] = value
    return mutate


ELF_CASES = [
    ("empty", lambda exe: b""), ("magic-only", lambda exe: b"\x7fELF"),
    ("header-only", lambda exe: exe.read_bytes()[:64]), ("truncated", lambda exe: exe.read_bytes()[:200]),
    ("half", lambda exe: exe.read_bytes()[: len(exe.read_bytes()) // 2]),
    ("random", lambda exe: b"\x7fELF" + bytes(range(256)) * 8),
    ("class32", elf(_set(4, b"\x01"))), ("class-bad", elf(_set(4, b"\x07"))),
    ("big-endian", elf(_set(5, b"\x02"))), ("arm64", elf(_set(18, struct.pack("<H", 183)))),
    ("riscv", elf(_set(18, struct.pack("<H", 243)))), ("type-rel", elf(_set(16, struct.pack("<H", 1)))),
    ("type-core", elf(_set(16, struct.pack("<H", 4)))), ("phoff-huge", elf(_set(32, struct.pack("<Q", 2**60)))),
    ("shoff-huge", elf(_set(40, struct.pack("<Q", 2**60)))),
    ("script", lambda exe: b"#!/bin/sh\necho hi\n"), ("python", lambda exe: b"print('hi')\n"),
    ("text", lambda exe: b"hello\n"), ("zeros", lambda exe: b"\0" * 4096),
]


def elf_cases() -> list[Case]:
    # made from the compiled program when the case runs
    return [Case(f"elf-{name}", ["build", "./prog"], {"prog": make}) for name, make in ELF_CASES]


HEADERS = [
    ("syntax", "int f(;\n"), ("missing-include", '#include "nope.h"\n'), ("error", "#error no\n"),
    ("binary", "\x00\x01\x02int"), ("unterminated-comment", "/* int f(void);\n"),
    ("bad-macro", "#define F(\n"), ("unbalanced", "struct s { int a;\n"),
    ("unterminated-string", 'const char *s = "abc;\n'), ("if-no-endif", "#if 1\nint x;\n"),
    ("not-utf8", b"int \xff\xfe(void);\n"),
]


def header_cases() -> list[Case]:
    c = [Case(f"header-{name}", ["c", "inspect", "./h.h"], {"h.h": text}) for name, text in HEADERS]
    c += [Case("header-none", ["c", "inspect", "./nope.h"], {}),
          Case("header-dir", ["c", "inspect", "./d"], {"d/x": "x"}),
          Case("header-lib-missing", ["c", "inspect", "./h.h", "--lib", "nope"], {"h.h": "int f(void);\n"},
               "engitor: library 'nope' not found"),
          Case("header-define-bad", ["c", "inspect", "./h.h", "-D", "=1"], {"h.h": "int f(void);\n"})]
    return c


def deb(files: dict[str, bytes], links: dict[str, str] | None = None, control: str | None = None,
        package: str = "linux-image-6.1.0-bad") -> Callable[[Path], bytes]:
    def make(folder: Path) -> bytes:
        root = Path(tempfile.mkdtemp(prefix="debroot-", dir=folder.parent))
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        for path, target in (links or {}).items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, root / path)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN/control").write_text(control or (
            f"Package: {package}\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@x.org>\n"
            "Description: test\n"))
        out = root.with_suffix(".deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True,
                       capture_output=True)
        data = out.read_bytes()
        shutil.rmtree(root)
        out.unlink()
        return data
    return make


VMLINUZ = {"boot/vmlinuz-6.1.0-bad": b"\0" * 1024}
DEB_CASES = [
    ("not-a-deb", lambda folder: b"hello"), ("empty", lambda folder: b""),
    ("ar-only", lambda folder: b"!<arch>\n"), ("no-vmlinuz", deb({"usr/share/doc/x": b"x"})),
    ("ko-link-to-host", deb(VMLINUZ, {"lib/modules/6.1.0-bad/kernel/evil.ko": "/etc/passwd"})),
    ("vmlinuz-link-to-host", deb({}, {"boot/vmlinuz-6.1.0-bad": "/etc/passwd"})),
    ("climbing-link", deb(VMLINUZ, {"lib/modules/6.1.0-bad/kernel/up.ko": "../../../../../../etc/passwd"})),
    ("dir-link-out", deb(VMLINUZ, {"lib/modules/6.1.0-bad/kernel": "/usr/lib"})),
]


def deb_cases() -> list[Case]:
    out = []
    for name, make in DEB_CASES:
        out.append(Case(f"deb-{name}", ["build", "./exit3", "--kernel", "./k.deb"],
                        {"exit3": EXE, "k.deb": make}))
    return out


CASES = cli_cases() + lua_cases() + config_cases() + elf_cases() + header_cases() + deb_cases()


def test_there_are_at_least_two_hundred_cases():
    assert len(CASES) >= 200, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(world, monkeypatch, capsys, tmp_path, case):
    folder = tmp_path / "case"
    folder.mkdir()
    files: dict[str, object] = {}
    for name, content in case.files.items():
        if callable(content):
            content = content(world["exe"]) if name == "prog" else content(folder)
        files[name] = content
    run_case(world, monkeypatch, capsys, Case(case.id, case.argv, files, case.expect), folder)


# -- generated cases ------------------------------------------------------------------------------

SETTING_NAMES = [k for k, _ in LUA_SETTINGS if k not in ("progam", "packages")]
JUNK = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
GEN = settings(max_examples=25, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@GEN
@given(key=st.sampled_from(SETTING_NAMES),
       value=st.one_of(st.lists(st.lists(st.integers()), min_size=1, max_size=3),
                       st.dictionaries(st.integers(1, 9), st.booleans(), min_size=1, max_size=3)))
def test_generated_lua_settings_of_the_wrong_shape(world, monkeypatch, capsys, tmp_path, key, value):
    text = f'image "a" {{ program = "./exit3", {key} = {_lua(value)} }}\n'
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    run_case(world, monkeypatch, capsys, Case("gen", ["build", "r.lua"], lua(text)), folder / "c")


@GEN
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10))
def test_generated_unknown_yaml_keys(world, monkeypatch, capsys, tmp_path, key):
    if key in SETTING_NAMES or key in ("program", "images", "name") or key.startswith("x_"):
        return
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    run_case(world, monkeypatch, capsys,
             Case("gen", ["build", "c.yaml"], {"c.yaml": f"program: ./exit3\n{key}: 1\n",
                                               "exit3": EXE}), folder / "c")


@GEN
@given(cut=st.integers(1, 60))
def test_generated_truncated_ops_json(world, monkeypatch, capsys, tmp_path, cut):
    text = '{"Program": "exit3", "Args": ["a", "b"], "RunConfig": {"Memory": "256M"}}'
    if cut >= len(text):
        return
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    run_case(world, monkeypatch, capsys,
             Case("gen", ["build", "config.json"], {"config.json": text[:cut], "exit3": EXE}),
             folder / "c")


@GEN
@given(junk=JUNK)
def test_generated_lua_syntax_junk(world, monkeypatch, capsys, tmp_path, junk):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    text = f'image "a" {{ program = "./exit3" }}\n{junk} = = ('
    run_case(world, monkeypatch, capsys, Case("gen", ["build", "r.lua"], lua(text)), folder / "c")


@GEN
@given(offset=st.integers(0, 63), byte=st.integers(0, 255))
def test_generated_corrupt_elf_headers(world, monkeypatch, capsys, tmp_path, offset, byte):
    data = bytearray(world["exe"].read_bytes()[:4096])
    data[offset] = byte
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    run_case(world, monkeypatch, capsys, Case("gen", ["build", "./prog"], {"prog": bytes(data)}),
             folder / "c")


def _lua(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    return repr(str(value))
