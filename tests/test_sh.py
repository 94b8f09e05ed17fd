"""`sh`: host programs as functions, from Python (the core) and from a Lua script scope."""

from __future__ import annotations

import os
import shutil

import pytest

from engitor.errors import UserError
from engitor.lua.api import sh

# -- the Python core ------------------------------------------------------------------------

def test_argv_of_stringifies_numbers_and_refuses_the_rest():
    assert sh.argv_of("head", ["-n", 3, 2.0, 1.5]) == ["head", "-n", "3", "2", "1.5"]
    with pytest.raises(UserError, match="argument 1 of ls is True"):
        sh.argv_of("ls", [True])
    with pytest.raises(UserError, match="is a dict"):
        sh.argv_of("ls", [{}])


def test_environment_overrides_and_unsets():
    env = sh.environment({"A": "1", "HOME": None, "N": 5}, base={"HOME": "/root", "B": "2"})
    assert env == {"B": "2", "A": "1", "N": "5"}


def test_run_returns_stdout_and_text_strips_one_newline():
    r = sh.run(["printf", "a\\nb\\n\\n"])
    assert r.stdout == b"a\nb\n\n" and r.text == "a\nb\n" and r.code == 0


def test_failure_carries_exit_code_and_stderr(tmp_path):
    with pytest.raises(sh.CommandFailed) as e:
        sh.run(["ls", str(tmp_path / "missing")])
    assert e.value.code == 2 and b"No such file" in e.value.stderr
    assert str(e.value).startswith(f"ls {tmp_path}/missing: exit code 2: ls: cannot access")
    assert isinstance(e.value, UserError)
    r = sh.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (r.stdout, r.stderr, r.code) == (b"out\n", b"err\n", 3)


def test_killed_by_a_signal_is_named():
    with pytest.raises(sh.CommandFailed, match="killed by SIGTERM"):
        sh.run(["sh", "-c", "kill -TERM $$"])


def test_arguments_are_never_shell_syntax(tmp_path):
    marker = tmp_path / "pwned"
    out = sh.run(["echo", f"$(touch {marker})", ";", "rm", "-rf", "/"]).text
    assert out == f"$(touch {marker}) ; rm -rf /" and not marker.exists()
    assert sh.shell(f"touch {marker} && echo made").text == "made" and marker.exists()


def test_pipes_connect_processes_and_stdin_env_cwd_apply(tmp_path):
    (tmp_path / "f1.txt").write_text("")
    (tmp_path / "g.lua").write_text("")
    r = sh.pipe([["ls"], ["grep", "txt"]], cwd=str(tmp_path))
    assert r.text == "f1.txt"
    r = sh.pipe([["tr", "a-z", "A-Z"], ["rev"]], stdin="hello")
    assert r.text == "OLLEH"
    assert sh.run(["sh", "-c", "echo $ENGITOR_T"], env={"ENGITOR_T": "x y"}).text == "x y"
    # a producer stopped by SIGPIPE because the consumer is done is not a failure
    assert sh.pipe([["yes"], ["head", "-3"]]).text == "y\ny\ny"
    with pytest.raises(sh.CommandFailed, match=r"^false: exit code 1"):
        sh.pipe([["false"], ["cat"]])


def test_bad_invocations_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="command not found: no-such-cmd"):
        sh.run(["no-such-cmd"])
    with pytest.raises(UserError, match="is not a directory"):
        sh.run(["ls"], cwd=str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"timed out after 0\.2 s"):
        sh.run(["sleep", "5"], timeout=0.2)


# -- from Lua -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rt():
    from engitor.lua.runtime import Runtime
    return Runtime()


@pytest.fixture()
def lua(rt):
    env = rt.script_env()

    def run(code: str, *args):
        return rt.call(rt.compile(code, env, "hook.lua"), *args)
    return run


def test_lua_calls_commands_as_functions(lua, tmp_path):
    (tmp_path / "x.txt").write_text("")
    out = lua("""
        local d = ...
        return sh.echo("hello", 42), sh{"ls", cwd = d}, sh.ls({cwd = d}),
               sh.pipe{{"printf", "a\\nb\\n"}, {"grep", "b"}}, sh.cat({stdin = "in"}),
               sh.shell("echo $X", {env = {X = "from env"}})
    """, str(tmp_path))
    assert out == ("hello 42", "x.txt", "x.txt", "b", "in", "from env")


def test_lua_failure_is_a_clean_error_with_code_and_stderr(lua):
    with pytest.raises(UserError) as e:
        lua('local x = sh.ls("/nonexistent/dir")')
    msg = str(e.value)
    assert msg.startswith("hook.lua:1: ls /nonexistent/dir: exit code 2: ls: cannot access")
    assert "Traceback" not in msg


def test_lua_check_false_returns_code_and_stderr(lua):
    out, code, err = lua('return sh.sh("-c", "echo o; echo e >&2; exit 4", {check = false})')
    assert (out, code, err) == ("o\n", 4, "e\n")


def test_lua_refuses_bad_arguments_and_options(lua):
    with pytest.raises(UserError, match="arguments are strings or numbers"):
        lua("sh.echo(true)")
    with pytest.raises(UserError, match="unknown option 'cdw'"):
        lua('sh{"ls", cdw = "/"}')


def test_lua_sh_is_not_in_the_description_scope(rt):
    env = rt.description_env()
    assert rt.eval("return sh, c, ffi", env, "recipe.lua") in ((), (None, None, None))


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_rev_parse_like_the_issue(lua, tmp_path):
    sh.run(["git", "init", "-q", str(tmp_path)])
    sh.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
            "--allow-empty", "-m", "x"], cwd=str(tmp_path))
    head = sh.run(["git", "rev-parse", "HEAD"], cwd=str(tmp_path)).text
    assert lua('return sh.git("rev-parse", "HEAD", {cwd = ...})', str(tmp_path)) == (head,)
    assert len(head) == 40 and os.path.isdir(tmp_path / ".git")
