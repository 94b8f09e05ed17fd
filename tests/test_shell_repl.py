"""The interactive loop (engitor/shell/repl.py) driven through prompt_toolkit's pipe input:
keys go in as a terminal would send them (Enter is \\r, Tab \\t, Ctrl-C \\x03, Ctrl-D \\x04)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from engitor.shell.repl import history_path, interact
from engitor.shell.session import Session


@pytest.fixture
def shell(tmp_path, monkeypatch) -> Session:
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    return Session(out=io.StringIO(), err=io.StringIO(), cwd=tmp_path, width=80)


def session_of(shell: Session, *keys: str, history=None) -> tuple[int, str, str]:
    """Type `keys` into the shell, each string after the previous one had time to take
    effect (completion and history loading are asynchronous, as for a person typing);
    (exit status, stdout, stderr)."""
    with create_pipe_input() as inp:
        inp.send_text(keys[0])

        def rest() -> None:
            for chunk in keys[1:]:
                time.sleep(0.5)
                inp.send_text(chunk)

        typist = threading.Thread(target=rest)
        typist.start()
        try:
            code = interact(shell, input=inp, output=DummyOutput(), banner=False,
                            history=None if history is False else history or InMemoryHistory())
        finally:
            typist.join()
    return code, shell.out.getvalue(), shell.err.getvalue()


def test_expressions_statements_and_ctrl_d(shell):
    code, out, err = session_of(shell, "x = 20\r x + 1\r=x * 2\r\x04")
    assert (code, out, err) == (0, "21\n40\n", "")


def test_enter_continues_an_incomplete_chunk(shell):
    keys = "function fact(n)\rif n <= 1 then return 1 end\rreturn n * fact(n - 1)\rend\r" \
           "fact(10)\r" "t = {\r1,\r2}\r" "#t\r\x04"
    code, out, err = session_of(shell, keys)
    assert err == ""
    assert out == "3628800\n2\n"


def test_tab_completes_names(shell):
    code, out, err = session_of(shell, "string.for\t", "('%05d', 42)\r\x04")
    assert (out, err) == ('"00042"\n', "")


def test_tab_completes_a_c_name(shell):
    code, out, err = session_of(shell, "z = c.include('zlib.h', {lib = 'z'})\rz.crc3\t",
                                "(0, 'abc', 3)\r\x04")
    assert (out, err) == ("891568578ULL\n", "")


def test_tab_at_the_start_of_a_block_line_indents(shell):
    code, out, err = session_of(shell, "function g()\r\treturn 7\rend\rg()\r\x04")
    assert out == "7\n"
    # Enter keeps the indentation of the line before.
    assert shell.rt.sources["in[1]"] == "function g()\n  return 7\n  end"


def test_ctrl_c_drops_the_line_and_errors_do_not_end_the_session(shell):
    code, out, err = session_of(shell, "1 + \x03" "error('oops')\r" "2 + 2\r\x04")
    assert out == "4\n"
    assert err == "error: in[1]:1: oops\n"


def test_exit_leaves_with_its_status(shell):
    code, out, _ = session_of(shell, "print('bye')\rexit(4)\rprint('never')\r")
    assert (code, out) == (4, "bye\n")


def test_help_with_a_question_mark(shell):
    _, out, _ = session_of(shell, "?fs.write\r\x04")
    assert out.startswith("fs.write(path, data [, mode])\n")


def test_history_is_kept_in_the_engitor_home(shell, tmp_path):
    from prompt_toolkit.history import FileHistory

    # the default history: a file in the engitor home
    session_of(shell, "b = 2\rfunction h()\rreturn b\rend\r\x04", history=False)
    path = history_path()
    assert path == tmp_path / "home/shell_history"
    assert list(FileHistory(str(path)).load_history_strings()) == \
        ["function h()\nreturn b\nend", "b = 2"]
    # A new shell recalls both with Up. The function comes back as one chunk of three lines,
    # which Up walks through before going on to the entry before it.
    up = "\x1b[A"
    fresh = Session(out=io.StringIO(), err=io.StringIO(), cwd=tmp_path)
    code, out, err = session_of(fresh, "", up * 4 + "\r", up * 2 + "\r", "=h()\r\x04",
                                history=False)
    assert (out, err) == ("2\n", "")
