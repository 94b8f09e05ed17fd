"""`fs` in the script scope: file operations confined to one tree, seen as the guest sees it."""

from __future__ import annotations

import os
import stat

import pytest

from engitor.errors import UserError
from engitor.lua.runtime import Runtime


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "recipe"
    staging = tmp_path / "staging"
    src.mkdir()
    staging.mkdir()
    (src / "index.html").write_text("<h1>hi</h1>")
    (src / "conf").mkdir()
    (src / "conf" / "app.conf").write_text("port=80\n")
    rt = Runtime(base_dir=src)
    env = rt.script_env(staging)
    return rt, env, src, staging


def lua(setup, code: str):
    rt, env, _, _ = setup
    return rt.eval(code, env, "hook.lua")


def test_absolute_paths_are_guest_paths_inside_the_staging_root(setup):
    _, _, _, staging = setup
    assert lua(setup, """
        fs.write("/etc/app/motd", "hello\\n")
        fs.append("etc/app/motd", "again\\n")
        return fs.read("/etc/app/motd"), fs.exists("/etc/app"), fs.isdir("/etc/app"),
               fs.isfile("/etc/app/motd"), fs.root, fs.writable
    """) == ("hello\nagain\n", True, True, True, str(staging), True)
    assert (staging / "etc/app/motd").read_text() == "hello\nagain\n"


def test_dotdot_and_symlinks_stay_inside_the_tree(setup, tmp_path):
    _, _, _, staging = setup
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (staging / "etc").mkdir()
    os.symlink("/secret.txt", staging / "etc" / "abs-link")        # absolute: into the tree
    os.symlink("../../../secret.txt", staging / "etc" / "rel-link")
    lua(setup, 'fs.write("/../../../secret.txt", "inside")')
    assert secret.read_text() == "host secret"
    assert (staging / "secret.txt").read_text() == "inside"
    assert lua(setup, 'return fs.read("/etc/abs-link"), fs.read("etc/rel-link")') == \
        ("inside", "inside")
    lua(setup, 'fs.write("/etc/abs-link", "through the link")')
    assert secret.read_text() == "host secret"
    assert lua(setup, 'return fs.path("/../x")') == (str(staging / "x"),)


def test_symlinks_are_made_as_the_guest_will_read_them(setup):
    _, _, _, staging = setup
    lua(setup, 'fs.write("/usr/bin/busybox", "bb", "755") fs.symlink("/usr/bin/busybox", "/bin/sh")')
    assert os.readlink(staging / "bin/sh") == "/usr/bin/busybox"
    assert stat.S_IMODE((staging / "usr/bin/busybox").stat().st_mode) == 0o755
    assert lua(setup, 'return fs.read("/bin/sh"), fs.stat("/bin/sh").type') == ("bb", "link")


def test_list_glob_stat_chmod_remove(setup):
    assert lua(setup, """
        fs.write("/www/a.html", "a") fs.write("/www/b.html", "bb") fs.write("/www/sub/c.css", "c")
        fs.chmod("/www/a.html", 384)
        local st = fs.stat("/www/b.html")
        local listed = table.concat(fs.list("/www"), ",")
        local globbed = table.concat(fs.glob("/www/**/*.css"), ",")
        local html = table.concat(fs.glob("www/*.html"), ",")
        fs.remove("/www/b.html")
        local ok = pcall(fs.remove, "/www/sub")
        fs.remove("/www/sub", {recursive = true})
        return listed, globbed, html, st.size, st.type, fs.stat("/www/a.html").mode,
               ok, table.concat(fs.list("/www"), ","), fs.stat("/nope") == nil
    """) == ("a.html,b.html,sub", "/www/sub/c.css", "www/a.html,www/b.html", 2, "file", 384,
             False, "a.html", True)


def test_binary_data_round_trips(setup):
    _, _, src, staging = setup
    data = bytes(range(256)) * 4
    (src / "blob.bin").write_bytes(data)
    lua(setup, 'fs.write("/blob.bin", fs.src.read("blob.bin"))')
    assert (staging / "blob.bin").read_bytes() == data
    assert lua(setup, 'return #fs.read("/blob.bin")') == (1024,)
    lua(setup, 'fs.write("/nul.bin", "a\\0b\\255")')
    assert (staging / "nul.bin").read_bytes() == b"a\0b\xff"


def test_the_recipe_folder_is_readable_not_writable(setup):
    _, _, src, staging = setup
    assert lua(setup, 'return fs.src.read("conf/app.conf"), fs.src.writable') == \
        ("port=80\n", False)
    with pytest.raises(UserError, match=r"hook.lua:1: conf/x: this fs is read-only"):
        lua(setup, 'fs.src.write("conf/x", "y")')
    lua(setup, 'fs.copy_in("conf", "/etc/app") fs.copy_in("index.html", "/www/")')
    assert (staging / "etc/app/app.conf").read_text() == "port=80\n"
    assert (staging / "www/index.html").read_text() == "<h1>hi</h1>"
    lua(setup, 'fs.copy("/www/index.html", "/www/copy.html")')
    assert (staging / "www/copy.html").read_text() == "<h1>hi</h1>"


def test_other_trees_only_when_asked(setup):
    _, _, src, _ = setup
    (src / "out").mkdir()
    with pytest.raises(UserError, match="read-only"):
        lua(setup, 'fs.at("out").write("x.txt", "1")')
    lua(setup, 'fs.at("out", {write = true}).write("x.txt", "1")')
    assert (src / "out/x.txt").read_text() == "1"


def test_errors_are_lua_errors_at_the_callers_line(setup):
    with pytest.raises(UserError) as e:
        lua(setup, 'local x = 1\nlocal y = fs.read("/missing")')
    assert str(e.value).startswith("hook.lua:2: ") and "No such file or directory" in str(e.value)
    assert lua(setup, 'local ok, e = pcall(fs.write, 42, "x") return ok, e') == \
        (False, "expected a path (a non-empty string), got 42")
    assert lua(setup, 'local ok, e = pcall(fs.write) return ok, e') == \
        (False, "write: wrong number of arguments (0 given)")
    with pytest.raises(UserError, match="refusing to remove the root"):
        lua(setup, 'fs.remove("/", {recursive = true})')


def test_path_helpers(setup):
    assert lua(setup, 'return fs.join("a", "b", "c.txt"), fs.basename("/x/y.conf"), '
                      'fs.dirname("/x/y.conf"), fs.match("y.conf", "*.conf")') == \
        ("a/b/c.txt", "y.conf", "/x", True)


def test_without_staging_fs_reads_the_recipe_folder(tmp_path):
    (tmp_path / "a.txt").write_text("A")
    rt = Runtime(base_dir=tmp_path)
    env = rt.script_env()
    assert rt.eval('return fs.read("a.txt"), fs.writable', env, "x.lua") == ("A", False)
    shell = rt.script_env(fs_root=tmp_path, fs_writable=True)
    rt.eval('fs.write("b.txt", "B")', shell, "x.lua")
    assert (tmp_path / "b.txt").read_text() == "B"
