"""engitor shell in a real terminal (tmux): what a person sees when typing a multi-line
function, completing a C name with Tab, printing a table, interrupting a loop with Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ROOT = Path(__file__).resolve().parents[1]


class Terminal:
    """A tmux pane (on a private tmux server) running one command."""

    def __init__(self, command: list[str], *, cwd: Path, env: dict[str, str]):
        self.socket = f"engitor-test-{uuid.uuid4().hex[:8]}"
        shell_line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + \
            shlex.join(command) + "; echo EXITED $?; sleep 30"
        self.tmux("new-session", "-d", "-x", "100", "-y", "40", "-c", str(cwd), shell_line)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, text=True,
                              capture_output=True, timeout=30).stdout

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def key(self, *names: str) -> None:
        self.tmux("send-keys", *names)

    def line(self, text: str) -> None:
        self.type(text)
        self.key("Enter")

    def screen(self, *, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []))

    def settle(self, quiet: float = 0.5, timeout: float = 30) -> str:
        """Wait until the screen stops changing, as a person would before typing on."""
        deadline = time.monotonic() + timeout
        last = self.screen()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.screen()
            if now == last:
                return now
            last = now
        return last

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text, re.M):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}; the screen:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def term(tmp_path):
    t = Terminal([sys.executable, "-m", "engitor", "shell"], cwd=tmp_path,
                 env={"ENGITOR_HOME": str(tmp_path / "home"), "TERM": "xterm-256color",
                      "PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")})
    try:
        t.wait_for(r"^>")
        yield t
    finally:
        t.close()


def test_a_multi_line_function_then_a_call(term):
    for text in ("function fib(n)", "if n < 2 then return n end", "return fib(n - 1) + fib(n - 2)",
                 "end"):
        term.line(text)
    screen = term.wait_for(r"^\.\. end")
    assert "> function fib(n)\n.. if n < 2 then return n end\n.. return fib(n - 1)" in screen
    term.line("fib(20)")
    term.wait_for(r"^6765$")


def test_tab_completes_a_c_name(term):
    term.line('z = c.include("zlib.h", {lib = "z"})')
    term.wait_for(r"^>$", timeout=60)
    term.settle()
    term.type("z.crc3")
    term.key("Tab")
    # the menu, with signatures, and the common part inserted
    term.wait_for(r"crc32\s+uLong crc32\(uLong crc, const Bytef \*buf, uInt len\)")
    term.wait_for(r"^> z\.crc32")
    term.key("Escape")
    term.line('(0, "abc", 3)')
    term.wait_for(r"^891568578ULL$")


def test_a_table_is_pretty_printed_and_input_is_highlighted(term):
    term.line('t = {name = "web", ports = {8080, 8443}, env = {MODE = "prod"}, nested = '
              '{a = {b = {c = {d = 1}}}}}')
    term.line("t.self = t")
    term.line("t")
    screen = term.wait_for(r"^\s*self = <cycle 1>")
    assert re.search(r"^<1>\{\n  env = \{MODE = \"prod\"\},\n  name = \"web\",\n"
                     r"  nested = \{a = \{b = \{c = \{…1\}\}\}\},\n  ports = \{8080, 8443\},\n"
                     r"  self = <cycle 1>,\n\}", screen, re.M), screen
    # the keyword `function` typed at the prompt is coloured
    term.type("function")
    time.sleep(0.5)
    prompt_line = [line for line in term.screen(escapes=True).splitlines()
                   if "function" in line][-1]
    assert "\x1b[" in prompt_line.split("function")[0]


def test_ctrl_c_interrupts_a_loop_and_ctrl_d_leaves(term):
    term.line("n = 0 while true do n = n + 1 end")
    time.sleep(1.0)
    term.key("C-c")
    term.wait_for(r"interrupted$")  # after the ^C the terminal echoes
    term.line("n > 0")
    term.wait_for(r"^true$")
    term.type("1 +")
    term.key("C-c")  # drops the line being typed
    term.line("'still here'")
    term.wait_for(r'^"still here"$')
    term.key("C-d")
    term.wait_for(r"^EXITED 0$")
