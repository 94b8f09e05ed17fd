"""The shell's core (engitor/shell/session.py, lua/shell.lua): what typed chunks mean, how values
print, help, errors, scripts and pipes. Real LuaJIT, real C bridge, no terminal."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engitor.shell import docs
from engitor.shell.session import Session, ShellExit


@pytest.fixture
def shell(tmp_path, monkeypatch) -> Session:
    monkeypatch.setenv("ENGITOR_HOME", str(tmp_path / "home"))
    return Session(out=io.StringIO(), err=io.StringIO(), cwd=tmp_path, width=80)


def run(shell: Session, text: str) -> str:
    """Execute one chunk; what it printed (stdout) since the last call."""
    out = shell.out
    out.seek(0)
    out.truncate()
    shell.execute(text)
    return out.getvalue()


def err(shell: Session) -> str:
    text = shell.err.getvalue()
    shell.err.seek(0)
    shell.err.truncate()
    return text


# -- expressions, statements, results ----------------------------------------------------------


def test_expressions_print_without_equals_and_with_it(shell):
    assert run(shell, "1 + 1") == "2\n"
    assert run(shell, "=2 * 3") == "6\n"
    assert run(shell, "x = 5") == ""
    assert run(shell, "x") == "5\n"


def test_multiple_results_and_nils_are_shown(shell):
    assert run(shell, "1, nil, 'x'") == '1\tnil\t"x"\n'
    assert run(shell, "function two() return 'a', {1} end") == ""
    assert run(shell, "two()") == '"a"\t{1}\n'
    assert run(shell, "return 3, 4") == "3\t4\n"


def test_a_top_level_local_lives_on_but_block_locals_do_not(shell):
    run(shell, "local a, b = 1, 2")
    assert run(shell, "a + b") == "3\n"
    run(shell, "local function twice(n) local inner = n return 2 * inner end")
    assert run(shell, "twice(4)") == "8\n"
    assert run(shell, "inner") == "nil\n"
    run(shell, "do local hidden = 1 end")
    assert run(shell, "hidden") == "nil\n"


def test_print_goes_to_the_shell_output(shell):
    assert run(shell, "print('hi', 1, nil)") == "hi\t1\tnil\n"


# -- pretty printing -----------------------------------------------------------------------------


def test_tables_fit_on_one_line_when_they_can(shell):
    assert run(shell, "{1, 2, 'three', k = true, ['two words'] = 1, [10] = 0}") == \
        '{1, 2, "three", [10] = 0, k = true, ["two words"] = 1}\n'
    assert run(shell, "{}") == "{}\n"


def test_wide_tables_are_laid_out_with_nesting(shell):
    text = run(shell, "{name = string.rep('n', 40), inner = {alpha = string.rep('a', 40), "
                      "beta = {1, 2}}}")
    assert text == (
        "{\n"
        "  inner = {\n"
        f'    alpha = "{"a" * 40}",\n'
        "    beta = {1, 2},\n"
        "  },\n"
        f'  name = "{"n" * 40}",\n'
        "}\n")


def test_depth_and_item_limits(shell):
    assert run(shell, "{a = {b = {c = {d = {e = 1}}}}}") == "{a = {b = {c = {d = {…1}}}}}\n"
    text = run(shell, "t = {} for i = 1, 120 do t[i] = i end return t")
    assert "…(70 more)" in text and "\n  1, 2, 3," in text and " 50," in text and " 51," not in text


def test_cycles_and_shared_tables_are_marked(shell):
    run(shell, "t = {name = 'loop'}")
    run(shell, "t.self = t")
    assert run(shell, "t") == '<1>{name = "loop", self = <cycle 1>}\n'
    run(shell, "s = {1}")
    assert run(shell, "{s, s, {s}}") == "{<1>{1}, <table 1>, {<table 1>}}\n"


def test_strings_numbers_and_functions(shell):
    assert run(shell, "'tab\\there \"q\"'") == '"tab\\there \\"q\\""\n'
    assert run(shell, "'two\\nlines\\n'") == "[[two\nlines\n]]\n"
    assert run(shell, "'has ]] inside\\n'") == "[=[has ]] inside\n]=]\n"
    assert f'"{"x" * 200}"…(250 bytes)' in run(shell, "{s = string.rep('x', 250)}")
    assert run(shell, "2^53, 0.1, 1/0, -1/0") == "9007199254740992\t0.1\tmath.huge\t-math.huge\n"
    assert run(shell, "fs.read") == "<function fs.read>\n"
    run(shell, "function f() end")
    assert run(shell, "f").startswith("<function in[")


def test_tostring_metamethods_show_objects(shell):
    run(shell, "p = setmetatable({}, {__tostring = function() return '<point 1,2>' end})")
    assert run(shell, "{p}") == "{<point 1,2>}\n"
    run(shell, "z = c.include('zlib.h', {lib = 'z'})")
    assert re.fullmatch(r"C namespace: zlib\.h \(\d+ names\)\n", run(shell, "z"))


def test_c_values(shell):
    run(shell, "z = c.include('zlib.h', {lib = 'z'})")
    assert run(shell, "z.crc32(0, 'abc', 3)") == "891568578ULL\n"
    assert run(shell, "z.Z_OK") == "0\n"


# -- errors ----------------------------------------------------------------------------------------


def test_errors_print_cleanly_and_the_shell_goes_on(shell):
    assert not shell.execute("error('boom')")
    assert err(shell) == "error: in[1]:1: boom\n"
    assert not shell.execute("nosuch.field = 1")
    assert "in[2]:1: 'nosuch' is not defined" in err(shell)
    assert not shell.execute("x = = 1")
    assert err(shell).startswith("error: in[3]:1: unexpected symbol near '='")
    assert run(shell, "1") == "1\n"


def test_ctrl_c_interrupts_running_lua_and_the_shell_goes_on(shell):
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            shell.execute("while true do end")
    finally:
        timer.cancel()
    assert run(shell, "1 + 2") == "3\n"


def test_exit_ends_with_a_status_no_pcall_can_swallow(shell):
    with pytest.raises(ShellExit) as e:
        shell.execute("pcall(exit, 3)")
    assert e.value.code == 3
    with pytest.raises(ShellExit) as e:
        shell.execute("exit()")
    assert e.value.code == 0


def test_incomplete_chunks_ask_for_more(shell):
    for text in ("function f()", "if x then", "t = {", "1 +", "print(", "x = [[long",
                 "--[[ open comment"):
        assert shell.incomplete(text), text
    for text in ("t", "x = 1", "f()", "end", "'unterminated", "?fs", "", "=1"):
        assert not shell.incomplete(text), text


# -- help ------------------------------------------------------------------------------------------


def test_help_of_engitor_functions(shell):
    assert run(shell, "help(fs.read)") == docs.DOCS["fs.read"] + "\n"
    assert run(shell, "?engitor.run") == docs.DOCS["engitor.run"] + "\n"
    assert run(shell, "?sh.pipe") == docs.DOCS["sh.pipe"] + "\n"
    listing = run(shell, "?fs")
    assert listing.startswith(docs.MODULES["fs"]) and "  fs.write(path, data [, mode])" in listing
    assert run(shell, "help()").startswith("engitor shell:")


def test_help_of_a_c_function_is_its_signature(shell):
    run(shell, "z = c.include('zlib.h', {lib = 'z'})")
    sig = "uLong crc32(uLong crc, const Bytef *buf, uInt len)  -- zlib.h:"
    assert run(shell, "?z.crc32").startswith(f"z.crc32: {sig}")
    assert run(shell, "help(z.crc32)").startswith(f"z.crc32: {sig}")  # found by value
    assert "functions" in run(shell, "help(z)")


def test_help_of_user_functions_shows_their_source(shell):
    run(shell, "function area(w, h)\n  return w * h\nend")
    text = run(shell, "help(area)")
    assert text == "area: defined at in[1]:1\n  function area(w, h)\n    return w * h\n  end\n"


def test_every_function_in_scope_has_a_doc():
    s = Session(out=io.StringIO(), err=io.StringIO())
    missing = []
    for module in ("fs", "sh", "log", "c", "engitor"):
        table = s.env[module]
        for key in table.keys():
            value = table[key]
            if s.lua.eval("type")(value) == "function" and f"{module}.{key}" not in docs.DOCS:
                missing.append(f"{module}.{key}")
    vm_lua = (Path(__file__).parents[1] / "lua/vm.lua").read_text()
    for name in re.findall(r"^function methods\.(\w+)", vm_lua, re.M):
        if f"vm:{name}" not in docs.DOCS:
            missing.append(f"vm:{name}")
    for name in ("help", "exit"):
        assert name in docs.DOCS
    assert missing == []


# -- scripts and pipes ---------------------------------------------------------------------------


def engitor_shell(*args: str, stdin: str | None = None, cwd: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engitor", "shell", *args], input=stdin,
                          text=True, capture_output=True, cwd=cwd, timeout=120,
                          env={**os.environ, **(env or {})})


def test_a_script_runs_with_its_arguments_and_exit_status(tmp_path):
    script = tmp_path / "count.lua"
    script.write_text("#!/usr/bin/env engitor shell\n"
                      "print(arg[0], arg[1], select('#', ...))\n"
                      "fs.write('out.txt', table.concat(arg, ','))\n"
                      "exit(#arg)\n")
    proc = engitor_shell(str(script), "a", "b", "-x", cwd=tmp_path,
                         env={"ENGITOR_HOME": str(tmp_path / "h")})
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == f"{script}\ta\t3\n"
    assert (tmp_path / "out.txt").read_text() == "a,b,-x"


def test_a_failing_script_says_where_in_one_line(tmp_path):
    script = tmp_path / "bad.lua"
    script.write_text("local x = 1\nerror('no luck')\n")
    proc = engitor_shell(str(script), env={"ENGITOR_HOME": str(tmp_path / "h")})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"engitor: {script}:2: no luck")
    assert "Traceback" not in proc.stderr
    missing = engitor_shell(str(tmp_path / "none.lua"), env={"ENGITOR_HOME": str(tmp_path / "h")})
    assert missing.returncode == 2 and "no such script" in missing.stderr


def test_a_pipe_runs_like_typed_lines_without_prompt_or_colour(tmp_path):
    proc = engitor_shell(stdin="print(1+1)\nt = {1, {2}}\nt\nfunction f(x)\n  return x * 3\nend\n"
                               "f(2)\n", env={"ENGITOR_HOME": str(tmp_path / "h"),
                                              "TERM": "xterm-256color"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2\n{1, {2}}\n6\n"
    assert "\x1b" not in proc.stdout + proc.stderr


def test_a_pipe_stops_at_the_first_error(tmp_path):
    proc = engitor_shell(stdin="print('before')\nerror('stop here')\nprint('after')\n",
                         env={"ENGITOR_HOME": str(tmp_path / "h")})
    assert proc.returncode == 1
    assert proc.stdout == "before\n"
    assert proc.stderr == "engitor: stdin:2: stop here (hint: the line reads: error('stop here'))\n"


def test_dash_e_runs_one_chunk(tmp_path):
    proc = engitor_shell("-e", "sh.echo('from', 'sh')", env={"ENGITOR_HOME": str(tmp_path)})
    assert proc.returncode == 0 and proc.stdout == '"from sh"\n'
    assert engitor_shell("-e", "exit(5)", env={"ENGITOR_HOME": str(tmp_path)}).returncode == 5
