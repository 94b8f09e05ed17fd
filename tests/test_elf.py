"""The ELF closure, on real programs built by the test: dynamic, PIE, static, static-PIE, Go,
RPATH/RUNPATH with $ORIGIN, a missing library, and files that are not x86-64 programs."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engitor.errors import UserError
from engitor.image import elf

HELLO = '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n'
LIB = "int answer(void){return 42;}\n"
USES_LIB = '#include <stdio.h>\nint answer(void);\nint main(void){printf("%d\\n",answer());}\n'


def cc(tmp: Path, name: str, source: str, *flags: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["cc", "-o", str(out), str(src), *flags], check=True)
    return out


def closure_of(path: Path, **kw) -> dict[str, Path]:
    return elf.closure(str(path), path, **kw).objects


def test_dynamic_pie(tmp_path: Path):
    prog = cc(tmp_path, "hello", HELLO, "-pie", "-fPIE")
    info = elf.read_elf(prog)
    assert info.kind == "ET_DYN" and info.interp == "/lib64/ld-linux-x86-64.so.2"
    objs = closure_of(prog)
    assert "/lib64/ld-linux-x86-64.so.2" in objs
    assert "/lib/x86_64-linux-gnu/libc.so.6" in objs
    assert objs[str(prog)] == prog


def test_static_and_static_pie_need_nothing(tmp_path: Path):
    for flags in (["-static"], ["-static-pie"]):
        prog = cc(tmp_path, "static" + flags[0], HELLO, *flags)
        info = elf.read_elf(prog)
        assert info.static
        assert list(closure_of(prog)) == [str(prog)]


def test_go_binary(tmp_path: Path):
    if not shutil.which("go"):
        pytest.skip("golang-go not installed")
    (tmp_path / "main.go").write_text('package main\nimport "fmt"\nfunc main(){fmt.Println("hi")}\n')
    env = {**os.environ, "GOCACHE": str(tmp_path / "cache"), "GOPATH": str(tmp_path / "gopath"),
           "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    subprocess.run(["go", "mod", "init", "example.com/hi"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    subprocess.run(["go", "build", "-o", "hi", "."], cwd=tmp_path, env=env, check=True)
    info = elf.read_elf(tmp_path / "hi")
    assert info.go and info.static
    assert list(closure_of(tmp_path / "hi")) == [str(tmp_path / "hi")]


@pytest.mark.parametrize("tags", ["--disable-new-dtags", "--enable-new-dtags"])
def test_origin_rpath_and_runpath(tmp_path: Path, tags: str):
    (tmp_path / "lib").mkdir()
    cc(tmp_path / "lib", "libanswer.so", LIB, "-shared", "-fPIC")
    prog = cc(tmp_path, "app", USES_LIB, "-L", str(tmp_path / "lib"), "-lanswer",
              f"-Wl,{tags},-rpath,$ORIGIN/lib")
    info = elf.read_elf(prog)
    assert (info.rpath if tags.startswith("--disable") else info.runpath) == ("$ORIGIN/lib",)
    objs = closure_of(prog)
    assert objs[str(tmp_path / "lib/libanswer.so")] == tmp_path / "lib/libanswer.so"
    # the real loader agrees
    assert subprocess.run([str(prog)], capture_output=True, text=True).stdout == "42\n"


def test_origin_is_the_guest_folder(tmp_path: Path):
    """$ORIGIN expands to where the object sits in the guest, looked up through the roots."""
    root = tmp_path / "root"
    (root / "opt/app/lib").mkdir(parents=True)
    cc(root / "opt/app/lib", "libanswer.so", LIB, "-shared", "-fPIC")
    prog = cc(root / "opt/app", "app", USES_LIB, "-L", str(root / "opt/app/lib"), "-lanswer",
              "-Wl,-rpath,$ORIGIN/lib")
    objs = elf.closure("/opt/app/app", prog, roots=[root, Path("/")]).objects
    assert objs["/opt/app/lib/libanswer.so"] == root / "opt/app/lib/libanswer.so"


def test_roots_are_searched_first(tmp_path: Path):
    """A runtime package's tree shadows the host: its libc is used, at the guest path."""
    prog = cc(tmp_path, "hello", HELLO)
    root = tmp_path / "root"
    fake = root / "lib/x86_64-linux-gnu/libc.so.6"
    fake.parent.mkdir(parents=True)
    shutil.copy2("/lib/x86_64-linux-gnu/libc.so.6", fake)
    objs = closure_of(prog, roots=[root, Path("/")])
    assert objs["/lib/x86_64-linux-gnu/libc.so.6"] == fake


def test_missing_library_names_it_and_who_needs_it(tmp_path: Path):
    (tmp_path / "lib").mkdir()
    cc(tmp_path / "lib", "libanswer.so", LIB, "-shared", "-fPIC")
    prog = cc(tmp_path, "app", USES_LIB, "-L", str(tmp_path / "lib"), "-lanswer")
    with pytest.raises(UserError) as e:
        closure_of(prog)
    assert "library libanswer.so not found (needed by" in e.value.message
    assert str(prog) in e.value.message
    assert "searched" in e.value.hint


def test_library_path_is_honoured(tmp_path: Path):
    (tmp_path / "lib").mkdir()
    cc(tmp_path / "lib", "libanswer.so", LIB, "-shared", "-fPIC")
    prog = cc(tmp_path, "app", USES_LIB, "-L", str(tmp_path / "lib"), "-lanswer")
    objs = closure_of(prog, library_path=[str(tmp_path / "lib")])
    assert str(tmp_path / "lib/libanswer.so") in objs


def test_not_programs(tmp_path: Path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(UserError, match="is not an ELF executable"):
        elf.read_elf(script)
    with pytest.raises(UserError, match="is a directory"):
        elf.read_elf(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        elf.read_elf(tmp_path / "nope")
    damaged = tmp_path / "damaged"
    damaged.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9)
    with pytest.raises(UserError, match="damaged ELF"):
        elf.read_elf(damaged)


def arm64_copy(tmp_path: Path) -> Path:
    """The same program with its header saying AArch64 (e_machine 183), as a cross build has."""
    prog = cc(tmp_path, "hello", HELLO)
    data = bytearray(prog.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")
    other = tmp_path / "hello-arm64"
    other.write_bytes(bytes(data))
    return other


def test_other_architecture_is_refused(tmp_path: Path):
    other = arm64_copy(tmp_path)
    with pytest.raises(UserError) as e:
        elf.closure(str(other), other)
    assert "built for arm64" in e.value.message and "x86-64" in e.value.hint


def test_ld_so_conf_parsing(tmp_path: Path):
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n/opt/first\n")
    (tmp_path / "etc/ld.so.conf.d/b.conf").write_text("# comment\n/opt/b\n")
    (tmp_path / "etc/ld.so.conf.d/a.conf").write_text("/opt/a/\n")
    assert elf.ld_so_conf_dirs(tmp_path) == ["/opt/a", "/opt/b", "/opt/first"]


def test_origin_relative_libraries_of_a_program_placed_elsewhere_in_the_guest(tmp_path: Path):
    """`engitor run ./app` puts app at /app; its $ORIGIN/lib libraries are found beside it on
    the host and placed under /lib in the guest, where the loader will look."""
    (tmp_path / "lib").mkdir()
    cc(tmp_path / "lib", "libanswer.so", LIB, "-shared", "-fPIC")
    prog = cc(tmp_path, "app", USES_LIB, "-L", str(tmp_path / "lib"), "-lanswer",
              "-Wl,-rpath,$ORIGIN/missing:$ORIGIN/lib")
    result = elf.closure("/app", prog)
    assert result.objects["/lib/libanswer.so"] == tmp_path / "lib/libanswer.so"
    assert result.searched[:2] == [str(tmp_path / "missing"), str(tmp_path / "lib")]
