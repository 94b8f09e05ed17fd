"""engitor.proc: the one way to run a program (real programs, no mocks)."""

from __future__ import annotations

import signal

import pytest

from engitor import proc
from engitor.errors import UserError


def test_run_captures_and_answers_through_returncode():
    done = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_check_turns_failure_into_one_error_with_stderr_tail():
    script = "for i in 1 2 3 4 5; do echo line$i >&2; done; exit 4"
    with pytest.raises(UserError) as e:
        proc.run(["sh", "-c", script], check=True, what="the probe", hint="look")
    assert str(e.value) == "the probe failed (exit code 4): line3 / line4 / line5 (hint: look)"
    assert "\n" not in str(e.value)


def test_output_is_stripped_stdout():
    assert proc.output(["printf", "  hello \n"]) == "hello"


def test_input_and_locale():
    assert proc.run(["cat"], input="abc").stdout == "abc"
    # engitor parses what programs print: they speak the C locale whatever the user's is.
    assert proc.run(["sh", "-c", "echo $LC_ALL"]).stdout.strip() == "C.UTF-8"
    assert proc.run(["sh", "-c", "echo $X"], env={"X": "1"}).stdout.strip() == "1"


def test_missing_program_is_the_users_to_install():
    with pytest.raises(UserError, match="no-such-tool-here is not installed") as e:
        proc.run(["no-such-tool-here", "x"], hint="apt-get install it")
    assert e.value.hint == "apt-get install it"


def test_timeout_is_one_error():
    with pytest.raises(UserError, match=r"sleep did not finish within 0\.2 s"):
        proc.run(["sleep", "5"], timeout=0.2)


def test_exit_words():
    assert proc.exit_words(0) == "exit code 0"
    assert proc.exit_words(2) == "exit code 2"
    assert proc.exit_words(-signal.SIGSEGV) == "killed by SIGSEGV (signal 11)"


def test_spawn_and_echo_under_debug(capsys):
    proc.set_echo(True)
    try:
        p = proc.spawn(["sh", "-c", "echo 'a b'"], stdout=proc.PIPE)
        out, _ = p.communicate()
    finally:
        proc.set_echo(False)
    assert out == b"a b\n"
    assert capsys.readouterr().err == "+ sh -c 'echo '\"'\"'a b'\"'\"''\n"
