"""The one way engitor runs another program.

`run()` takes an argv list (never a shell string), captures output, applies a timeout, and when
asked to check turns a failure into one `UserError` naming the command and the tail of its
stderr. `spawn()` starts a long-lived process (QEMU, a probe guest, a Lua `sh` pipeline) and
hands back the `Popen`. Both echo the command line on stderr under `engitor --debug`, so what
engitor did can be replayed by hand. A program that is not installed is the user's to fix: one
error with the hint the caller gives.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from engitor.errors import UserError

DEVNULL = subprocess.DEVNULL
PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
TimeoutExpired = subprocess.TimeoutExpired
Popen = subprocess.Popen
Completed = subprocess.CompletedProcess

# How much of a failed command's stderr goes into its error: the last lines say why.
TAIL_LINES = 3
TAIL_CHARS = 300

_echo = False


def set_echo(on: bool) -> None:
    """Echo every command line on stderr (the CLI's --debug)."""
    global _echo
    _echo = on


def _show(argv: Sequence[str | Path], cwd: Path | str | None) -> None:
    if _echo:
        where = f" (in {cwd})" if cwd else ""
        print(f"+ {shlex.join(map(str, argv))}{where}", file=sys.stderr, flush=True)


def tail(text: str | bytes | None, lines: int = TAIL_LINES) -> str:
    """The last non-empty lines of a program's output, on one line, for an error message."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()][-lines:]
    return " / ".join(kept)[-TAIL_CHARS:]


def exit_words(code: int) -> str:
    """How a process ended, in words: "exit code 3", or "killed by SIGKILL (signal 9)" for a
    negative (subprocess) code. One wording for host commands and guest programs alike."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (signal {-code})"
    return f"exit code {code}"


def _missing(argv: Sequence[str | Path], hint: str | None) -> UserError:
    return UserError(f"{argv[0]} is not installed", hint=hint or f"install {argv[0]}")


def run(argv: Sequence[str | Path], *, check: bool = False, input: str | bytes | None = None,
        cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, text: bool = True, what: str | None = None,
        hint: str | None = None) -> subprocess.CompletedProcess[Any]:
    """Run `argv` to completion with its output captured.

    With `check`, a non-zero exit becomes `UserError("WHAT failed (exit N): STDERR TAIL")`;
    without it the caller reads `returncode` (many programs answer questions through it).
    engitor reads what programs print, so they run in the C locale; `env` adds variables."""
    _show(argv, cwd)
    full_env = {**os.environ, "LC_ALL": "C.UTF-8", **(env or {})}
    try:
        proc = subprocess.run(list(map(str, argv)), input=input, cwd=cwd, env=full_env,
                              capture_output=True, timeout=timeout, check=False, text=text,
                              errors="replace" if text else None)
    except FileNotFoundError:
        raise _missing(argv, hint) from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what or argv[0]} did not finish within {timeout:g} s",
                        hint=hint) from None
    if check and proc.returncode != 0:
        raise failed(proc, what=what, hint=hint)
    return proc


def failed(proc: subprocess.CompletedProcess[Any], *, what: str | None = None,
           hint: str | None = None) -> UserError:
    """The one error a failed command becomes: what failed, its exit status, why (stderr)."""
    why = tail(proc.stderr) or tail(proc.stdout) or "no output"
    name = what or os.path.basename(str(proc.args[0]))
    return UserError(f"{name} failed ({exit_words(proc.returncode)}): {why}", hint=hint)


def output(argv: Sequence[str | Path], **kwargs: Any) -> str:
    """The stripped stdout of a command that must succeed."""
    return str(run(argv, check=True, **kwargs).stdout).strip()


def spawn(argv: Sequence[str | Path], *, stdin: int | IO[Any] | None = DEVNULL,
          stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None,
          cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
          executable: str | None = None, new_session: bool = False,
          preexec_fn: Callable[[], None] | None = None, pass_fds: Sequence[int] = (),
          hint: str | None = None) -> subprocess.Popen[bytes]:
    """Start a long-lived process; the caller waits for it, reads it or kills it.
    `env`, when given, is the whole environment (a sandboxed `sh` call passes its own)."""
    _show(argv, cwd)
    try:
        return subprocess.Popen(list(map(str, argv)), stdin=stdin, stdout=stdout, stderr=stderr,
                                cwd=cwd, env=env, executable=executable,
                                start_new_session=new_session, preexec_fn=preexec_fn,
                                pass_fds=tuple(pass_fds))
    except FileNotFoundError:
        raise _missing(argv if executable is None else [executable], hint) from None
