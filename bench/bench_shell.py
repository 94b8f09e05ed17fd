"""Benchmarks of `engitor shell` (issue 6): start to prompt, and Tab completion with 2,000 names
in scope. Results and method: BENCHMARKS.md, section "Shell".

    .venv/bin/python bench/bench_shell.py [--runs N]

Start to prompt: each command is started in a fresh pseudo-terminal (pexpect) and timed from
spawn until its prompt is on the screen; engitor shell is compared with the plain Python REPL
(`python -q -i`) and IPython when installed, run in the same session. The in-process share is
split into its stages: the CLI (engitor.cli builds its parser from every verb module), the
shell's Lua runtime with the whole API, and the prompt_toolkit session.

Completion: the shell's completer (engitor/shell/complete.py) asked for the completions of a
partial name, with 2,000 globals in scope, a 2,000-field table and the zlib namespace; the
baseline is prompt_toolkit's WordCompleter over the same 2,000 words.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import as_installed  # noqa: E402


def spawn_to_prompt(argv: list[str], prompt: str, env: dict[str, str], runs: int) -> list[float]:
    import pexpect

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=30,
                              dimensions=(40, 120))
        child.expect(prompt)
        times.append(time.perf_counter() - start)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
    return times


def stages(runs: int) -> dict[str, list[float]]:
    """The in-process stages of `engitor shell`, each in a fresh interpreter."""
    code = r"""
import time, sys
t0 = time.perf_counter()
import engitor.cli
engitor.cli.parser()
t1 = time.perf_counter()
from engitor.shell.session import Session
s = Session(interactive=True)
t2 = time.perf_counter()
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from engitor.shell.repl import make_prompt
with create_pipe_input() as inp:
    make_prompt(s, input=inp, output=DummyOutput())
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""
    out: dict[str, list[float]] = {"CLI with every verb": [], "Lua runtime and API": [],
                                   "prompt_toolkit session": []}
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=ROOT)
        for key, value in zip(out, proc.stdout.split(), strict=True):
            out[key].append(float(value))
    return out


def completion(runs: int) -> list[tuple[str, int, float, float]]:
    import io

    from prompt_toolkit.completion import CompleteEvent, WordCompleter
    from prompt_toolkit.document import Document

    from engitor.shell.complete import LuaCompleter
    from engitor.shell.session import Session

    shell = Session(out=io.StringIO(), err=io.StringIO())
    shell.execute("for i = 1, 2000 do _G['name' .. i] = i end")
    shell.execute("t = {} for i = 1, 2000 do t['field' .. i] = i end")
    shell.execute("z = c.include('zlib.h', {lib = 'z'})")
    completer = LuaCompleter(shell)
    event = CompleteEvent(completion_requested=True)
    rows = []
    for text in ("name", "name19", "x = t.fi", "z.", "z.crc3"):
        doc = Document(text)
        found = list(completer.get_completions(doc, event))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            list(completer.get_completions(doc, event))
            times.append(time.perf_counter() - start)
        rows.append((text, len(found), statistics.median(times), min(times)))
    words = WordCompleter([f"name{i}" for i in range(1, 2001)])
    doc = Document("name")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        list(words.get_completions(doc, event))
        times.append(time.perf_counter() - start)
    rows.append(("WordCompleter (baseline): name", 2000, statistics.median(times), min(times)))
    return rows


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} / {min(values) * 1000:.0f}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    as_installed()
    home = tempfile.mkdtemp(prefix="engitor-bench-")
    env = {**os.environ, "ENGITOR_HOME": home, "TERM": "xterm-256color",
           "PYTHONPATH": str(ROOT)}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}\n")

    print("| command | start to prompt, ms (median / min) |")
    print("|---|---:|")
    # prompt_toolkit draws the prompt, then shows the cursor again; no cursor-position
    # requests (a pseudo-terminal that is not a terminal emulator does not answer them)
    shell = spawn_to_prompt([sys.executable, "-m", "engitor", "shell"],
                            r">[^\n]*\x1b\[\?25h", {**env, "PROMPT_TOOLKIT_NO_CPR": "1"},
                            args.runs)
    python = spawn_to_prompt([sys.executable, "-q", "-i"], ">>> ", env, args.runs)
    print(f"| engitor shell | {ms(shell)} |")
    print(f"| python -q -i (baseline) | {ms(python)} |")
    ipython = shutil.which("ipython")
    if ipython:
        ip = spawn_to_prompt([ipython, "--no-banner", "--no-confirm-exit",
                              "--HistoryManager.enabled=False"],
                             r"In \[\S*1\S*\]: .*?\x1b\[\?25h",
                             {**env, "PROMPT_TOOLKIT_NO_CPR": "1"},
                             max(3, args.runs // 3))
        print(f"| ipython (baseline) | {ms(ip)} |")
    ratio = statistics.median(shell) / statistics.median(python)
    print(f"\nengitor shell / python REPL: {ratio:.1f}x")
    st = stages(max(5, args.runs // 2))
    print("\nin-process stages, ms (median / min): "
          + ", ".join(f"{k} {ms(v)}" for k, v in st.items()))

    print("\n| completing | candidates | ms (median) | ms (min) |")
    print("|---|---:|---:|---:|")
    for text, n, median, best in completion(max(50, args.runs)):
        print(f"| `{text}` | {n} | {median * 1000:.2f} | {best * 1000:.2f} |")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
